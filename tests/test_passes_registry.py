"""The pass registry is the one place a kind is described: every path key a writer emits is a registered
kind's, each rendered kind has a flag and a converter, and the sequence layout writes and checks a frame's
files from the records."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import synthetic_scenes as S
from clirun import run_ok

from camsim.config import RenderConfig
from camsim.errors import OutputWriteError
from camsim.fileio import read_exr, read_image, write_exr, write_image
from camsim.groundtruth import CONVERTERS, FrameCameras
from camsim.layout import SequenceLayout
from camsim.loader import Dataset
from camsim.passes import (
    BY_NAME,
    DEPTH,
    DISPARITY,
    FLOW,
    FRAME,
    KEYS,
    NORMAL,
    PASSES,
    RAW,
    RENDERED,
    SEGMENTATION,
    SEQUENCE_FILES,
)
from camsim.validate import validate_dataset

SCENE = S.TWO_LAYERS


def path_keys(meta: dict) -> set[str]:
    """Every `file_path` / `*_file_path` key of a transforms.json, top level and per frame."""
    dicts = [meta, *meta["frames"]]
    return {k for d in dicts for k in d if k == "file_path" or k.endswith("_file_path")}


def test_every_path_key_any_writer_writes_is_a_registered_kind(tmp_path):
    src = tmp_path / "src"
    S.write_sequence(src, SCENE, 3, linear=True)
    out = tmp_path / "out"
    run_ok("interpolate", src, out / "interpolated", "--factor", "2", "--workers", "1")
    run_ok("emulate", "spad", src, out / "spad")
    run_ok("emulate", "spad", src, out / "spad-img", "--mode", "img")
    run_ok("emulate", "rgb", src, out / "rgb", "--raw")
    run_ok("emulate", "events", src, out / "events")
    for name in ("interpolated", "rgb", "events"):
        run_ok("convert", "img-to-npy", out / name, out / f"{name}-npy")
    run_ok("convert", "npy-to-img", out / "interpolated-npy", out / "interpolated-img")
    run_ok("export", "nerfstudio", out / "interpolated", out / "nerfstudio")
    registered = set(KEYS) | {f.key for f in SEQUENCE_FILES}
    seen: set[str] = set()
    for tj in sorted(out.rglob("transforms.json")):
        keys = path_keys(json.loads(tj.read_text()))
        assert keys <= registered, f"{tj.relative_to(out)}: unregistered {sorted(keys - registered)}"
        seen |= keys
    # The writers cover the kinds a sequence can hold without Blender (rendered ones come from the render).
    assert {"raw_file_path", "hole_mask_file_path", "events_file_path", "linear_file_path"} <= seen
    # What they wrote validates, and the loader reads every registered kind in it.
    for name in ("interpolated", "interpolated-npy", "interpolated-img", "rgb", "rgb-npy", "events-npy"):
        assert validate_dataset(out / name).ok, name
    raw = Dataset.from_path(out / "rgb-npy")[0]["raw"]
    assert raw.dtype == np.uint16 and raw.shape == (SCENE.h, SCENE.w, 1)


def test_each_kind_is_one_record_with_unique_names_keys_and_files():
    for attr in ("name", "key", "folder"):
        values = [getattr(p, attr) for p in PASSES]
        assert len(values) == len(set(values)), attr
    names = [n for p in PASSES for n in (p.name, *p.aliases)]
    assert len(names) == len(set(names)) and set(BY_NAME) == set(names)
    fields = {f.name: f for f in dataclasses.fields(RenderConfig)}
    for p in RENDERED:  # a rendered kind: a boolean --render-config flag, a Blender pass, a converter
        assert fields[str(p.flag)].type in (bool, "bool"), p.flag
        assert p.blender_pass and p.blender_channels, p.name
        assert p.channels and p.ext == ".exr", p.name  # written as an EXR with named channels
    assert set(CONVERTERS) == {p.name for p in RENDERED}
    assert RenderConfig().ground_truth == ("depths", "normals", "flows", "segmentations", "disparities")
    assert RenderConfig(linear=True, normals=False).ground_truth == (
        "depths",
        "flows",
        "segmentations",
        "disparities",
        "linear",
    )
    # Disparity is asked for by default but written only in a rectified stereo pair's left camera folder.
    plain = SequenceLayout.of(Path("s"), RenderConfig())
    left = SequenceLayout.of(Path("s"), RenderConfig(), stereo=True)
    assert [k for k in left.kinds if k not in plain.kinds] == [DISPARITY]
    assert [k for k in PASSES if k.stereo_only] == [DISPARITY]


def _camera(angle: float, cx: float = 12.0) -> dict:
    c, s = np.cos(angle), np.sin(angle)
    c2w = [[c, 0.0, s, 0.0], [0.0, 1.0, 0.0, 0.0], [-s, 0.0, c, 0.0], [0.0, 0.0, 0.0, 1.0]]
    return {"transform_matrix": c2w, "fl_x": 20.0, "fl_y": 20.0, "cx": cx, "cy": 10.0, "w": 24, "h": 20}


def test_the_layout_writes_a_frame_from_blender_passes_and_knows_when_it_is_complete(tmp_path):
    """Blender's multilayer EXR in, camsim's files out: depth in metres with +inf background, normals in
    the camera frame, flow in pixels (y down, lens shift added), ids; debug PNGs; checksums of every file."""
    h, w = 20, 24
    z = np.full((h, w), 4.0, np.float32)
    z[:, :3] = 1e10  # sky
    vector = np.zeros((h, w, 4), np.float32)
    vector[..., 0], vector[..., 3] = 1.5, -2.0  # XY: motion to the previous frame, ZW: negated to the next
    normal = np.zeros((h, w, 3), np.float32)
    normal[..., 2] = 1.0
    ids = np.full((h, w), 2.0, np.float32)
    ids[:, :3] = 0.0
    chans = {"ViewLayer.Depth.Z": z, "ViewLayer.IndexOB.X": ids}
    chans |= {f"ViewLayer.Vector.{c}": vector[..., i] for i, c in enumerate("XYZW")}
    chans |= {f"ViewLayer.Normal.{c}": normal[..., i] for i, c in enumerate("XYZ")}
    write_exr(tmp_path / "passes.exr", chans)
    write_image(tmp_path / "rgb.png", np.zeros((h, w, 3), np.uint8))

    root = tmp_path / "seq"
    root.mkdir()
    layout = SequenceLayout(root, kinds=(DEPTH, NORMAL, FLOW, SEGMENTATION), debug=True)
    layout.make_folders()
    cams = FrameCameras(_camera(0.0), _camera(0.0), _camera(0.0, cx=12.5), metres_per_unit=0.5)
    sums = layout.write_frame(7, tmp_path / "rgb.png", tmp_path / "passes.exr", "ViewLayer", cams)

    files = layout.expected_files(7)
    assert files == [
        "frames/frame_000007.png",
        "depths/depth_000007.exr",
        "normals/normal_000007.exr",
        "flows/flow_000007.exr",
        "segmentations/segmentation_000007.exr",
        "debug/depths/depth_000007.png",
        "debug/normals/normal_000007.png",
        "debug/flows/flow_000007.png",
        "debug/segmentations/segmentation_000007.png",
    ]
    assert sorted(sums) == sorted(files) and not (tmp_path / "passes.exr").exists()
    assert layout.frame_record(7) == {p.key: f for p, f in zip((FRAME, *layout.kinds), files, strict=False)}
    depth = read_exr(root / files[1], DEPTH.channels)
    assert depth[0, 5] == 2.0 and np.isinf(depth[:, :3]).all()  # 4 units x 0.5 m, sky +inf
    flow = read_exr(root / files[3], FLOW.channels)
    np.testing.assert_allclose(flow[5, 10], [0.5, -2.0, 1.5, 0.0])  # forward gets the 0.5 px lens shift
    np.testing.assert_array_equal(read_exr(root / files[4], SEGMENTATION.channels)[0, :4], [0, 0, 0, 2])
    np.testing.assert_array_equal(read_exr(root / files[2], NORMAL.channels)[0, 5], [0.0, 0.0, 1.0])
    assert read_image(root / files[5]).shape == (h, w, 3)

    assert layout.frame_is_complete(7) and layout.frame_is_complete(7, verify=True, checksums=sums)
    assert not layout.frame_is_complete(7, verify=True, checksums={files[3]: "crc32:00000000"})
    data = (root / files[1]).read_bytes()
    (root / files[1]).write_bytes(data[:-100])  # cut short
    assert not layout.frame_is_complete(7)
    assert layout.kept_checksums(None, [7])[files[0]] == sums[files[0]]


def test_a_missing_blender_pass_fails_the_frame_with_the_channel_named(tmp_path):
    write_exr(tmp_path / "passes.exr", {"ViewLayer.Depth.Z": np.ones((4, 5), np.float32)})
    write_image(tmp_path / "rgb.png", np.zeros((4, 5, 3), np.uint8))
    layout = SequenceLayout(tmp_path / "seq", kinds=(DEPTH, FLOW))
    (tmp_path / "seq").mkdir()
    layout.make_folders()
    cam = _camera(0.0)
    with pytest.raises(OutputWriteError, match=r"missing channel 'ViewLayer\.Vector\.X'"):
        layout.write_frame(
            1, tmp_path / "rgb.png", tmp_path / "passes.exr", "ViewLayer", FrameCameras(cam, cam, cam)
        )
    assert not (tmp_path / "seq" / FRAME.relpath(1)).exists()  # the RGB frame is moved in last
    assert RAW.relpath(3) == "raw/raw_000003.png"
