"""`emulate_lidar` on a plane: without ambient light and at low flux every pixel's histogram peaks at 2d/c
(radial d) within one bin; the point cloud lies on the plane in the camera frame and, through the poses, in
the world frame within the bin quantisation; the output is the same for any number of workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synthetic_active import pinhole_radial, plane_frame, write_active_sequence

from camsim import transforms
from camsim.emulate.lidar import emulate_lidar
from camsim.emulate.lidar_config import LidarConfig

C = 299_792_458.0
H, W, Z = 12, 16, 5.0


def posed(root, n: int):
    """Give the sequence's frames distinct camera-to-world poses; returns them."""
    meta = transforms.read(root)
    poses = []
    for i, fr in enumerate(meta["frames"]):
        m = np.eye(4)
        m[:3, :3] = Rotation.from_euler("xyz", [0.3 + 0.1 * i, -0.2, 0.5 * i]).as_matrix()
        m[:3, 3] = [1.0 + i, -2.0, 0.5 * i]
        fr["transform_matrix"] = m.tolist()
        poses.append(m)
    transforms.write(root / "transforms.json", meta)
    return np.array(poses)


@pytest.fixture
def plane(tmp_path):
    return write_active_sequence(
        tmp_path / "plane", lambda i: plane_frame(H, W, Z, rho=0.5, lum=0.3), 3, H, W
    )


def test_low_flux_histogram_peaks_at_the_round_trip_within_one_bin(plane, tmp_path):
    bin_width = 500e-12
    cfg = LidarConfig(ambient_rate=0.0, dark_count_rate=0.0, jitter=0.0, pulse_fwhm=200e-12, bin_width=bin_width,
                      signal_photons=0.4, cycles=20000, incidence=False, seed=5)  # fmt: skip
    out = emulate_lidar(plane, tmp_path / "out", cfg, workers=1)
    meta = json.loads((out / "transforms.json").read_text())
    hist = np.load(out / meta["histograms_file_path"])
    assert hist.dtype == np.dtype(meta["lidar"]["histogram_dtype"]) == np.uint16
    assert hist.shape == (3, H, W, meta["lidar"]["tdc_bins"])
    signal_per_cycle = 0.3 * 0.4 * 0.5 / Z**2  # pde x photons x albedo / z^2 at the centre: low flux
    assert signal_per_cycle < 0.01
    truth = 2 * pinhole_radial(H, W, Z) / C / bin_width  # in bins
    peak = np.argmax(hist, axis=-1) + 0.5
    assert np.abs(peak - truth).max() <= 1.0
    # Detections: Binomial(cycles, 1 - exp(-pde x photons x albedo / rho^2)) per pixel, all of them signal.
    p = -np.expm1(-0.3 * 0.4 * 0.5 / pinhole_radial(H, W, Z) ** 2)
    mean, var = 3 * cfg.cycles * p.sum(), 3 * cfg.cycles * (p * (1 - p)).sum()
    assert abs(float(hist.sum()) - mean) < 4 * np.sqrt(var)


def test_point_cloud_lies_on_the_plane_in_camera_and_world_frames(plane, tmp_path):
    poses = posed(plane, 3)
    cfg = LidarConfig(signal_photons=30.0, cycles=2000, ambient_rate=2e5, seed=1)
    out = emulate_lidar(plane, tmp_path / "out", cfg, workers=1)
    pts = np.load(out / "points.npy")
    quantum = C * cfg.bin_width / 2  # one TDC bin in range
    assert pts.shape == (3, H, W) and pts["valid"].all()
    np.testing.assert_allclose(pts["range_true"][0], pinhole_radial(H, W, Z), rtol=1e-6)
    assert np.abs(pts["range"] - pts["range_true"]).max() < quantum
    assert np.abs(pts["z_cam"] + Z).max() < quantum
    # Each point is on its pixel's ray: x/z and y/z are the pinhole's normalised coordinates.
    u = (np.arange(W) + 0.5 - W / 2) / W
    v = (np.arange(H) + 0.5 - H / 2) / W
    np.testing.assert_allclose(pts["x_cam"] / -pts["z_cam"], np.broadcast_to(u, (3, H, W)), atol=1e-6)
    np.testing.assert_allclose(pts["y_cam"] / pts["z_cam"], np.broadcast_to(v[:, None], (3, H, W)), atol=1e-6)
    for i in range(3):  # the world plane of frame i: normal R e_z through the pose applied to (0, 0, -Z)
        normal = poses[i][:3, :3] @ np.array([0.0, 0.0, 1.0])
        origin = poses[i][:3, :3] @ np.array([0.0, 0.0, -Z]) + poses[i][:3, 3]
        world = np.stack([pts["x"][i], pts["y"][i], pts["z"][i]], axis=-1)
        assert np.abs((world - origin) @ normal).max() < quantum
    assert np.all(pts["t"] == np.arange(3)[:, None, None] / 30.0)  # flash: every point at its frame's time


def test_output_does_not_depend_on_workers(tmp_path):
    big = write_active_sequence(
        tmp_path / "big", lambda i: plane_frame(48, 96, Z), 2, 48, 96
    )  # 2 pixel blocks
    cfg = LidarConfig(cycles=300, seed=9, histogram="equi-depth")
    a = emulate_lidar(big, tmp_path / "a", cfg, workers=1)
    b = emulate_lidar(big, tmp_path / "b", cfg, workers=2)
    for name in ("histograms.npy", "points.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    other = emulate_lidar(big, tmp_path / "c", LidarConfig(cycles=300, seed=10, histogram="equi-depth"))
    assert (a / "histograms.npy").read_bytes() != (other / "histograms.npy").read_bytes()


def test_histogram_dtype_grows_with_what_it_must_hold():
    assert LidarConfig().dtype == np.uint16
    assert LidarConfig(cycles=70000).dtype == np.uint32  # a bin may count every cycle
    assert LidarConfig(histogram="equi-depth", cycles=70000).dtype == np.uint16  # edges: at most tdc_bins
    assert LidarConfig(histogram="equi-depth", bin_width=1e-12, max_range=14.0).dtype == np.uint32
