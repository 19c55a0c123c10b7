"""Scanning LiDARs: with rows or a rotating head every line is acquired at its own time and sees the source
frame nearest it, so a moving object smears across a frame exactly as the points' timestamps predict; a flash
LiDAR sees one instant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_active import write_active_sequence

from camsim.emulate.lidar import emulate_lidar
from camsim.emulate.lidar_config import LidarConfig

H, W, FPS, N = 12, 24, 30.0, 13
NEAR, FAR = 3.0, 8.0


def near_object(i: float) -> np.ndarray:
    """Where the near object is in source frame i (H, W): its corner slides right 1 px and down 1/2 px a frame."""
    return (np.arange(W)[None, :] >= 4 + i) & (np.arange(H)[:, None] >= np.floor(i / 2))


def frame(i: int) -> dict[str, np.ndarray]:
    depth = np.where(near_object(i), NEAR, FAR).astype(np.float32)
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1.0
    return {"depth": depth, "albedo": np.full((H, W, 3), 0.6, np.float32),
            "linear": np.full((H, W, 3), 0.1, np.float32), "normal": normal}  # fmt: skip


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    return write_active_sequence(tmp_path_factory.mktemp("scan") / "seq", frame, N, H, W, fps=FPS)


def run(seq, out, scan: str, **kw):
    cfg = LidarConfig(scan=scan, cycles=200, signal_photons=20.0, ambient_rate=0.0, dark_count_rate=0.0,
                      incidence=False, **kw)  # fmt: skip
    folder = emulate_lidar(seq, out, cfg, workers=1)
    return np.load(folder / "points.npy"), json.loads((folder / "transforms.json").read_text())


@pytest.mark.parametrize("scan", ["rows", "rotating"])
def test_a_scan_smears_a_moving_object_as_its_timestamps_predict(moving, tmp_path, scan):
    rate = FPS / 4  # each scan spans four source frames
    pts, meta = run(moving, tmp_path / scan, scan, frame_rate=rate)
    lines = H if scan == "rows" else W
    assert len(meta["frames"]) == int(((N - 1) / FPS - (lines - 1) / lines / rate) * rate + 1e-9) + 1 == 3
    line = np.arange(lines) / lines / rate
    for k in range(len(meta["frames"])):
        t = k / rate + (line[:, None] if scan == "rows" else line[None, :])
        np.testing.assert_allclose(pts["t"][k], np.broadcast_to(t, (H, W)), rtol=0, atol=1e-12)
        assert meta["frames"][k]["time"] == pytest.approx(k / rate + (lines - 1) / lines / rate / 2)
        times = np.arange(N) / FPS
        seen = np.argmin(
            np.abs(pts["t"][k][..., None] - times), axis=-1
        )  # nearest frame, the earlier at a tie
        near = near_object(seen)  # where the frame each point saw has the near object
        measured = pts["range"][k] < (NEAR + FAR) / 2
        assert pts["valid"][k].all() and (measured == near).all()
        np.testing.assert_array_equal(pts["source_frame_number"][k], seen)
        assert len(np.unique(seen)) == 5  # a smear: the frame mixes five instants ...
        for i in np.unique(seen):  # ... so it equals no single source frame's view
            assert not (measured == near_object(i)).all()


def test_a_flash_frame_sees_one_instant(moving, tmp_path):
    pts, meta = run(moving, tmp_path / "flash", "flash")
    assert len(meta["frames"]) == N
    for k in range(N):
        assert (pts["t"][k] == k / FPS).all()
        measured = pts["range"][k] < (NEAR + FAR) / 2
        assert (measured == near_object(k)).all()
