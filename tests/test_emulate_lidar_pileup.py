"""LiDAR detection statistics against closed forms: first-photon histograms follow the Coates model, pile-up at
high flux moves the histogram's peak to the mode the model predicts (Lambert W), the Coates correction removes
the shift, and a dead time that blinds the next gate halves-ish the detections as its Markov chain says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import lambertw, ndtr

from camsim.emulate import lidar_histogram as hist
from camsim.emulate import lidar_transient as tra
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.lidar_model import histogram_and_estimate

SIGMA = 10.0  # pulse sigma in TDC ticks (1 ns at 100 ps bins)
N_TICKS = 400


def expected_first_photon(signal: float, centre: np.ndarray, beta: float, cycles: int) -> np.ndarray:
    """N q_b: the mean first-detection histogram (npx, N_TICKS) of a Gaussian return plus a flat background,
    written out here from the Poisson model (not with camsim)."""
    b = np.arange(N_TICKS + 1, dtype=np.float64)
    cdf = ndtr((b[None, :] - centre[:, None]) / SIGMA)
    r = signal * np.diff(cdf, axis=1) + beta
    before = np.cumsum(r, axis=1) - r
    return cycles * -np.expm1(-r) * np.exp(-before)


def draw(
    signal: float, centre: np.ndarray, beta: float, cycles: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    tr = tra.transient(np.full(len(centre), signal), np.full(len(centre), beta), centre, SIGMA, N_TICKS)
    return tra.detect_independent(tr, cycles, np.random.default_rng(seed))


def chi2_per_dof(counts: np.ndarray, expected: np.ndarray) -> float:
    keep = expected > 5
    return float((((counts - expected) ** 2) / expected)[keep].sum() / keep.sum())


def test_first_detection_histograms_follow_the_coates_model():
    centre = np.linspace(150.0, 151.0, 100)
    cycles = 4000
    pix, t = draw(2.0, centre, 0.002, cycles, seed=1)
    counts = np.zeros((len(centre), N_TICKS))
    np.add.at(counts, (pix, np.floor(t).astype(int)), 1)
    assert 0.9 < chi2_per_dof(counts, expected_first_photon(2.0, centre, 0.002, cycles)) < 1.1


def test_pile_up_shifts_the_peak_as_the_coates_model_predicts_and_the_correction_removes_it():
    signal, cycles = 3.0, 10000
    centre = np.linspace(
        200.0, 201.0, 200
    )  # one tick of sub-bin positions: the bin quantisation averages out
    pix, t = draw(signal, centre, 0.0, cycles, seed=2)
    ticks = np.floor(t).astype(np.int64)
    cfg = LidarConfig(bin_width=1e-10, max_range=N_TICKS * 1e-10 * tra.C_LIGHT / 2, cycles=cycles, coates=False,
                      estimator="peak", jitter=0.0)  # fmt: skip
    assert cfg.tdc_bins == N_TICKS
    # The first-photon density S phi(x) exp(-S Phi(x)) peaks where x exp(x^2 / 2) = -S / sqrt(2 pi).
    mode = -math.sqrt(lambertw(signal**2 / (2 * math.pi)).real) * SIGMA
    _, raw, _ = histogram_and_estimate(cfg, pix, ticks, len(centre))
    shift = float(np.mean(raw - centre))
    assert mode < -8.0 and abs(shift - mode) < 0.4, (shift, mode)
    corrected = LidarConfig(**{**cfg.__dict__, "coates": True, "estimator": "matched-filter"})
    _, fixed, _ = histogram_and_estimate(corrected, pix, ticks, len(centre))
    assert abs(float(np.mean(fixed - centre))) < 0.3
    uncorrected = LidarConfig(**{**cfg.__dict__, "estimator": "matched-filter"})
    _, biased, _ = histogram_and_estimate(uncorrected, pix, ticks, len(centre))
    assert float(np.mean(biased - centre)) < -5.0  # the matched filter alone does not undo pile-up


def test_coates_inverts_the_expected_histogram_exactly():
    centre = np.array([120.0, 250.5])
    expected = expected_first_photon(4.0, centre, 0.01, 10**6)
    rates = hist.coates(np.rint(expected).astype(np.int64), 10**6)
    b = np.arange(N_TICKS + 1, dtype=np.float64)
    truth = 4.0 * np.diff(ndtr((b[None, :] - centre[:, None]) / SIGMA), axis=1) + 0.01
    seen = expected > 100
    np.testing.assert_allclose(rates[seen], truth[seen], rtol=0.02)


def test_a_dead_time_blinding_the_next_gate_follows_its_markov_chain():
    gate, period, cycles = 100, 1000.0, 400  # ticks of 1 ns: a 100 ns gate, 1 us period
    dead = period + gate + 50.0  # a detection blinds all of the next gate, never the one after
    beta = 0.004
    tr = tra.transient(np.full(2000, 0.3), np.full(2000, beta), np.full(2000, 40.0), 2.0, gate)
    p = float(-np.expm1(-tr.total[0]))
    pix, _ = tra.detect_with_dead_time(tr, cycles, dead, period, np.random.default_rng(3))
    armed, mean = 1.0, 0.0
    for _ in range(cycles):  # P(armed) after a cycle: detected -> blind next, blind -> armed next
        mean += armed * p
        armed = 1.0 - armed * p
    per_pixel = np.bincount(pix, minlength=2000)
    se = per_pixel.std() / math.sqrt(2000)
    assert abs(per_pixel.mean() - mean) < 4 * se
    assert mean < 0.75 * cycles * p  # far from the independent-cycles count


def test_cycle_by_cycle_and_independent_samplers_agree_without_carry_over():
    centre = np.linspace(60.0, 61.0, 50)
    tr = tra.transient(np.full(50, 1.5), np.full(50, 0.003), centre, SIGMA, N_TICKS)
    pix, t = tra.detect_with_dead_time(tr, 3000, 5.0, 1000.0, np.random.default_rng(4))  # ends within the gap
    counts = np.zeros((50, N_TICKS))
    np.add.at(counts, (pix, np.floor(t).astype(int)), 1)
    assert 0.9 < chi2_per_dof(counts, expected_first_photon(1.5, centre, 0.003, 3000)) < 1.1


@pytest.mark.parametrize("u", [0.0, 0.3, 0.999999])
def test_inversion_lands_where_the_cumulative_count_says(u):
    tr = tra.transient(np.array([2.0, 0.0]), np.array([0.01, 0.02]), np.array([80.0, 10.0]), 3.0, 200)
    pix = np.array([0, 1])
    e = u * tr.total
    t = tr.invert(pix, e)
    np.testing.assert_allclose(tr.cumulative(pix, t), e, atol=1e-9)
