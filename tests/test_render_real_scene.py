"""A scene nobody here wrote (VisionSim's cube.blend, saved by Blender 2.93) renders with every ground truth."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_CUBE

from camsim import transforms
from camsim.fileio import read_exr, read_image

pytestmark = [
    pytest.mark.blender,
    pytest.mark.skipif(
        not SHARED_CUBE.exists(), reason="../shared/scenes/cube.blend is not beside the checkout"
    ),
]


def test_cube_blend_renders_every_ground_truth_with_valid_transforms(tmp_path):
    out = tmp_path / "cube"
    proc = subprocess.run(
        [sys.executable, "-m", "camsim", "render-animation", str(SHARED_CUBE), str(out), "--frame-start=10",
         "--frame-end=12", "--render-config.width=48", "--render-config.height=32", "--render-config.max-samples=4",
         f"--render-config.log-dir={tmp_path / 'logs'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    meta = transforms.read(out)
    assert meta["blender_version"].startswith("5.")
    assert [f["frame_number"] for f in meta["frames"]] == [10, 11, 12]
    assert meta["w"] == 48 and meta["h"] == 32
    assert set(meta["conventions"]) >= {"depth", "normal", "flow", "pixel_origin", "camera_axes"}
    cube_id = {v: int(k) for k, v in meta["segmentation_ids"].items()}["Cube"]
    for fr in meta["frames"]:
        assert read_image(out / fr["file_path"]).shape == (32, 48, 3)
        depth = read_exr(out / fr["depth_file_path"])
        seg = read_exr(out / fr["segmentation_file_path"])
        normals = read_exr(out / fr["normal_file_path"], ("R", "G", "B"))
        flow = read_exr(out / fr["flow_file_path"], ("R", "G", "B", "A"))
        cube = seg == cube_id
        assert cube.sum() > 20
        assert np.isfinite(depth[cube]).all() and (depth[cube] > 0).all()
        lengths = np.linalg.norm(normals[cube], axis=1)
        assert np.allclose(lengths, 1.0, atol=1e-3)
        assert np.isfinite(flow).all()
        # A camera looking at the cube sees its faces pointing back at it: +Z in the camera frame.
        assert (normals[cube][:, 2] > 0).mean() > 0.95
        # The cube is in front of the camera: its depth agrees with the pose.
        c2w = transforms.pose(meta, meta["frames"].index(fr))
        cube_center_cam = np.linalg.inv(c2w) @ np.array([0.0, 0.0, 0.0, 1.0])
        assert np.median(depth[cube]) == pytest.approx(-cube_center_cam[2], rel=0.2)
