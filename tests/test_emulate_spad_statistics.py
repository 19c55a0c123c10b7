"""SPAD emulator: detection rate follows 1 - exp(-lambda), dark counts follow the DCR map, output is loadable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_sensors import constant_frames, write_sequence

from camsim import transforms
from camsim.emulate.spad import SpadConfig, dark_count_map, emulate_spad, unpack_frames

H, W = 16, 20  # W not a multiple of 8: exercises the packing pad


def _seq(tmp_path, value, n=4, fps=100.0, name="seq"):
    return write_sequence(tmp_path / name, constant_frames(value, H, W, n), np.arange(n) / fps)


def test_emulate_spad_detection_rate_matches_poisson_within_3_sigma(tmp_path):
    L, flux, qe, fps, k = 0.5, 2000.0, 0.4, 100.0, 50
    seq = _seq(tmp_path, L, n=4, fps=fps)
    cfg = SpadConfig(
        flux=flux,
        qe=qe,
        frames_per_input=k,
        gate_time=1.0 / (fps * k),
        dark_count_rate=0.0,
        hot_pixel_fraction=0.0,
        seed=3,
    )
    out = emulate_spad(seq, tmp_path / "out", cfg)
    frames = unpack_frames(out)
    assert frames.shape == (4 * k, H, W, 1)
    gate = 1.0 / (fps * k)
    lam = qe * flux * L * gate
    p = -np.expm1(-lam)
    n = frames.size
    rate = frames.mean()
    assert abs(rate - p) < 3 * np.sqrt(p * (1 - p) / n), (rate, p)


def test_a_gate_detects_with_probability_one_minus_exp_lambda_over_six_decades_of_lambda():
    """The binary-frame draw itself (an Exp(1) arrival against lambda), from 1e-5 to 8 photons a gate, each
    level within 4 binomial standard deviations over 1.6 M gates, and no level that never or always fires."""
    from camsim.emulate.spad import _binary_frame, _State

    lams = np.array([1e-5, 1e-3, 0.05, 0.7, 2.0, 8.0], np.float32)
    rate = np.repeat(lams[:, None, None], 8192, axis=1)  # gate 1 s: the rate is lambda
    cfg = SpadConfig(seed=4, dark_count_rate=0.0)
    state = _State()
    counts = np.zeros(len(lams))
    frames = 200
    for j in range(frames):
        counts += _binary_frame(cfg, rate, 1.0, 1.0, j, state).sum(axis=(1, 2))
    n = frames * 8192
    p = -np.expm1(-lams.astype(np.float64))
    z = (counts - n * p) / np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(z) < 4), z
    assert np.all(counts > 0) and np.all(counts < n)


def test_emulate_spad_dark_counts_on_black_follow_the_dcr_map(tmp_path):
    seq = _seq(tmp_path, 0.0, n=20, fps=10.0)
    cfg = SpadConfig(
        frames_per_input=10,
        dark_count_rate=10.0,
        dcr_sigma=0.5,
        hot_pixel_fraction=0.05,
        hot_pixel_rate=300.0,
        gate_time=1.0 / (10.0 * 10),
        seed=11,
    )
    frames = unpack_frames(emulate_spad(seq, tmp_path / "out", cfg)).astype(np.float64)
    gate = 1.0 / (10.0 * 10)
    p = -np.expm1(-dark_count_map(cfg, H, W, 1).astype(np.float64) * gate)
    n_frames = frames.shape[0]
    expected = n_frames * p.sum()
    var = n_frames * (p * (1 - p)).sum()
    assert abs(frames.sum() - expected) < 3 * np.sqrt(var)
    hot = dark_count_map(cfg, H, W, 1)[..., 0] == 300.0
    assert hot.any()
    assert frames[..., 0].mean(axis=0)[hot].mean() > 5 * frames[..., 0].mean(axis=0)[~hot].mean()


def test_emulate_spad_output_is_identical_for_any_batch_size_and_workers(tmp_path):
    seq = write_sequence(
        tmp_path / "seq",
        [np.full((H, W, 3), v, np.float32) for v in np.linspace(0, 1, 7)],
        np.arange(7) / 30.0,
    )
    base = dict(flux=5000.0, frames_per_input=3, afterpulsing=0.1, crosstalk=0.05, dead_time=0.02, seed=5)
    a = emulate_spad(seq, tmp_path / "a", SpadConfig(**base, batch_size=1))
    b = emulate_spad(seq, tmp_path / "b", SpadConfig(**base, batch_size=4), workers=2)
    c = emulate_spad(seq, tmp_path / "c", SpadConfig(**{**base, "seed": 6}))
    assert (a / "frames.npy").read_bytes() == (b / "frames.npy").read_bytes()
    assert (a / "frames.npy").read_bytes() != (c / "frames.npy").read_bytes()


def test_emulate_spad_writes_the_npy_format_with_poses_and_params(tmp_path):
    seq = _seq(tmp_path, 0.3, n=6)
    out = emulate_spad(seq, tmp_path / "out", SpadConfig(frames_per_input=2, color=True))
    meta = transforms.read(out)
    assert meta["file_path"] == "frames.npy" and meta["bitpack"] is True and meta["bitpack_dim"] == 2
    raw = np.load(out / "frames.npy")
    assert raw.shape == (12, H, (W + 7) // 8, 3) and raw.dtype == np.uint8
    assert len(meta["frames"]) == 12 and all("file_path" not in f for f in meta["frames"])
    params = (out / "params.json").read_text()
    for key in ("dark_count_rate", "gate_time_s", "frames_per_input", "seed"):
        assert key in params


def test_emulate_spad_multibit_frames_sum_binary_frames(tmp_path):
    L, flux, fps = 0.8, 3000.0, 100.0
    seq = _seq(tmp_path, L, n=3, fps=fps)
    cfg = SpadConfig(
        flux=flux,
        frames_per_input=21,
        gate_time=1.0 / (fps * 21),
        bits=2,
        dark_count_rate=0.0,
        hot_pixel_fraction=0.0,
    )
    out = emulate_spad(seq, tmp_path / "out", cfg)
    frames = unpack_frames(out)
    assert frames.shape == (21, H, W, 1) and frames.max() <= 3
    p = -np.expm1(-cfg.qe * flux * L / (fps * 21))
    n = frames.size * 3
    assert abs(frames.sum() / n - p) < 3 * np.sqrt(p * (1 - p) / n)


def test_emulate_spad_img_mode_writes_loadable_pngs(tmp_path):
    from camsim.fileio import read_image

    seq = _seq(tmp_path, 1.0, n=3)
    out = emulate_spad(seq, tmp_path / "out", SpadConfig(mode="img", flux=1e6, gate_time=0.01))
    meta = transforms.read(out)
    img = read_image(transforms.resolve_path(out, meta["frames"][0]["file_path"]))
    assert img.shape == (H, W) and set(np.unique(img)) <= {0, 255} and img.mean() > 200


def test_emulate_spad_refuses_to_overwrite_a_dataset(tmp_path):
    from camsim.errors import UserInputError

    seq = _seq(tmp_path, 0.3)
    emulate_spad(seq, tmp_path / "out")
    with pytest.raises(UserInputError, match="overwrite"):
        emulate_spad(seq, tmp_path / "out")


@settings(max_examples=15, deadline=None)
@given(w=st.integers(1, 30), h=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_emulate_spad_bit_packed_frames_read_back_pixel_exact(tmp_path_factory, w, h, seed):
    """Every pixel survives camsim's own bit packing (emulate_spad writes frames.npy packed along W, any
    width, padding included) and both of its readers: `unpack_frames` and the loader (one frame at a time).

    The picture is known: a pixel is dark (no photon, no dark count) or lit so brightly that it always
    fires (1 - exp(-lambda) rounds to 1.0), so the binary frame equals the lit mask exactly."""
    from camsim.loader import Dataset

    lit = np.random.default_rng(seed).random((2, h, w)) < 0.5
    folder = tmp_path_factory.mktemp("bits")
    frames = [np.repeat(m[..., None], 3, axis=-1).astype(np.float32) for m in lit]
    seq = write_sequence(folder / "seq", frames, np.arange(2) / 100.0)
    cfg = SpadConfig(flux=1e12, gate_time=1e-3, dark_count_rate=0.0, hot_pixel_fraction=0.0, seed=seed)
    out = emulate_spad(seq, folder / "out", cfg)
    meta = transforms.read(out)
    assert meta["bitpack"] and meta["bitpack_dim"] == 2
    packed = np.load(transforms.resolve_path(out, meta["file_path"]))
    assert packed.dtype == np.uint8 and packed.shape == (2, h, -(-w // 8), 1)  # 8 pixels a byte, padded
    np.testing.assert_array_equal(unpack_frames(out)[..., 0].astype(bool), lit)
    ds = Dataset.from_path(out)
    for i in range(2):
        np.testing.assert_array_equal(ds[i]["frame"][..., 0].astype(bool), lit[i])
