"""The binned LiDAR sampler (equi-width histograms of independent cycles, straight from each pixel's counts per
segment of the first-photon law): it draws the same random numbers as the per-detection sampler and gives the
same histograms, estimates and clip counts; its histograms follow the first-photon law convolved with the
timing jitter, clipped into the gate; and the emulator's output does not depend on its thread count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr
from synthetic_active import plane_frame, write_active_sequence

from camsim.emulate import lidar_transient as tra
from camsim.emulate.lidar import emulate_lidar
from camsim.emulate.lidar_binned import binned_independent
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.lidar_model import detections, histogram_and_estimate, measure, photon_model


def scene(npx: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranges 0.3..40 m (some beyond a 30 m gate), some without return (inf) or albedo; ambient 0..1, some 0."""
    r = np.random.default_rng(seed)
    rho = r.uniform(0.3, 40.0, npx)
    rho[::17] = np.inf
    albedo = r.uniform(0.0, 1.0, npx)
    albedo[::13] = 0.0
    ambient = r.uniform(0.0, 1.0, npx)
    ambient[::7] = 0.0
    return rho, albedo, ambient


@pytest.mark.parametrize(
    "cfg",
    [
        LidarConfig(bins=16, seed=1),  # the benchmark's config: dense estimate
        LidarConfig(seed=2),  # every TDC bin: the estimate by occupied bins
        LidarConfig(bins=16, coates=False, estimator="peak", seed=3),
        LidarConfig(bins=4, jitter=3e-9, signal_photons=100.0, seed=4),  # jitter clips at both ends
        LidarConfig(dark_count_rate=0.0, jitter=0.0, cycles=300, seed=5),  # pixels without light
    ],
)
def test_binned_sampler_matches_the_per_detection_sampler_draw_for_draw(cfg):
    tr = photon_model(cfg, *scene(700, cfg.seed))
    assert not cfg.dead_time_carries_over and (tr.total == 0).any() == (cfg.dark_count_rate == 0)
    hist, t_est, found, clipped = measure(cfg, tr, np.random.default_rng(cfg.seed))
    pix, ticks, clipped_ref = detections(cfg, tr, np.random.default_rng(cfg.seed))
    hist_ref, t_ref, found_ref = histogram_and_estimate(cfg, pix, ticks, len(tr.total))
    assert hist.dtype == hist_ref.dtype and found.dtype == found_ref.dtype
    np.testing.assert_array_equal(hist, hist_ref)
    np.testing.assert_array_equal(t_est, t_ref)
    np.testing.assert_array_equal(found, found_ref)
    assert clipped == clipped_ref and (clipped > 0) == (cfg.jitter > 0)
    assert found.sum() > 10 * len(found)


def expected_jittered(signal, centre, sigma, beta, jitter, n, cycles, sub=32):
    """N q_m: the mean histogram (npx, n) of first detections after Gaussian jitter, clipped into the gate,
    written out here from the Poisson model: the first-photon mass of each 1/sub tick, exact, times the
    jitter's probability of each tick from the sub-tick's middle."""
    k = np.arange(n + 1, dtype=np.float64)
    r = signal * np.diff(ndtr((k[None, :] - centre[:, None]) / sigma), axis=1) + beta  # (npx, n) per tick
    before = np.cumsum(r, axis=1) - r
    h = 1.0 / sub
    j = np.arange(sub)
    mass = np.exp(-(before[:, :, None] + r[:, :, None] * j * h)) * -np.expm1(
        -r[:, :, None] * h
    )  # (npx, n, sub)
    mid = (np.arange(n)[:, None] + (j + 0.5) * h).ravel()  # (n sub,)
    cdf = ndtr((k[1:-1][None, :] - mid[:, None]) / jitter)  # P(t + jitter z < edge m), edges 1..n-1
    cdf = np.concatenate([np.zeros((len(mid), 1)), cdf, np.ones((len(mid), 1))], axis=1)
    return cycles * mass.reshape(len(centre), -1) @ np.diff(cdf, axis=1)


def test_binned_histograms_follow_the_jittered_first_photon_law():
    # A narrow, strong pulse: where in its tick a detection lies (piled up towards the tick's start) shows
    # through the jitter; returns at both ends of the gate: the jitter moves detections out of it.
    n, sigma, jitter, cycles = 40, 0.4, 0.6, 4000
    centre = np.linspace(-1.0, 41.0, 160)
    signal, beta = 2.0, 0.02
    tr = tra.transient(np.full(len(centre), signal), np.full(len(centre), beta), centre, sigma, n)
    counts, clipped = binned_independent(tr, cycles, jitter, n, np.random.default_rng(6))
    expected = expected_jittered(signal, centre, sigma, beta, jitter, n, cycles)
    keep = expected > 5
    # Multinomial counts: E[(O - E)^2 / E] = 1 - q per cell (q = E / N), so this is 1 on average.
    chi2 = float((((counts - expected) ** 2) / expected)[keep].sum() / (1.0 - expected / cycles)[keep].sum())
    assert keep.mean() > 0.9 and 0.9 < chi2 < 1.1, chi2  # jitter 10 % off: 1.2; uniform in the tick: 1.7
    assert clipped > 5000
    np.testing.assert_allclose(counts.sum(axis=1).mean(), expected.sum(axis=1).mean(), rtol=0.01)


def test_equi_width_output_does_not_depend_on_workers(tmp_path):
    seq = write_active_sequence(tmp_path / "seq", lambda i: plane_frame(48, 96, 5.0), 2, 48, 96)  # 2 blocks
    cfg = LidarConfig(cycles=300, bins=16, seed=9)
    a = emulate_lidar(seq, tmp_path / "a", cfg, workers=1)
    b = emulate_lidar(seq, tmp_path / "b", cfg, workers=2)
    for name in ("histograms.npy", "points.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
