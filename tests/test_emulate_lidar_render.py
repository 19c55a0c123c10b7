"""End to end on a real render: Blender renders a plane 5 m in front of a posed camera with the albedo pass,
`camsim emulate lidar` (no ambient light) counts as many detections as the rendered albedo and radial depth
predict, and its point cloud lies on the plane in the camera frame and in the world."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clirun import run_ok
from conftest import FAST

from camsim import transforms
from camsim.emulate.light import LUMA
from camsim.fileio import read_exr

pytestmark = pytest.mark.blender

DEPTH, C = 5.0, 299_792_458.0


def test_rendered_plane_gives_its_detections_and_points(build_scene, render, tmp_path):
    blend = build_scene("lidar-plane", kind="planes", depth=DEPTH)
    seq = render(blend, "lidar-plane", FAST.replace(albedo=True), frame_start=1, frame_end=3)
    out = tmp_path / "lidar"
    run_ok("emulate", "lidar", seq, out, "--ambient-rate", "0", "--dark-count-rate", "0", "--cycles", "2000",
           "--signal-photons", "20", "--workers", "1")  # fmt: skip
    meta = json.loads((out / "transforms.json").read_text())
    pts = np.load(out / meta["points_file_path"])
    src = transforms.read(seq)
    fr = src["frames"][0]
    z = read_exr(seq / fr["depth_file_path"])
    albedo = read_exr(seq / fr["albedo_file_path"], ("R", "G", "B")) @ LUMA
    normal = read_exr(seq / fr["normal_file_path"], ("R", "G", "B"))
    K = transforms.intrinsics(src, 0)
    u = (np.arange(src["w"]) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(src["h"]) + 0.5 - K[1, 2]) / K[1, 1]
    rays = np.stack(np.broadcast_arrays(u[None, :], -v[:, None], -np.ones((src["h"], 1))), -1)
    radial = z * np.linalg.norm(rays, axis=-1)
    cos_i = np.abs((normal * rays).sum(-1)) / np.linalg.norm(rays, axis=-1)
    assert np.allclose(z, DEPTH, rtol=1e-4) and albedo.min() > 0.5  # the plane fills the view
    np.testing.assert_allclose(pts["range_true"][0], radial, rtol=1e-5)
    # Detections: Binomial(cycles, 1 - exp(-pde x photons x albedo x cos / rho^2)) per pixel.
    p = -np.expm1(-0.3 * 20.0 * albedo * cos_i / radial**2)
    mean, var = 2000 * p.sum(), 2000 * (p * (1 - p)).sum()
    assert abs(float(pts["detections"][0].sum()) - mean) < 4 * np.sqrt(var)
    quantum = C * meta["lidar"]["tdc_bin_width_s"] / 2
    assert pts["valid"].all()
    assert np.abs(pts["range"] - pts["range_true"]).max() < quantum
    assert np.abs(pts["z_cam"] + DEPTH).max() < quantum
    for i, frame in enumerate(src["frames"]):  # the plane in the world: normal R e_z through pose (0, 0, -5)
        pose = np.asarray(frame["transform_matrix"])
        normal_w = pose[:3, :3] @ np.array([0.0, 0.0, 1.0])
        origin = pose[:3, :3] @ np.array([0.0, 0.0, -DEPTH]) + pose[:3, 3]
        world = np.stack([pts["x"][i], pts["y"][i], pts["z"][i]], axis=-1)
        assert np.abs((world - origin) @ normal_w).max() < quantum
