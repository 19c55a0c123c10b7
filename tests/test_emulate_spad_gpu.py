"""SPAD's GPU path (`--device cuda`): PyTorch draws with the numpy path's seeding and the same law.

No GPU is needed: the torch path runs on PyTorch's CPU device here (the same code; only the device differs),
and `cuda` without a GPU must fall back to the numpy path with a warning.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_sensors import constant_frames, write_sequence

from camsim.emulate.spad import SpadConfig, emulate_spad, unpack_frames

torch = pytest.importorskip("torch")

H, W = 12, 21


def _seq(tmp_path, value=0.4, n=6, fps=50.0):
    return write_sequence(tmp_path / "seq", constant_frames(value, H, W, n), np.arange(n) / fps)


def test_the_torch_path_detects_with_probability_one_minus_exp_lambda_over_six_decades():
    from camsim.emulate.spad_gpu import TorchFrames

    lams = np.array([1e-5, 1e-3, 0.05, 0.7, 2.0, 8.0], np.float32)
    rate = np.repeat(lams[:, None, None], 8192, axis=1)
    draw = TorchFrames(SpadConfig(seed=4), torch.device("cpu"))
    counts = np.zeros(len(lams))
    frames = 200
    for j in range(frames):
        counts += draw(rate, 1.0, 1.0, j).sum(axis=(1, 2))
    n = frames * 8192
    p = -np.expm1(-lams.astype(np.float64))
    z = (counts - n * p) / np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(z) < 4), z
    assert np.all(counts > 0) and np.all(counts < n)


def test_the_torch_path_is_seeded_per_frame_like_the_numpy_path(tmp_path, torch_cpu):
    seq = _seq(tmp_path)
    base = dict(
        flux=3000.0, frames_per_input=5, afterpulsing=0.1, crosstalk=0.05, dead_time=0.01, device="cuda"
    )
    a = emulate_spad(seq, tmp_path / "a", SpadConfig(**base, seed=5, batch_size=1), workers=1)
    b = emulate_spad(seq, tmp_path / "b", SpadConfig(**base, seed=5, batch_size=4), workers=2)
    c = emulate_spad(seq, tmp_path / "c", SpadConfig(**base, seed=6))
    numpy_path = emulate_spad(seq, tmp_path / "n", SpadConfig(**{**base, "device": "cpu"}, seed=5))
    frames = lambda out: (out / "frames.npy").read_bytes()  # noqa: E731
    assert frames(a) == frames(b)
    assert frames(a) != frames(c)
    assert frames(a) != frames(numpy_path)  # another generator: it really ran on torch
    derived = json.loads((a / "params.json").read_text())["derived"]
    assert derived["device_used"].startswith("cpu, torch ")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_dead_time_blinds_and_afterpulsing_refires_on_either_path(tmp_path, torch_cpu, device):
    """Dead time covering the whole next gate: a pixel never fires twice running. Certain afterpulsing
    (without dead time): a pixel that fired fires in every later gate."""
    seq = _seq(tmp_path, value=0.5, n=4, fps=10.0)
    common = dict(flux=2e4, frames_per_input=40, gate_time=1.0 / 400, dark_count_rate=0.0, device=device)
    blind = unpack_frames(emulate_spad(seq, tmp_path / "d", SpadConfig(**common, dead_time=1.0, seed=1)))
    assert blind.any() and not (blind[1:] & blind[:-1]).any()
    refire = unpack_frames(emulate_spad(seq, tmp_path / "a", SpadConfig(**common, afterpulsing=1.0, seed=2)))
    assert refire.any() and (refire[1:] >= refire[:-1]).all()


def test_the_torch_path_follows_the_numpy_paths_law_with_every_effect_on(tmp_path, torch_cpu):
    """Dead time, afterpulsing and crosstalk together: the detection rate of the two paths agrees within
    4 binomial standard deviations over 20,000 pixel-gates each."""
    seq = _seq(tmp_path, value=0.3, n=4, fps=10.0)
    common = dict(
        flux=1e4, frames_per_input=80, gate_time=1.0 / 1000, dead_time=2e-3, afterpulsing=0.2, crosstalk=0.1
    )
    rates = [
        unpack_frames(emulate_spad(seq, tmp_path / d, SpadConfig(**common, device=d, seed=3))).mean()
        for d in ("cpu", "cuda")
    ]
    n = 4 * 80 * H * W
    p = np.mean(rates)
    assert 0.05 < p < 0.95
    assert abs(rates[0] - rates[1]) < 4 * np.sqrt(2 * p * (1 - p) / n), rates
