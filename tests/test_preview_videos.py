"""Previews decode as videos with the expected frame count, size and rate; grid tiles are labelled; hole
masks of interpolated sequences get their own video."""

from __future__ import annotations

import av
import h5py
import numpy as np
import pytest
import synthetic_plane

from camsim import cli, colorize, labels, transforms
from camsim.convert import img_to_npy
from camsim.errors import DatasetError
from camsim.fileio import write_image
from camsim.loader import Dataset
from camsim.preview import (
    colorize_item,
    event_frames,
    grid_frames,
    make_previews,
    open_sequences,
    sequence_limits,
)

plane_sequence = synthetic_plane.plane_sequence  # fixture


def _decode(path):
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return len(frames), frames[0].shape


def test_preview_writes_a_video_per_ground_truth_and_a_grid(plane_sequence, tmp_path):
    plane_sequence("ds/a", n=5)
    img_to_npy(plane_sequence("ds/tmp", n=7, binary=True), tmp_path / "ds/b", bitpack=True)
    import shutil

    shutil.rmtree(tmp_path / "ds/tmp")
    written = make_previews(tmp_path / "ds", tmp_path / "out", cell=(24, 32))
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in written)
    kinds = ["depth", "flow", "frame", "normal", "segmentation"]
    assert names == sorted([f"a/{k}.mp4" for k in kinds] + [f"b/{k}.mp4" for k in kinds] + ["grid.mp4"])
    assert _decode(tmp_path / "out/a/depth.mp4") == (5, (12, 16, 3))
    assert _decode(tmp_path / "out/b/frame.mp4") == (7, (12, 16, 3))
    # grid: 2 sequences, 5 tiles each of 24x32, longest sequence decides the length
    n, shape = _decode(tmp_path / "out/grid.mp4")
    assert n == 7 and shape[2] == 3 and shape[0] * shape[1] == 2 * 5 * 24 * 32


def test_preview_depth_limits_span_the_whole_sequence(plane_sequence):
    seq = Dataset.from_path(plane_sequence(n=5))
    lim = sequence_limits(seq)
    assert lim["depth"][0] == 5.0 and abs(lim["depth"][1] - 5.32) < 0.01  # camera rises 0.08 per frame
    first, last = (colorize_item("depth", seq[i]["depth"], lim) for i in (0, 4))
    assert not np.array_equal(first, last)  # same limits for all frames: nearer is a different colour


def test_preview_event_frames_bin_events_by_frame_time(plane_sequence, tmp_path):
    root = plane_sequence(n=4)
    events = np.array([[10, 1, 2, 1], [50_000, 3, 4, 0], [90_000, 5, 6, 1], [95_000, 5, 6, 1]], np.int64)
    with h5py.File(root / "events.h5", "w") as f:
        f.create_dataset("events", data=events)
    meta = transforms.read(root)
    meta["events_file_path"] = "events.h5"
    transforms.write(root / "transforms.json", meta)
    edges = np.round(np.arange(4) / 24.0 * 1e6).astype(np.int64)  # 0, 41667, 83333, 125000 us
    pics = list(event_frames(root / "events.h5", edges, 12, 16, chunk=2))
    assert len(pics) == 3
    assert pics[0][2, 1].any() and pics[1][4, 3].any() and pics[2][6, 5].any()
    assert pics[0].sum() and not pics[0][4, 3].any()
    assert not np.array_equal(pics[0][2, 1], pics[1][4, 3])  # ON and OFF differ in colour
    written = make_previews(root, tmp_path / "out", grid=False)
    assert _decode(tmp_path / "out/seq/events.mp4") == (3, (12, 16, 3))
    assert len(written) == 6


# ------------------------------------------------------------------------------- frame rate (issue 13)


