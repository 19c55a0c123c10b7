"""The debug-PNG colourings equal their straightforward formulas, value for value.

`camsim.colorize` computes depth, normals and flow pictures channel by channel in place (the host draws them
for every rendered frame); the formulas below are the whole-array expressions they replace, kept here as the
oracle. Inputs carry what rendered passes carry: background (inf, 0, NaN), negative and huge values.
"""

from __future__ import annotations

import numpy as np
import pytest

from camsim import colorize

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf and huge inputs overflow, as ever


def _depth_formula(d, limits=None):
    d = np.asarray(d, dtype=np.float64)
    finite = np.isfinite(d) & (d > 0)
    inv = np.where(finite, 1.0 / np.where(finite, d, 1.0), np.nan)
    if limits is None:
        lo, hi = colorize.robust_limits(inv)
    else:
        lo, hi = 1.0 / max(limits[1], 1e-12), 1.0 / max(limits[0], 1e-12)
    with np.errstate(invalid="ignore", over="ignore"):
        rgb = colorize.turbo((np.nan_to_num(inv, nan=lo) - lo) / (hi - lo))
    rgb[~finite] = 0
    return rgb


def _normals_formula(n):
    n = np.nan_to_num(np.asarray(n, dtype=np.float64))
    rgb = ((n * 0.5 + 0.5) * 255 + 0.5).clip(0, 255).astype(np.uint8)
    rgb[np.all(n == 0, axis=-1)] = 0
    return rgb


def _flow_formula(f, max_magnitude=None):
    wheel = colorize._WHEEL32_PLANES.T
    u = np.nan_to_num(np.asarray(f)[..., 0].astype(np.float32))
    v = np.nan_to_num(np.asarray(f)[..., 1].astype(np.float32))
    mag = np.hypot(u, v)
    scale = max_magnitude if max_magnitude else max(float(mag.max()), 1e-9)
    n = len(wheel)
    fk = np.arctan2(-v, -u)
    fk *= np.float32((n - 1) / (2 * np.pi))
    fk += np.float32((n - 1) / 2)
    k0 = fk.astype(np.intp)
    w = fk - k0
    k0 %= n
    col = wheel[k0]
    col += w[..., None] * (wheel[(k0 + 1) % n] - col)
    np.minimum(np.divide(mag, np.float32(scale), out=mag), 1.0, out=mag)
    col -= 1.0
    col *= mag[..., None]
    col += 1.0
    np.clip(col, 0.0, 1.0, out=col)
    col *= 255
    col += 0.5
    return col.astype(np.uint8)


def _sprinkle(a: np.ndarray, g: np.random.Generator, values) -> np.ndarray:
    flat = a.reshape(-1, *a.shape[2:])
    for v in values:
        flat[g.integers(0, len(flat), 40)] = v
    return a


@pytest.mark.parametrize("seed", range(4))
def test_depth_picture_equals_the_formula(seed):
    g = np.random.default_rng(seed)
    d = (g.lognormal(1.0, 1.0, (61, 83))).astype(np.float32)
    _sprinkle(d, g, [np.inf, 0.0, -1.0, np.nan, 1e-40, 3e38])
    for limits in (None, (0.5, 20.0)):
        np.testing.assert_array_equal(colorize.depth(d, limits), _depth_formula(d, limits))
    np.testing.assert_array_equal(colorize.depth(d.astype(np.float64)), _depth_formula(d))
    assert colorize.depth(np.full((3, 4), np.inf)).max() == 0  # all background


@pytest.mark.parametrize("seed", range(4))
def test_normals_picture_equals_the_formula(seed):
    g = np.random.default_rng(seed)
    n = g.normal(size=(57, 64, 3)).astype(np.float32)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    _sprinkle(n, g, [0.0, np.nan, np.inf, -np.inf, 2.0])
    n[5, 6] = (0.0, 0.0, 0.0)
    n[7, 8] = (0.0, -0.0, 0.0)
    n[9, 10] = (0.0, 0.0, np.nan)
    np.testing.assert_array_equal(colorize.normals(n), _normals_formula(n))


@pytest.mark.parametrize("seed", range(4))
def test_flow_picture_equals_the_formula(seed):
    g = np.random.default_rng(seed)
    f = (g.normal(size=(59, 70, 4)) * g.choice([0.01, 1.0, 30.0], (59, 70, 1))).astype(np.float32)
    _sprinkle(f, g, [0.0, np.nan, np.inf, -np.inf, -0.0])
    f[3, 4, :2] = (-1.0, 0.0)  # the wheel's seam (arctan2 = +-pi)
    f[3, 5, :2] = (-1.0, -0.0)
    for limit in (None, 2.5):
        with np.errstate(invalid="ignore", over="ignore"):
            want = _flow_formula(f, limit)
            got = colorize.flow(f, limit)
        np.testing.assert_array_equal(got, want)


def test_turbo_equals_the_formula_over_every_level_and_outside_the_range():
    x = np.concatenate([np.linspace(-0.5, 1.5, 200_001), [np.inf, -np.inf]]).astype(np.float32)
    out = np.empty((len(x), 3), np.float32)
    for c, coeffs in enumerate((colorize._TURBO_R, colorize._TURBO_G, colorize._TURBO_B)):
        acc = np.full(len(x), coeffs[-1], np.float32)
        xc = np.clip(x, 0.0, 1.0)
        for k in reversed(coeffs[:-1]):
            acc = acc * xc + np.float32(k)
        out[:, c] = np.clip(acc, 0.0, 1.0) * 255
    out += 0.5
    np.testing.assert_array_equal(colorize.turbo(x), out.astype(np.uint8))
