"""Colour of an intermediate frame by flow reversal and backward sampling (sharp, sub-pixel exact).

Splatting colours with a bilinear kernel low-passes every frame whose motion is not a whole number of
pixels. Instead, each neighbour's *motion* is splatted: every source pixel lands at its position at
the target time and deposits its displacement back to where it came from, z-buffered by depth. Each
target pixel then knows, per neighbour, where its nearest surface was in that neighbour (and what lies
behind it), and the neighbour image is sampled there with a cubic B-spline interpolant. The two
neighbours are blended by time distance, coverage and visibility (a neighbour whose surface lies
behind the other's at this pixel is occluded). Directions at infinity are sampled through the exact
rotation homography instead of splatted motion.

One module, over 400 lines: flow reversal, layer separation and backward sampling share their per-pixel
buffers and are tuned together (BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

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
    any_bg = bool(is_bg.any())
    layers = []
    for wt in (bil * m, bil * (1.0 - m)):
        cov = np.bincount(idx, weights=wt, minlength=npx)
        safe = np.where(cov > 0, cov, 1.0)

        def mean(vals: np.ndarray, wt: np.ndarray = wt, safe: np.ndarray = safe) -> np.ndarray:
            return np.bincount(idx, weights=wt * vals, minlength=npx) / safe

        bgw = mean(is_bg[k].astype(np.float64)) if any_bg else np.zeros(npx)
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


def filter_sigma(pixel_filter: dict | None) -> float:
    """Std. dev. in pixels of the 1-D pixel filter Cycles sampled (the tables of its film.cpp).

    Blackman-Harris of width W spans 2W (sigma 0.277 W; the default W = 1.5 gives 0.42 px), Gaussian
    exp(-8 x^2 / W^2) (sigma W / 4), box W (sigma W / sqrt 12). Unknown: the default filter.
    """
    kind = (pixel_filter or {}).get("type", "BLACKMAN_HARRIS")
    width = float((pixel_filter or {}).get("width", 1.5))
    if kind == "BOX":
        return width / 12**0.5
    if kind == "GAUSSIAN":
        return width / 4.0
    return 0.27701 * width


RING_TOL = 0.25
"""Largest colour error (fraction of the edge contrast) two pixels out across an edge: steps only, no ramps."""
EDGE_SIGMA = filter_sigma(None)
"""Std. dev. (pixels) of Cycles' default pixel filter (Blackman-Harris, 1.5 px)."""


@dataclass
class EdgeModel:
    """Per source pixel, a straight step between two colours seen through the pixel filter, where one fits.

    Resampling an anti-aliased step with any linear interpolant blurs it (the step is far from
    band-limited). Where the 3x3 neighbourhood of a pixel is two colours mixed by a straight edge,
    colour(o) = c0 + Phi((g . o + d0) / sigma) (c1 - c0) at offset o from the pixel centre reproduces the
    rendered pixels, and moving the edge is exact.
    """

    valid: np.ndarray
    c0: np.ndarray
    dc: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    d0: np.ndarray
    sigma: float


