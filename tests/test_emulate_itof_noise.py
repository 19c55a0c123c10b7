"""iToF noise: the per-pixel spread of decoded depth of a still plane is the Cramér-Rao bound of the K-tap
estimator (camsim.emulate.itof_decode.depth_std_crb, derived in its docstring), which is itself checked against
the Fisher information computed numerically; the same seed gives the same taps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from synthetic_active import pinhole_radial, plane_frame, write_active_sequence

from camsim.emulate.itof import ItofConfig, decode, emulate_itof, read_taps
from camsim.emulate.itof_codes import C
from camsim.emulate.itof_decode import depth_std_crb

H, W = 32, 32
Z, RHO, LUM = 1.5, 0.5, 0.2
FRAMES = 24  # output frames (x 4 taps of source frames)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    root = tmp_path_factory.mktemp("itof-noise")
    cfg = ItofConfig(source_power=2e4, ambient_scale=2000.0, qe=0.35, read_noise=5.0, full_well=1e6, adc_bits=16,
                     seed=7)  # fmt: skip
    seq = write_active_sequence(root / "seq", lambda i: plane_frame(H, W, Z, RHO, LUM), FRAMES * 4, H, W)
    out = emulate_itof(seq, root / "out", cfg, workers=2)
    return cfg, seq, out


def test_depth_spread_matches_the_cramer_rao_bound(noisy):
    cfg, _, out = noisy
    depth, _ = decode(read_taps(out), json.loads((out / "params.json").read_text()))
    radial = pinhole_radial(H, W, Z)
    returned = cfg.qe * cfg.source_power * RHO * (Z / radial) / radial**2  # e-, cos_i = z / d
    level = returned / 2 + cfg.qe * cfg.ambient_scale * LUM / 2
    crb = depth_std_crb(returned, level, 4, 20.0, cfg.read_noise, cfg.dn_per_electron())
    assert crb.min() > 0.02 and crb.max() < 0.2  # metres: far from the wrap (7.5 m), far from quantisation
    var = depth.var(axis=0, ddof=1)
    ratio = var / crb**2
    # mean of 1024 per-pixel variance ratios, each from 24 frames: statistical error ~1.2 %
    assert abs(ratio.mean() - 1) < 0.06, ratio.mean()
    assert abs(np.median(np.sqrt(ratio)) - 1) < 0.06
    bias = depth.mean(axis=0) - radial
    assert np.abs(bias / (crb / math.sqrt(FRAMES))).mean() < 1.2  # unbiased: |z-scores| ~ 0.8 on average


@pytest.mark.parametrize("k", [3, 4, 5, 8])
def test_closed_form_bound_is_the_inverse_fisher_information(k):
    """CRB of phi from T_k = B + A cos(phi - psi_k) + N(0, sigma^2), with phi, A, B unknown: [I^-1]_phi_phi,
    I = J^T J / sigma^2, J the derivatives of the means; in depth, times c / (4 pi f)."""
    a_e, level, read, gain, f = 800.0, 900.0, 5.0, 0.3, 20.0
    sigma2 = level + read**2 + 1 / (12 * gain**2)
    psi = 2 * math.pi * np.arange(k) / k
    for phi in (0.1, 1.3, 4.0):
        big_a = a_e / 4
        jac = np.stack([-big_a * np.sin(phi - psi), np.cos(phi - psi), np.ones(k)], axis=1)
        info = jac.T @ jac / sigma2
        std_phi = math.sqrt(np.linalg.inv(info)[0, 0])
        want = std_phi * C / (4 * math.pi * f * 1e6)
        assert depth_std_crb(a_e, level, k, f, read, gain) == pytest.approx(want, rel=1e-9)


def test_arctan_delta_method_with_the_exact_shot_variances_equals_the_bound_for_four_taps_or_more():
    """(2 / (K A))^2 sum_k sin^2(psi_k - phi) (B + A cos(phi - psi_k) + s^2) = 2 (B + s^2) / (K A^2), K >= 4."""
    big_a, level, s2 = 200.0, 900.0, 30.0
    for k in (4, 5, 8):
        psi = 2 * math.pi * np.arange(k) / k
        for phi in np.linspace(0, 2 * math.pi, 7):
            delta = (2 / (k * big_a)) ** 2 * np.sum(
                np.sin(psi - phi) ** 2 * (level + big_a * np.cos(phi - psi) + s2)
            )
            assert delta == pytest.approx(2 * (level + s2) / (k * big_a**2), rel=1e-12)


def test_same_seed_same_taps_and_other_seed_other_taps(noisy, tmp_path):
    cfg, seq, out = noisy
    again = emulate_itof(seq, tmp_path / "again", cfg, workers=1)  # other worker count: same output
    assert np.array_equal(read_taps(out), read_taps(again))
    other = emulate_itof(seq, tmp_path / "other", ItofConfig(**{**cfg.__dict__, "seed": 8}), workers=1)
    assert not np.array_equal(read_taps(out), read_taps(other))


def test_two_frequencies_unwrap_without_gross_errors_and_combine_to_the_joint_bound(tmp_path):
    """80 and 100 MHz (each wraps at 1.87 and 1.50 m, together at 7.49 m), plane at 4 m: every pixel of every
    frame on the right wrap, and the spread that of the inverse-variance mean of the two frequencies,
    1 / sigma^2 = sum over f of 1 / sigma_f^2."""
    cfg = ItofConfig(frequencies=(80.0, 100.0), source_power=2e5, ambient_scale=2000.0, qe=0.35, read_noise=5.0,
                     full_well=1e6, adc_bits=16, seed=3)  # fmt: skip
    z, frames = 4.0, 16
    seq = write_active_sequence(tmp_path / "seq", lambda i: plane_frame(H, W, z, RHO, LUM), frames * 8, H, W)
    out = emulate_itof(seq, tmp_path / "out", cfg, workers=2)
    depth, _ = decode(read_taps(out), json.loads((out / "transforms.json").read_text()))
    radial = pinhole_radial(H, W, z)
    returned = cfg.qe * cfg.source_power * RHO * (z / radial) / radial**2
    level = returned / 2 + cfg.qe * cfg.ambient_scale * LUM / 2
    crbs = [
        depth_std_crb(returned, level, 4, f, cfg.read_noise, cfg.dn_per_electron()) for f in cfg.frequencies
    ]
    joint = 1 / np.sqrt(sum(1 / c**2 for c in crbs))
    assert np.abs(depth - radial).max() < 10 * joint.max()  # no pixel on a wrong wrap (they are 1.5 m apart)
    ratio = depth.var(axis=0, ddof=1) / joint**2
    assert abs(ratio.mean() - 1) < 0.06, ratio.mean()
