"""iToF's GPU path (`--device cuda`): taps digitised by PyTorch, judged by the same Cramér-Rao bound.

Runs on PyTorch's CPU device here (the same code; only the device differs). Noiseless taps equal the numpy
path's; noisy ones give decoded depth whose spread is the K-tap estimator's bound, as the numpy path's does
(tests/test_emulate_itof_noise.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_active import pinhole_radial, plane_frame, write_active_sequence

from camsim.emulate.itof import ItofConfig, decode, emulate_itof, read_taps
from camsim.emulate.itof_decode import depth_std_crb

torch = pytest.importorskip("torch")

H, W = 32, 32
Z, RHO, LUM = 1.5, 0.5, 0.2
FRAMES = 24


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    root = tmp_path_factory.mktemp("itof-gpu")
    return write_active_sequence(root / "seq", lambda i: plane_frame(H, W, Z, RHO, LUM), FRAMES * 4, H, W)


CFG = dict(source_power=2e4, ambient_scale=2000.0, qe=0.35, read_noise=5.0, full_well=1e6, adc_bits=16)


def test_the_torch_paths_depth_spread_is_the_cramer_rao_bound(plane, tmp_path, torch_cpu):
    cfg = ItofConfig(**CFG, seed=7, device="cuda")
    out = emulate_itof(plane, tmp_path / "out", cfg, workers=2)
    params = json.loads((out / "params.json").read_text())
    assert params["derived"]["device_used"].startswith("cpu, torch ")
    depth, _ = decode(read_taps(out), params)
    radial = pinhole_radial(H, W, Z)
    returned = cfg.qe * cfg.source_power * RHO * (Z / radial) / radial**2
    level = returned / 2 + cfg.qe * cfg.ambient_scale * LUM / 2
    crb = depth_std_crb(returned, level, 4, 20.0, cfg.read_noise, cfg.dn_per_electron())
    ratio = depth.var(axis=0, ddof=1) / crb**2
    assert abs(ratio.mean() - 1) < 0.06, ratio.mean()
    assert np.abs((depth.mean(axis=0) - radial) / (crb / np.sqrt(FRAMES))).mean() < 1.2


def test_without_noise_the_torch_paths_taps_are_the_numpy_paths(plane, tmp_path, torch_cpu):
    kw = dict(CFG, noise=False, adc_bits=12, full_well=1200.0)  # the brightest taps saturate (0.8 %)
    cpu = emulate_itof(plane, tmp_path / "cpu", ItofConfig(**kw))
    cuda = emulate_itof(plane, tmp_path / "cuda", ItofConfig(**kw, device="cuda"))
    np.testing.assert_array_equal(read_taps(cuda), read_taps(cpu))
    saturated = [
        json.loads((o / "params.json").read_text())["derived"]["saturated_fraction"] for o in (cpu, cuda)
    ]
    assert saturated[0] == saturated[1] > 0


def test_the_torch_path_is_seeded_per_tap(plane, tmp_path, torch_cpu):
    a = emulate_itof(plane, tmp_path / "a", ItofConfig(**CFG, seed=1, device="cuda", batch_size=1), workers=1)
    b = emulate_itof(plane, tmp_path / "b", ItofConfig(**CFG, seed=1, device="cuda", batch_size=5), workers=2)
    c = emulate_itof(plane, tmp_path / "c", ItofConfig(**CFG, seed=2, device="cuda"))
    np.testing.assert_array_equal(read_taps(a), read_taps(b))
    assert not np.array_equal(read_taps(a), read_taps(c))
