"""RGB emulator: the photon-transfer line gives back gain and read noise; blur equals the frame mean."""

from __future__ import annotations

import numpy as np
from synthetic_sensors import circle_poses, write_sequence

from camsim import transforms
from camsim.emulate.light import linear_to_srgb, srgb_to_linear
from camsim.emulate.rgb import RgbConfig, emulate_rgb, row_weights
from camsim.fileio import read_image
from camsim.trajectory import linear_pose


def test_emulate_rgb_photon_transfer_recovers_gain_and_read_noise_within_5_percent(tmp_path):
    levels = np.array([0.0, 0.03, 0.08, 0.15, 0.3, 0.5, 0.75, 1.0])
    h, n = 24, 300
    img = np.repeat(np.repeat(levels, 8)[None, :], h, axis=0)
    frame = np.repeat(img[..., None], 3, axis=2).astype(np.float32)
    seq = write_sequence(tmp_path / "seq", [frame] * n, np.arange(n) / 30.0, png=False)
    cfg = RgbConfig(flux=100.0, flux_per="frame", iso=400, read_noise=2.0, raw=True, seed=1, batch_size=64)
    out = emulate_rgb(seq, tmp_path / "out", cfg)
    meta = transforms.read(out)
    raw = np.stack([read_image(out / f["raw_file_path"]) for f in meta["frames"]]).astype(np.float64)
    mean = raw.mean(axis=0) - cfg.black_level
    var = raw.var(axis=0, ddof=1) - 1.0 / 12.0  # remove the ADC quantisation variance
    xs = np.array([mean[:, i * 8 : (i + 1) * 8].mean() for i in range(len(levels))])
    ys = np.array([var[:, i * 8 : (i + 1) * 8].mean() for i in range(len(levels))])
    slope, intercept = np.polyfit(xs, ys, 1)
    read_noise = np.sqrt(intercept) / slope
    assert abs(slope / cfg.gain - 1) < 0.05, (slope, cfg.gain)
    assert abs(read_noise / cfg.read_noise - 1) < 0.05, read_noise


def test_emulate_rgb_motion_blur_equals_the_frame_average_with_noise_off(tmp_path):
    h, w, n, m = 6, 24, 12, 4
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 0.05, np.float32)
        f[:, 2 * i : 2 * i + 3] = 0.9  # a bright bar moving right
        frames.append(f)
    times = np.arange(n) / 24.0
    poses = circle_poses(times, 2.0, 1.0)
    seq = write_sequence(tmp_path / "seq", frames, times, poses, png=False)
    cfg = RgbConfig(chunk_size=m, noise=False, bayer=False, flux=1e4, flux_per="frame", full_well=1e6)
    out = emulate_rgb(seq, tmp_path / "out", cfg)
    meta = transforms.read(out)
    assert len(meta["frames"]) == n // m
    for o, fr in enumerate(meta["frames"]):
        got = read_image(out / fr["file_path"]).astype(np.float64)
        want = np.rint(linear_to_srgb(np.mean(frames[o * m : (o + 1) * m], axis=0)) * 255)
        assert np.abs(got - want).max() <= 1
        mid = o * m + (m - 1) / 2
        assert np.allclose(fr["transform_matrix"], linear_pose(poses, mid), atol=1e-9)
        assert abs(fr["time"] - np.mean(times[o * m : (o + 1) * m])) < 1e-12


def test_emulate_rgb_rolling_shutter_rows_integrate_shifted_windows():
    n_frames, wts = row_weights(n_rows=5, m=2, shift=0.5)
    assert n_frames == 4
    assert np.allclose(wts.sum(axis=1), 1.0)
    assert np.allclose(wts[0], [0.5, 0.5, 0, 0]) and np.allclose(wts[2], [0, 0.5, 0.5, 0])
    # row 1 starts half a frame later: half of frame 0, all of frame 1 ... weights in frame units / m
    assert np.allclose(wts[1], [0.25, 0.5, 0.25, 0])


def test_emulate_rgb_is_identical_for_any_batch_size_and_workers(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.random((8, 10, 3)).astype(np.float32) for _ in range(9)]
    seq = write_sequence(tmp_path / "seq", frames, np.arange(9) / 30.0, linear=False)
    kw = dict(chunk_size=2, rolling_shutter=True, seed=4)
    a = emulate_rgb(seq, tmp_path / "a", RgbConfig(**kw, batch_size=1))
    b = emulate_rgb(seq, tmp_path / "b", RgbConfig(**kw, batch_size=3), workers=2)
    files = sorted(p.relative_to(a) for p in (a / "frames").iterdir())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "transforms.json").read_text() == (b / "transforms.json").read_text()


def test_emulate_rgb_srgb_linearisation_is_the_exact_eotf():
    v = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-6)
    assert abs(float(srgb_to_linear(np.float32(0.5))) - 0.21404114) < 1e-6
