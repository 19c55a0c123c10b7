"""Colour of an intermediate frame by flow reversal and backward sampling (sharp, sub-pixel exact).

Splatting colours with a bilinear kernel low-passes every frame whose motion is not a whole number of
pixels. Instead, each neighbour's *motion* is splatted: every source pixel lands at its position at
the target time and deposits its displacement back to where it came from, z-buffered by depth. Each
target pixel then knows, per neighbour, where its nearest surface was in that neighbour (and what lies
behind it), and the neighbour image is sampled there with a cubic B-spline interpolant. The two
neighbours are blended by time distance, coverage and visibility (a neighbour whose surface lies
behind the other's at this pixel is occluded). Directions at infinity are sampled through the exact
rotation homography instead of splatted motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camsim.interpolate.background import map_points, rotation_homography

NEAR_MIN_COVERAGE = 0.05
"""A side's nearest layer below this coverage does not decide that side's visible depth."""

DEPTH_TOLERANCE = 0.01
"""Relative depth difference (on top of the surface's own slope) at which one side occludes the other."""


UNCLEAN_WEIGHT = 0.01
"""Weight factor of a sample whose source neighbourhood shows another surface (the other side is preferred)."""


def footprint(x: np.ndarray, y: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear splat footprint of points (x, y) (pixel-centre origin 0.5): target index, weight, point index."""
    fx, fy = x - 0.5, y - 0.5
    x0, y0 = np.floor(fx), np.floor(fy)
    ax, ay = fx - x0, fy - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    idx_l, b_l, src_l = [], [], []
    ar = np.arange(len(x))
    for dx, dy, bw in (
        (0, 0, (1 - ax) * (1 - ay)),
        (1, 0, ax * (1 - ay)),
        (0, 1, (1 - ax) * ay),
        (1, 1, ax * ay),
    ):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & (bw > 0)
        idx_l.append((yi * w + xi)[ok])
        b_l.append(bw[ok])
        src_l.append(ar[ok])
    return np.concatenate(idx_l), np.concatenate(b_l), np.concatenate(src_l)


@dataclass
class Layer:
    """One depth layer of one neighbour, seen from the target grid (all arrays flat, length H*W)."""

    coverage: np.ndarray
    """Summed bilinear weight of the source pixels of this layer landing here."""
    sx: np.ndarray
    """Source x (pixel-centre origin 0.5) in the neighbour where this layer's surface was."""
    sy: np.ndarray
    depth: np.ndarray
    """Depth of the layer at the target time (background: a huge finite stand-in)."""
    slope: np.ndarray
    """Relative depth change per pixel of the surface (tolerance for depth comparisons)."""
    src_depth: np.ndarray
    """Depth of the layer's surface in the neighbour itself (to check what the sample position shows)."""
    background: np.ndarray
    """Bool: the layer is the world background (sampled through the rotation homography)."""


def reverse_layers(
    u: np.ndarray,
    v: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    z_src: np.ndarray,
    slope: np.ndarray,
    is_bg: np.ndarray,
    h: int,
    w: int,
    beta: float,
) -> tuple[Layer, Layer]:
    """Near and far layers of one neighbour at the target time from its source pixels (u, v) -> (x, y).

    z: depth of each moved pixel at the target time; membership of the nearest layer is the same soft
    z-test as the colour splat, exp(-beta * max(0, (z - z_min)/z_min - 2 * slope)).
    """
    npx = h * w
    idx, bil, k = footprint(x, y, h, w)
    zk = z[k]
    zmin = np.full(npx, np.inf)
    np.minimum.at(zmin, idx, zk)
    excess = np.maximum(0.0, (zk - zmin[idx]) / zmin[idx] - 2.0 * slope[k])
    m = np.exp(-beta * excess)
    du, dv = (u - x)[k], (v - y)[k]  # displacement from the target position back to the source
    layers = []
    for wt in (bil * m, bil * (1.0 - m)):
        cov = np.bincount(idx, weights=wt, minlength=npx)
        safe = np.where(cov > 0, cov, 1.0)

        def mean(vals: np.ndarray, wt: np.ndarray = wt, safe: np.ndarray = safe) -> np.ndarray:
            return np.bincount(idx, weights=wt * vals, minlength=npx) / safe

        bgw = mean(is_bg[k].astype(np.float64))
        layers.append(
            Layer(
                coverage=cov,
                sx=mean(du),
                sy=mean(dv),
                depth=mean(zk),
                src_depth=mean(z_src[k]),
                slope=mean(slope[k]),
                background=bgw > 0.5,
            )
        )
    near, far = layers
    tx, ty = _grid(h, w)
    for layer in (near, far):
        layer.sx += tx
        layer.sy += ty
    return near, far


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return u.ravel(), v.ravel()


def exact_background(
    layer: Layer, c2w_t: np.ndarray, K_t: np.ndarray, c2w_src: np.ndarray, K_src: np.ndarray, h: int, w: int
) -> None:
    """Replace splatted source positions of background layers by the exact rotation homography, in place."""
    if not layer.background.any():
        return
    tx, ty = _grid(h, w)
    sel = layer.background
    bx, by, ok = map_points(rotation_homography(c2w_t, K_t, c2w_src, K_src), tx[sel], ty[sel])
    layer.sx[sel] = np.where(ok, bx, np.nan)
    layer.sy[sel] = np.where(ok, by, np.nan)


def prefilter(image: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of each channel of an HxWxC image (computed once per source frame)."""
    from scipy.ndimage import spline_filter

    return np.stack(
        [spline_filter(image[..., c], order=3, mode="nearest") for c in range(image.shape[2])], axis=-1
    )


def window_stats(depth: np.ndarray, slope: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel (x0, y0): min depth, max depth and max slope over the 4x4 window x0-1..x0+2, y0-1..y0+2."""
    from scipy.ndimage import maximum_filter, minimum_filter

    kw = {"size": 4, "mode": "nearest", "origin": -1}
    return minimum_filter(depth, **kw), maximum_filter(depth, **kw), maximum_filter(slope, **kw)


def sample(
    coeffs: np.ndarray,
    image: np.ndarray,
    depth: np.ndarray,
    slope: np.ndarray,
    window: tuple[np.ndarray, np.ndarray, np.ndarray],
    layer: Layer,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample a neighbour where `layer` says its surface was: (values N x C, inside, clean).

    Where the 4x4 source pixels around the position all show the layer's surface (depth within the
    slope-aware tolerance of the layer's own source depth), a cubic B-spline interpolant of the
    prefiltered `coeffs`. Near another surface the cubic kernel would mix it in (and ring at its edge),
    so there only the 2x2 bilinear neighbours on the layer's surface are used, renormalised. `clean` is
    False where none of those show it (the layer was hidden in this neighbour). Positions more than half
    a pixel outside the image (or NaN) are not inside.
    `image`: HxWxC values; `depth`/`slope`: the neighbour's depth (background as a huge finite depth)
    and relative slope; `window`: their `window_stats`.
    """
    from scipy.ndimage import map_coordinates

    h, w = depth.shape
    sx, sy = layer.sx, layer.sy
    inside = np.isfinite(sx) & np.isfinite(sy) & (sx >= 0) & (sx <= w) & (sy >= 0) & (sy <= h)
    fx = np.clip(np.where(inside, sx, 0.5), 0.5, w - 0.5) - 0.5
    fy = np.clip(np.where(inside, sy, 0.5), 0.5, h - 0.5) - 0.5
    x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    ax, ay = fx - x0, fy - y0
    zs = np.maximum(layer.src_depth, 1e-12)

    def match(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xi, yi = np.clip(x0 + dx, 0, w - 1), np.clip(y0 + dy, 0, h - 1)
        tol = DEPTH_TOLERANCE + 3.0 * np.maximum(slope[yi, xi], layer.slope)
        return np.abs(depth[yi, xi] - zs) <= tol * zs, xi, yi

    # 4x4 window x0-1..x0+2: its depth range and steepest slope, precomputed per source pixel.
    zlo, zhi, slo = window
    xi, yi = np.clip(x0, 0, w - 1), np.clip(y0, 0, h - 1)
    tol = (DEPTH_TOLERANCE + 3.0 * np.maximum(slo[yi, xi], layer.slope)) * zs
    all_match = (zhi[yi, xi] - zs <= tol) & (zs - zlo[yi, xi] <= tol)
    out = np.stack(
        [
            map_coordinates(coeffs[..., c], [fy, fx], order=3, mode="nearest", prefilter=False)
            for c in range(coeffs.shape[2])
        ],
        axis=-1,
    )
    acc = np.zeros_like(out)
    wsum = np.zeros(len(sx))
    for dx, dy, bw in (
        (0, 0, (1 - ax) * (1 - ay)),
        (1, 0, ax * (1 - ay)),
        (0, 1, (1 - ax) * ay),
        (1, 1, ax * ay),
    ):
        ok, xi, yi = match(dx, dy)
        wk = bw * ok
        acc += wk[:, None] * image[yi, xi]
        wsum += wk
    masked = ~all_match & (wsum > 1e-3)
    out[masked] = acc[masked] / wsum[masked, None]
    out[~inside] = 0.0
    return out, inside, all_match | masked


def blend(
    sides: list[tuple[float, Layer, Layer, list[np.ndarray]]], beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per target pixel, blend the neighbours' sampled layers.

    `sides`: (time weight, near, far, [near samples N x C, far samples N x C, near inside, far inside,
    near clean, far clean]). A side whose samples are not clean (see `clean`) keeps 1 % of its weight.
    Within a side the near layer covers alpha = min(1, coverage) of the pixel (coverage ramps over the
    one-pixel anti-aliased edge) and the far layer the rest. Across sides, a side whose visible depth is
    behind the other's by more than the tolerance is occluded. Returns (values N x C, total weight N).
    """
    front = []
    for _, near, far, _s in sides:
        use_near = near.coverage >= NEAR_MIN_COVERAGE
        front.append(
            (
                np.where(use_near, near.depth, far.depth),
                np.where(use_near, near.slope, far.slope),
                near.coverage + far.coverage,
            )
        )
    present = [cov > NEAR_MIN_COVERAGE for _, _, cov in front]
    zmin = np.min([np.where(p, z, np.inf) for (z, _, _), p in zip(front, present, strict=True)], axis=0)
    zmin = np.where(np.isfinite(zmin), zmin, 1.0)
    acc, wsum = 0.0, 0.0
    for (tw, near, far, (cn, cf, ok_n, ok_f, cl_n, cl_f)), (z, sl, cov) in zip(sides, front, strict=True):
        has_far = far.coverage > 1e-9
        alpha = np.where(has_far, np.minimum(1.0, near.coverage), 1.0)
        alpha = np.where(ok_n, alpha, 0.0)
        alpha = np.where(ok_f | ~has_far, alpha, np.where(ok_n, 1.0, 0.0))
        valid = (ok_n & (near.coverage > 0)) | (ok_f & has_far)
        col = alpha[:, None] * cn + (1.0 - alpha[:, None]) * cf
        excess = np.maximum(0.0, (z - zmin) / zmin - 2.0 * sl - DEPTH_TOLERANCE)
        conf = alpha * np.where(cl_n, 1.0, UNCLEAN_WEIGHT) + (1.0 - alpha) * np.where(
            cl_f, 1.0, UNCLEAN_WEIGHT
        )
        wgt = tw * np.minimum(1.0, cov) * np.exp(-beta * excess) * valid * conf
        acc = acc + wgt[:, None] * col
        wsum = wsum + wgt
    return acc / np.where(wsum > 0, wsum, 1.0)[:, None], wsum
