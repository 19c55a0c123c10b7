"""Colorize ground truth for people: depth (turbo), flow (Middlebury colour wheel), normals, ids, images.

Pure numpy; every function takes float/int arrays and returns HxWx3 uint8 RGB. `camsim.passes` says which
function draws which kind.
"""

from __future__ import annotations

import numpy as np

_TURBO_R = (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943)
_TURBO_G = (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604)
_TURBO_B = (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973)


def turbo(x: np.ndarray) -> np.ndarray:
    """Google's Turbo colormap (polynomial fit by Ruofei Du) of values in [0, 1] (float32: a picture for people)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    out = np.empty((*x.shape, 3), np.uint8)
    acc = np.empty_like(x)
    for c, coeffs in enumerate((_TURBO_R, _TURBO_G, _TURBO_B)):
        acc.fill(coeffs[-1])
        for k in reversed(coeffs[:-1]):
            acc *= x
            acc += np.float32(k)
        np.clip(acc, 0.0, 1.0, out=acc)
        acc *= 255
        acc += 0.5
        out[..., c] = acc
    return out


def robust_limits(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """Percentile limits of the finite values (so a few far pixels do not wash the image out)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [low, high])
    if hi <= lo:
        hi = lo + 1e-6
    return float(lo), float(hi)


def depth(d: np.ndarray, limits: tuple[float, float] | None = None) -> np.ndarray:
    """Turbo of inverse depth (near = red, far = blue); background (inf) is black."""
    inv = np.array(d, dtype=np.float64)  # a copy: inverted in place
    finite = np.isfinite(inv)
    finite &= inv > 0
    np.divide(1.0, inv, out=inv, where=finite)
    if limits is None:
        lo, hi = robust_limits(inv[finite])
    else:
        lo, hi = 1.0 / max(limits[1], 1e-12), 1.0 / max(limits[0], 1e-12)
    np.logical_not(finite, out=finite)  # now the background
    np.copyto(inv, lo, where=finite)  # (drawn black below)
    inv -= lo
    inv /= hi - lo
    rgb = turbo(inv)
    rgb[finite] = 0
    return rgb