def _rate_and_duration(path):
    """(frame rate, decoded frame count, duration in s) of a video, as a player sees it."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(video=0))
        return float(s.average_rate), n, float(s.duration * s.time_base)


def _set_fps(root, fps):
    meta = transforms.read(root)
    meta["fps"] = float(fps)
    for i, fr in enumerate(meta["frames"]):
        fr["time"] = i / fps
    transforms.write(root / "transforms.json", meta)
    return root


def test_preview_default_fps_is_the_source_fps_capped_at_60(plane_sequence, tmp_path):
    # A x16 interpolation of a 50 fps render is an 800 fps sequence: its video runs at 60 fps, every
    # frame kept (slowed down), so it lasts frames / 60 s. A 24 fps sequence keeps 24 fps.
    _set_fps(plane_sequence("ds/fast", n=12), 800.0)
    plane_sequence("ds/slow", n=6)
    make_previews(tmp_path / "ds", tmp_path / "out", cell=(24, 32))
    rate, n, duration = _rate_and_duration(tmp_path / "out/fast/frame.mp4")
    assert rate == 60.0 and n == 12
    assert abs(duration - 12 / 60) < 0.5 / 60
    rate, n, duration = _rate_and_duration(tmp_path / "out/slow/depth.mp4")
    assert rate == 24.0 and n == 6 and abs(duration - 6 / 24) < 0.5 / 24
    rate, n, duration = _rate_and_duration(tmp_path / "out/grid.mp4")  # fastest sequence, capped
    assert rate == 60.0 and n == 12 and abs(duration - 12 / 60) < 0.5 / 60


def test_preview_explicit_fps_sets_the_rate_of_every_video(plane_sequence, tmp_path):
    _set_fps(plane_sequence("fast", n=8), 800.0)
    make_previews(tmp_path / "fast", tmp_path / "out", fps=10.0)
    for name in ("fast/frame.mp4", "fast/flow.mp4", "grid.mp4"):
        rate, n, duration = _rate_and_duration(tmp_path / "out" / name)
        assert rate == 10.0 and n == 8 and abs(duration - 0.8) < 0.05, name


@pytest.mark.parametrize("fps", ["0", "-5", "nan", "inf"])
def test_preview_bad_fps_is_one_line_exit_2_and_writes_nothing(plane_sequence, tmp_path, fps, capsys):
    root = plane_sequence(n=3)
    with pytest.raises(SystemExit) as exc:
        cli.main(["preview", str(root), str(tmp_path / "out"), "--fps", fps])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("camsim: error:") and "--fps" in err[0]
    assert not (tmp_path / "out").exists()


def test_preview_empty_dataset_creates_no_output_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"transforms\.json"):
        make_previews(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ grid labels


def test_preview_grid_tiles_carry_scene_sequence_and_kind_labels(plane_sequence, tmp_path):
    root = plane_sequence("renders/demo_scene/000010-000014-x1", n=3)
    meta = transforms.read(root)
    meta["scene_file"] = "demo_scene.blend"
    transforms.write(root / "transforms.json", meta)
    seqs = open_sequences(tmp_path / "renders")
    cell = (96, 128)
    labelled = next(grid_frames(seqs, cell))
    plain = next(grid_frames(seqs, cell, label=False))
    assert labelled.shape == plain.shape == (96, 5 * 128, 3)
    kinds = ["frame", "depth", "flow", "normal", "segmentation"]
    scale = labels.scale_for(cell[0])
    for k, kind in enumerate(kinds):
        tile, bare = labelled[:, k * 128 : (k + 1) * 128], plain[:, k * 128 : (k + 1) * 128]
        lines = ["demo_scene", "000010-000014-x1", kind] if k == 0 else [kind]
        want = labels.draw_label(bare, lines, scale)
        np.testing.assert_array_equal(tile, want)
        text = np.all(want == 255, axis=-1) & ~np.all(bare == 255, axis=-1)
        band_h = len(lines) * labels.line_height(scale) + 2 * labels.PAD
        assert text.sum() >= 25 * len(kind) // 5, kind  # strokes of every letter
        assert text[:band_h].sum() == text.sum()  # only in the top-left band
        np.testing.assert_array_equal(tile[band_h + 1 :], bare[band_h + 1 :])  # the picture below is intact
    # The video holds the labels: bright strokes where the text is, over the dark band.
    make_previews(tmp_path / "renders", tmp_path / "out", cell=cell)
    with av.open(str(tmp_path / "out/grid.mp4")) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24").astype(float)
    text = np.all(labelled == 255, axis=-1) & ~np.all(plain == 255, axis=-1)
    band = (labelled.astype(int) * 3 <= plain.astype(int) + 2).all(-1) & (plain.sum(-1) > 60) & ~text
    assert frame[text].mean() > 170 and frame[band].mean() < 90
    assert frame[text].mean() - frame[band].mean() > 100


def test_preview_labels_fit_small_tiles_and_can_be_turned_off(plane_sequence, tmp_path):
    seqs = open_sequences(plane_sequence("a/very-long-sequence-name-000001-000100-x4", n=2).parent)
    tiny = next(grid_frames(seqs, (24, 32)))  # too low for three lines: the kind only
    scale = labels.scale_for(24)
    bare = next(grid_frames(seqs, (24, 32), label=False))
    np.testing.assert_array_equal(tiny[:, :32], labels.draw_label(bare[:, :32], ["frame"], scale))
    assert labels.fit_text("very-long-sequence-name-000001-000100-x4", 124, 0.7, keep_end=True).endswith(
        "-x4"
    )
    assert labels.text_width(labels.fit_text("x" * 200, 60, 0.7), 0.7) <= 60


# ---------------------------------------------------------------------------------------- hole masks


def test_preview_writes_a_masks_video_for_an_interpolated_sequence(plane_sequence, tmp_path):
    from camsim.interpolate.sequence import interpolate_sequence

    src = plane_sequence("src", n=3, w=32, h=24)
    meta = interpolate_sequence(src, tmp_path / "x2", 2, workers=1)
    frames = meta["frames"]
    with_masks = [fr for fr in frames if "hole_mask_file_path" in fr]
    assert with_masks, "interpolation writes hole masks"
    # A known hole in the first mask, so the colours can be checked.
    first = with_masks[0]
    mask = np.zeros((24, 32), np.uint8)
    mask[8:16, 8:24] = 255
    write_image(tmp_path / "x2" / first["hole_mask_file_path"], mask)
    k = frames.index(first)
    make_previews(tmp_path / "x2", tmp_path / "out", grid=True, cell=(48, 64))
    with av.open(str(tmp_path / "out/x2/masks.mp4")) as c:
        pics = [f.to_ndarray(format="rgb24").astype(float) for f in c.decode(video=0)]
    assert len(pics) == len(frames)
    hole = pics[k][10:14, 10:22].reshape(-1, 3).mean(0)
    assert hole[0] > 200 and hole[1] < 60 and hole[2] > 200  # magenta
    assert pics[k][mask == 0].max() < 120  # the rest: the frame at a third of its brightness
    assert pics[0].max() < 120  # a source frame has no holes
    dimmed = Dataset.from_path(tmp_path / "x2")[0]["frame"] // 3
    assert np.abs(pics[0].mean(-1) - dimmed.mean(-1)).mean() < 4  # grey: free of 4:2:0 chroma blur
    # The grid has a masks column (frame, masks, depth, flow, normal, segmentation).
    with av.open(str(tmp_path / "out/grid.mp4")) as c:
        grid = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    assert grid.shape[:2] == (48, 6 * 64)


def test_colorize_holes_marks_holes_magenta_on_a_dimmed_frame():
    frame = np.full((4, 5, 3), 210, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    out = colorize.holes(frame, mask)
    assert out[1, 2].tolist() == [255, 0, 255]
    assert (out[~mask] == 70).all()
    assert colorize.holes(None, mask)[0, 0].tolist() == [0, 0, 0]