def _fit_step(
    nb: np.ndarray, c0: np.ndarray, dc: np.ndarray, ox: np.ndarray, oy: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edge normal (gx, gy), signed distance d0 of the centre, and whether a step fits: 3x3 colours nb."""
    from scipy.special import ndtri

    l2 = np.einsum("nc,nc->n", dc, dc)
    proj = np.einsum("knc,nc->kn", nb, dc) - np.einsum("nc,nc->n", c0, dc)
    alpha = np.clip(proj / np.where(l2 > 0, l2, 1.0), 0.0, 1.0)
    gx = (alpha * ox * np.where(oy == 0, 2.0, 1.0)).sum(0)  # Sobel
    gy = (alpha * oy * np.where(ox == 0, 2.0, 1.0)).sum(0)
    gn = np.hypot(gx, gy)
    gx, gy = gx / np.where(gn > 0, gn, 1.0), gy / np.where(gn > 0, gn, 1.0)
    u = np.where((alpha > 0.02) & (alpha < 0.98), alpha * (1.0 - alpha), 0.0)
    d = sigma * ndtri(np.clip(alpha, 0.02, 0.98))
    usum = u.sum(0)
    d0 = (u * (d - gx * ox - gy * oy)).sum(0) / np.where(usum > 0, usum, 1.0)
    return gx, gy, d0, (l2 > 1e-4) & (usum > 0) & (gn > 0)


def _steps_only(flat, h, w, py, px, c0, dc, gx, gy, d0) -> np.ndarray:
    """A sharp edge is pure colour beyond one pixel from it; a smooth ramp (which the 3x3 window alone
    cannot tell from a step) keeps changing there: check two pixels out along the edge normal."""
    contrast = np.sqrt(np.maximum((dc**2).sum(-1), 1e-12))
    ok = np.ones(len(py), dtype=bool)
    for sign in (-1.0, 1.0):
        qx = np.clip(px + np.rint(2.0 * sign * gx).astype(np.int64), 0, w - 1)
        qy = np.clip(py + np.rint(2.0 * sign * gy).astype(np.int64), 0, h - 1)
        dist = gx * (qx - px) + gy * (qy - py) + d0
        pure = c0 + (dist > 0)[:, None] * dc
        off = np.sqrt(((flat[qy * w + qx] - pure) ** 2).sum(-1)) > RING_TOL * contrast
        ok &= ~((np.abs(dist) > 1.0) & off)
    return ok


def edge_model(image: np.ndarray, sigma: float = EDGE_SIGMA, tol: float = 0.08) -> EdgeModel:
    """Fit the two-colour straight-edge model around every pixel of an HxWxC image.

    A pixel's own 3x3 neighbourhood gives a model where it holds both pure colours and the transition
    between them (pixels on the edge); pixels beside the edge borrow the model of an 8-neighbour that
    explains their own 3x3 neighbourhood best. A model counts only where it reproduces all nine pixels
    within `tol` of its colour contrast. Only pixels with contrast around them are examined.
    """
    from scipy.ndimage import maximum_filter, minimum_filter
    from scipy.special import ndtr

    h, w, nc = image.shape
    flat = np.ascontiguousarray(
        image.reshape(h * w, nc), dtype=np.float32
    )  # float32: half the memory traffic
    spread = sum(
        (maximum_filter(image[..., c], size=3, mode="nearest") - minimum_filter(image[..., c], size=3, mode="nearest")) ** 2
        for c in range(nc)
    )  # fmt: skip
    offs = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    ox = offs[:, 1].astype(np.float32)[:, None]
    oy = offs[:, 0].astype(np.float32)[:, None]

    def neighbours(py: np.ndarray, px: np.ndarray, offs: np.ndarray = offs) -> np.ndarray:
        """Colours of the neighbourhoods `offs` of pixels (py, px), len(offs) x n x C (edges clamped)."""
        yy = np.clip(py[None] + offs[:, 0, None], 0, h - 1)
        xx = np.clip(px[None] + offs[:, 1, None], 0, w - 1)
        return flat[yy * w + xx]

    # Own models, where the neighbourhood has contrast; the two colours are its extremes. (Taking
    # them from the 5x5 neighbourhood, which always holds both sides of an edge between pixel
    # centres, measured worse on rendered scenes: a third colour gets in.)
    py, px = np.nonzero(spread > 1e-4)
    nb = neighbours(py, px)
    ar = np.arange(len(py))
    dev = nb - nb.mean(0)
    ia = np.einsum("knc,knc->kn", dev, dev).argmax(0)
    c0 = nb[ia, ar]
    dev = nb - c0
    ib = np.einsum("knc,knc->kn", dev, dev).argmax(0)
    dc = nb[ib, ar] - c0
    gx, gy, d0, own = _fit_step(nb, c0, dc, ox, oy, sigma)
    own &= _steps_only(flat, h, w, py, px, c0, dc, gx, gy, d0)
    keep = np.flatnonzero(own)
    model = np.full(h * w, -1, dtype=np.int64)  # pixel -> row of its own model
    model[py[keep] * w + px[keep]] = np.arange(len(keep))
    c0, dc, gx, gy, d0 = c0[keep], dc[keep], gx[keep], gy[keep], d0[keep]

    # Each pixel next to a model takes the candidate (its own or an 8-neighbour's, re-centred on it)
    # that reproduces its 3x3 neighbourhood best.
    near = maximum_filter((model >= 0).reshape(h, w), size=3, mode="constant")
    ty, tx = np.nonzero(near)
    tnb = neighbours(ty, tx)
    n = len(ty)
    best = np.full(n, np.inf)
    pick = np.full(n, -1, dtype=np.int64)
    pd0 = np.zeros(n)
    for my, mx in offs[np.argsort(np.abs(offs).sum(1), kind="stable")]:
        yy, xx = ty + my, tx + mx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        m = np.where(inside, model[np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)], -1)
        sel = np.flatnonzero(m >= 0)
        if not len(sel):
            continue
        k = m[sel]
        md0 = d0[k] - (gx[k] * mx + gy[k] * my)  # signed distance at this pixel's centre
        pred = c0[k] + ndtr((gx[k] * ox + gy[k] * oy + md0) / sigma)[..., None] * dc[k]
        pred -= tnb[:, sel]
        err = np.sqrt(
            np.einsum("knc,knc->kn", pred, pred).max(0)
        )  # the largest of the nine (sqrt is monotonic)
        err /= np.sqrt(np.maximum(np.einsum("nc,nc->n", dc[k], dc[k]), 1e-12))
        take = err < best[sel]
        best[sel[take]] = err[take]
        pick[sel[take]] = k[take]
        pd0[sel[take]] = md0[take]
    ok = best < tol
    valid = np.zeros(h * w, dtype=bool)
    out_c0, out_dc = np.zeros((h * w, nc)), np.zeros((h * w, nc))
    out_gx, out_gy, out_d0 = np.zeros(h * w), np.zeros(h * w), np.zeros(h * w)
    t = ty[ok] * w + tx[ok]
    k = pick[ok]
    valid[t] = True
    out_c0[t], out_dc[t], out_gx[t], out_gy[t], out_d0[t] = c0[k], dc[k], gx[k], gy[k], pd0[ok]
    return EdgeModel(
        valid=valid.reshape(h, w),
        c0=out_c0.reshape(h, w, nc),
        dc=out_dc.reshape(h, w, nc),
        gx=out_gx.reshape(h, w),
        gy=out_gy.reshape(h, w),
        d0=out_d0.reshape(h, w),
        sigma=sigma,
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
    edges: EdgeModel | None = None,
    only: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample a neighbour where `layer` says its surface was: (values N x C, inside, clean).

    Where the 4x4 source pixels around the position all show the layer's surface (depth within the
    slope-aware tolerance of the layer's own source depth), a cubic B-spline interpolant of the
    prefiltered `coeffs`. Near another surface the cubic kernel would mix it in (and ring at its edge),
    so there only the 2x2 bilinear neighbours on the layer's surface are used, renormalised. `clean` is
    False where none of those show it (the layer was hidden in this neighbour). Positions more than half
    a pixel outside the image (or NaN) are not inside.
    `image`: HxWxC values; `depth`/`slope`: the neighbour's depth (background as a huge finite depth)
    and relative slope; `window`: their `window_stats`. `only` (N bool): sample just these points; the others
    get value 0, not inside, not clean (a far layer where it has no coverage: `blend` gives it no weight).
    """
    from scipy.ndimage import map_coordinates

    if only is not None:
        there = np.flatnonzero(only)
        part = Layer(**{f.name: getattr(layer, f.name)[there] for f in fields(Layer)})
        got = sample(coeffs, image, depth, slope, window, part, edges)
        n = len(only)
        full = np.zeros((n, got[0].shape[1]), got[0].dtype), np.zeros(n, bool), np.zeros(n, bool)
        for arr, values in zip(full, got, strict=True):
            arr[there] = values
        return full

    h, w = depth.shape
    sx, sy = layer.sx, layer.sy
    inside = np.isfinite(sx) & np.isfinite(sy) & (sx >= 0) & (sx <= w) & (sy >= 0) & (sy <= h)
    fx = np.clip(np.where(inside, sx, 0.5), 0.5, w - 0.5) - 0.5
    fy = np.clip(np.where(inside, sy, 0.5), 0.5, h - 0.5) - 0.5
    x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    ax, ay = fx - x0, fy - y0
    zs = np.maximum(layer.src_depth, 1e-12)

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
    # Off a single surface: the 2x2 bilinear neighbours on the layer's surface, renormalised.
    rest = np.flatnonzero(~all_match)
    rx, ry, rax, ray, rzs, rsl = x0[rest], y0[rest], ax[rest], ay[rest], zs[rest], layer.slope[rest]
    acc = np.zeros((rest.size, out.shape[1]))
    wsum = np.zeros(rest.size)
    for dx, dy, bw in (
        (0, 0, (1 - rax) * (1 - ray)),
        (1, 0, rax * (1 - ray)),
        (0, 1, (1 - rax) * ray),
        (1, 1, rax * ray),
    ):
        xi, yi = np.clip(rx + dx, 0, w - 1), np.clip(ry + dy, 0, h - 1)
        on = np.abs(depth[yi, xi] - rzs) <= (DEPTH_TOLERANCE + 3.0 * np.maximum(slope[yi, xi], rsl)) * rzs
        wk = bw * on
        acc += wk[:, None] * image[yi, xi]
        wsum += wk
    got = wsum > 1e-3
    masked = np.zeros(len(sx), dtype=bool)
    masked[rest[got]] = True
    out[rest[got]] = acc[got] / wsum[got, None]
    if edges is not None:
        from scipy.special import ndtr

        px = np.clip(np.floor(fx + 0.5).astype(np.int64), 0, w - 1)
        py = np.clip(np.floor(fy + 0.5).astype(np.int64), 0, h - 1)
        # On one surface, or on the nearest one at a silhouette (its edge moves with it).
        # Read at the 2x2's bottom-right pixel (the 4x4 window one pixel on), as it always was and was measured.
        xi, yi = np.clip(x0 + 1, 0, w - 1), np.clip(y0 + 1, 0, h - 1)
        front = zs - zlo[yi, xi] <= tol
        use = edges.valid[py, px] & inside & (all_match | (masked & front))
        qx, qy = px[use], py[use]
        a = ndtr((edges.gx[qy, qx] * (fx[use] - qx) + edges.gy[qy, qx] * (fy[use] - qy) + edges.d0[qy, qx])
                 / edges.sigma)  # fmt: skip
        out[use] = edges.c0[qy, qx] + a[:, None] * edges.dc[qy, qx]
    out[~inside] = 0.0
    return out, inside, all_match | masked


FAR_MIN_COVERAGE = 1e-9
"""A far layer with less coverage at a target pixel is not there (its samples get no weight)."""


def blend(
    sides: list[tuple[float, Layer, Layer, list[np.ndarray]]],
    beta: float,
    per_side: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per target pixel, blend the neighbours' sampled layers.

    `sides`: (time weight, near, far, [near samples N x C, far samples N x C, near inside, far inside,
    near clean, far clean]). A side whose samples are not clean (see `clean`) keeps 1 % of its weight.
    Within a side the near layer covers alpha = min(1, coverage) of the pixel (coverage ramps over the
    one-pixel anti-aliased edge) and the far layer the rest. Across sides, a side whose visible depth is
    behind the other's by more than the tolerance is occluded. Returns (values N x C, total weight N);
    `per_side`, when given, receives each side's own (values N x C, weight N without its time weight).
    """
    per_side = [] if per_side is None else per_side
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
    per_side.clear()
    for (tw, near, far, (cn, cf, ok_n, ok_f, cl_n, cl_f)), (z, sl, cov) in zip(sides, front, strict=True):
        has_far = far.coverage > FAR_MIN_COVERAGE
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
        per_side.append((col, wgt / np.where(tw > 0, tw, 1.0)))
        acc = acc + wgt[:, None] * col
        wsum = wsum + wgt
    return acc / np.where(wsum > 0, wsum, 1.0)[:, None], wsum
