"""The RGB camera's GPU path (`--device cuda`): the numpy path's sensor and ISP, drawn by PyTorch.

Runs on PyTorch's CPU device here (the same code; only the device differs). Without noise the two paths
compute the same arithmetic: the raw DN are equal and the 8-bit picture is within one code (the demosaic's
sums and the sRGB curve may round differently). With noise the draws differ and the statistics must not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_sensors import constant_frames, write_sequence

from camsim.emulate.rgb import RgbConfig, emulate_rgb
from camsim.fileio import read_image

torch = pytest.importorskip("torch")

H, W = 24, 30


def _gradient_seq(tmp_path, n=4):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for i in range(n):
        v = (xx + 2 * yy + 3 * i) / (W + 2 * H + 3 * n)
        frames.append(np.stack([v, 1.2 * v**2, 0.9 - 0.8 * v], axis=2).astype(np.float32))
    return write_sequence(tmp_path / "seq", frames, np.arange(n) / 30.0)


def _frames(out, folder="frames"):
    meta = json.loads((out / "transforms.json").read_text())
    key = "file_path" if folder == "frames" else "raw_file_path"
    return np.stack([read_image(out / f[key]) for f in meta["frames"]]).astype(np.int64)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(
            white_balance=(1.3, 1.0, 0.8), color_matrix=(1.2, -0.1, -0.1, -0.05, 1.1, -0.05, 0.0, -0.2, 1.2)
        ),
        dict(bayer=False, white_balance=(0.9, 1.0, 1.1)),
        dict(iso=400.0, exposure=0.02),
    ],
)
def test_without_noise_the_torch_path_computes_the_numpy_paths_frames(tmp_path, torch_cpu, options):
    seq = _gradient_seq(tmp_path)
    kw = dict(noise=False, raw=True, flux=2e5, **options)
    cpu = emulate_rgb(seq, tmp_path / "cpu", RgbConfig(**kw))
    cuda = emulate_rgb(seq, tmp_path / "cuda", RgbConfig(**kw, device="cuda"))
    np.testing.assert_array_equal(_frames(cuda, "raw"), _frames(cpu, "raw"))
    diff = np.abs(_frames(cuda) - _frames(cpu))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())
    assert json.loads((cuda / "params.json").read_text())["derived"]["device_used"].startswith("cpu, torch ")


def test_with_noise_the_torch_paths_raw_statistics_are_the_numpy_paths(tmp_path, torch_cpu):
    """A flat grey field, 6 frames of 24x30 Bayer pixels: per colour site, the mean raw DN of the two paths
    within 4 standard errors, and their standard deviations within 6 %."""
    seq = write_sequence(tmp_path / "seq", constant_frames(0.35, H, W, 6), np.arange(6) / 30.0)
    kw = dict(raw=True, flux=3e4, read_noise=3.0, seed=2)
    stats = []
    for device in ("cpu", "cuda"):
        raw = _frames(emulate_rgb(seq, tmp_path / device, RgbConfig(**kw, device=device)), "raw").astype(
            float
        )
        sites = [raw[:, 0::2, 0::2], raw[:, 0::2, 1::2], raw[:, 1::2, 0::2], raw[:, 1::2, 1::2]]
        stats.append([(s.mean(), s.std(), s.size) for s in sites])
    for (m0, s0, n), (m1, s1, _) in zip(*stats, strict=True):
        assert abs(m0 - m1) < 4 * np.hypot(s0, s1) / np.sqrt(n), (m0, m1)
        assert abs(s0 / s1 - 1) < 0.06, (s0, s1)
        assert s0 > 5  # photon noise is really there (about 7 DN here)


def test_the_torch_path_is_seeded_per_frame(tmp_path, torch_cpu):
    seq = _gradient_seq(tmp_path, n=6)
    a = emulate_rgb(seq, tmp_path / "a", RgbConfig(device="cuda", seed=3, batch_size=1), workers=1)
    b = emulate_rgb(seq, tmp_path / "b", RgbConfig(device="cuda", seed=3, batch_size=4), workers=2)
    c = emulate_rgb(seq, tmp_path / "c", RgbConfig(device="cuda", seed=4))
    np.testing.assert_array_equal(_frames(a), _frames(b))
    assert not np.array_equal(_frames(a), _frames(c))
