"""Previews decode as videos with the expected frame count and size."""

from __future__ import annotations

import av
import h5py
import numpy as np
import synthetic_plane

from camsim import transforms
from camsim.convert import img_to_npy
from camsim.dataset import Dataset
from camsim.preview import colorize_item, event_frames, make_previews, sequence_limits

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