def disparity(d: np.ndarray, limits: tuple[float, float] | None = None) -> np.ndarray:
    """Turbo of stereo disparity (near = large = red, far = blue); background (0) is black."""
    d = np.asarray(d, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    lo, hi = robust_limits(np.where(valid, d, np.nan)) if limits is None else limits
    rgb = turbo((np.where(valid, d, lo) - lo) / max(hi - lo, 1e-12))
    rgb[~valid] = 0
    return rgb


def image(a: np.ndarray) -> np.ndarray:
    """An image of any type as 8-bit RGB: 16-bit shifted to 8, float (linear light) gamma 2.2, binary 0/1
    frames (SPAD) to 0/255, grey repeated into RGB, alpha dropped."""
    a = np.asarray(a)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = (np.clip(a, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    elif a.dtype == np.bool_ or (a.dtype == np.uint8 and a.size and a.max() <= 1):
        a = a.astype(np.uint8) * 255  # binary (SPAD) frames
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[..., :3])


def _make_colorwheel() -> np.ndarray:
    ry, yg, gc, cb, bm, mr = 15, 6, 4, 11, 13, 6
    wheel = []
    for n, (a, b) in zip(
        (ry, yg, gc, cb, bm, mr),
        (
            ((255, 0, 0), (255, 255, 0)),
            ((255, 255, 0), (0, 255, 0)),
            ((0, 255, 0), (0, 255, 255)),
            ((0, 255, 255), (0, 0, 255)),
            ((0, 0, 255), (255, 0, 255)),
            ((255, 0, 255), (255, 0, 0)),
        ),
        strict=True,
    ):
        t = np.arange(n)[:, None] / n
        wheel.append(np.array(a) * (1 - t) + np.array(b) * t)
    return np.concatenate(wheel)


_WHEEL = _make_colorwheel()
_WHEEL32_PLANES = np.ascontiguousarray((_WHEEL / 255.0).astype(np.float32).T)
"""The colour wheel as three contiguous channel tables (R, G, B), values in [0, 1]."""


def flow(f: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Middlebury colour coding of an HxWx2 flow (hue = direction, saturation = magnitude; float32: a picture
    for people)."""
    f = np.asarray(f)
    u = np.nan_to_num(f[..., 0].astype(np.float32), copy=False)
    v = np.nan_to_num(f[..., 1].astype(np.float32), copy=False)
    mag = np.hypot(u, v)
    scale = max_magnitude if max_magnitude else max(float(mag.max()), 1e-9)
    n = len(_WHEEL)
    np.negative(u, out=u)
    np.negative(v, out=v)
    fk = np.arctan2(v, u, out=v)  # in [-pi, pi]
    fk *= np.float32((n - 1) / (2 * np.pi))
    fk += np.float32((n - 1) / 2)  # in [0, n - 1]
    k0 = fk.astype(np.intp)  # floor: fk >= 0
    w = fk - k0  # float64 (float32 - intp)
    k0 %= n
    k1 = k0 + 1
    k1 %= n
    np.minimum(np.divide(mag, np.float32(scale), out=mag), 1.0, out=mag)
    out = np.empty((*mag.shape, 3), np.uint8)
    # Channel by channel (contiguous planes, not 3-wide rows): wheel colour a + w (b - a) (in float64, stored
    # as float32), faded to white by the magnitude.
    for c in range(3):
        col = _WHEEL32_PLANES[c].take(k0)
        step = _WHEEL32_PLANES[c].take(k1)
        step -= col
        np.add(col, w * step, out=col)
        col -= 1.0
        col *= mag
        col += 1.0
        np.clip(col, 0.0, 1.0, out=col)
        col *= 255
        col += 0.5
        out[..., c] = col
    return out


def normals(n: np.ndarray) -> np.ndarray:
    """Map unit normals from [-1, 1] to RGB; zero-length (background) is black."""
    n = np.asarray(n)
    rgb = np.empty(n.shape, np.uint8)
    zero = np.ones(n.shape[:-1], bool)
    for c in range(n.shape[-1]):  # channel planes, in float64: ((x * 0.5 + 0.5) * 255 + 0.5) clipped
        x = np.nan_to_num(n[..., c].astype(np.float64), copy=False)
        zero &= x == 0
        x *= 0.5
        x += 0.5
        x *= 255
        x += 0.5
        np.clip(x, 0, 255, out=x)
        rgb[..., c] = x
    rgb[zero] = 0
    return rgb


def segmentation(ids: np.ndarray) -> np.ndarray:
    """Distinct, deterministic colours per integer id (golden-ratio hues); id 0 is black."""
    ids = np.asarray(ids)
    if ids.size and ids.dtype.kind in "ui" and ids.min() >= 0 and ids.max() < 1 << 20:
        return _id_colours(np.arange(int(ids.max()) + 1))[ids]  # each id's colour once, then looked up
    return _id_colours(ids.astype(np.int64))


def _id_colours(ids: np.ndarray) -> np.ndarray:
    hue = (ids * 0.6180339887498949) % 1.0
    sat = 0.55 + 0.45 * ((ids * 7) % 3) / 2
    val = 0.75 + 0.25 * ((ids * 5) % 2)
    rgb = _hsv_to_rgb(hue, sat, val)
    rgb[ids == 0] = 0
    return rgb


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return (np.stack([r, g, b], axis=-1) * 255 + 0.5).astype(np.uint8)


HOLE_COLOUR = np.array([255, 0, 255], np.uint8)
"""Magenta: pixels neither neighbour covered in an interpolated frame."""


def holes(frame: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """An interpolated frame's hole mask: the frame (HxWx3 uint8, or black) at a third of its brightness,
    hole pixels (`mask` true or non-zero) in HOLE_COLOUR."""
    mask = np.asarray(mask).astype(bool)
    out = np.zeros((*mask.shape, 3), np.uint8) if frame is None else np.asarray(frame, dtype=np.uint8) // 3
    out[mask] = HOLE_COLOUR
    return out
