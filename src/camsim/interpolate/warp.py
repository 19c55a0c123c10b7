"""Forward-warp two neighbouring frames to an intermediate time with depth-aware softmax splatting.

Every source pixel of frame A (time 0) moves along its exact forward flow and every pixel of frame B
(time 1) along its exact backward flow; world-background pixels (depth +inf, zero flow in Blender)
move with the camera rotation (`background.py`). Each moved pixel is splatted bilinearly onto its
four nearest target pixels. Collisions are resolved by depth: a contribution's weight is

    w = time weight · bilinear weight · exp(-beta · max(0, (z - z_min) / z_min - tau))

where z_min is the nearest depth landing on that target pixel (both frames together) and tau is the
contribution's own relative depth slope per pixel (so a slanted surface is not mistaken for an
occlusion). Contributions from both frames share one accumulator, so a region only one frame sees
is filled from that frame alone; pixels no contribution reaches are holes, filled from the nearest
covered pixel and reported in a mask. Segmentation takes the single heaviest contribution (no
blending); depth and normals average only surface contributions. Colours do not come from this splat
(a bilinear colour splat blurs sub-pixel motion) but from flow reversal and cubic backward sampling
(`reverse.py`), blended in linear light; the splat's colour is only a fallback where that finds none.

One module, just over 400 lines: the splatting kernels and their depth test belong together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from camsim.interpolate import fusion, reverse
from camsim.interpolate.background import map_points, rotation_homography

BACKGROUND_DEPTH_FACTOR = 1e6
"""World background takes part in the depth test as a surface this many times farther than the farthest one."""

CONSISTENCY_PX = 1.0
"""Forward/backward flow disagreement (pixels) above which a pixel counts as occluded in the other frame."""

HOLE_COVERAGE = 1e-3
"""Target pixels whose summed (time x bilinear) coverage is below this are holes."""


@dataclass
class FrameData:
    """One rendered frame in memory, in the units the warp needs."""

    rgb: np.ndarray
    """HxWxC float64 linear light (sRGB decoded)."""
    depth: np.ndarray
    """HxW planar depth, +inf for world background."""
    flow: np.ndarray
    """HxWx4: forward (dx, dy) to the next frame, backward (dx, dy) to the previous; pixels, y down."""
    c2w: np.ndarray
    """4x4 camera-to-world, OpenGL camera axes."""
    K: np.ndarray
    """3x3 intrinsics, top-left-corner pixel origin."""
    segmentation: np.ndarray | None = None
    """HxW uint32 object ids."""
    normals: np.ndarray | None = None
    """HxWx3 unit normals in the camera frame (0 on background)."""
    linear: np.ndarray | None = None
    """HxWx3 scene-linear RGB (optional render output)."""
    albedo: np.ndarray | None = None
    """HxWx3 scene-linear diffuse albedo (optional render output)."""


@dataclass
class WarpedFrame:
    """An interpolated frame and its ground truth at the new time."""

    rgb: np.ndarray
    """HxWxC linear light."""
    depth: np.ndarray
    flow: np.ndarray
    """HxWx4 flow in units of the new frame spacing (forward, backward)."""
    hole: np.ndarray
    """HxW bool: no source pixel of either frame landed here (filled from the nearest covered pixel)."""
    segmentation: np.ndarray | None = None
    normals: np.ndarray | None = None
    linear: np.ndarray | None = None
    albedo: np.ndarray | None = None


def _relative_slope(depth: np.ndarray) -> np.ndarray:
    """Per pixel, relative depth change to its smoother neighbour along x plus along y (0 where unknown)."""
    z = np.where(np.isfinite(depth), depth, np.nan)
    pad = np.pad(z, 1, mode="constant", constant_values=np.nan)
    c = pad[1:-1, 1:-1]
    with np.errstate(invalid="ignore"):
        gx = np.fmin(np.abs(pad[1:-1, 2:] - c), np.abs(pad[1:-1, :-2] - c))
        gy = np.fmin(np.abs(pad[2:, 1:-1] - c), np.abs(pad[:-2, 1:-1] - c))
        slope = (np.nan_to_num(gx) + np.nan_to_num(gy)) / c
    return np.nan_to_num(slope, nan=0.0, posinf=0.0)


class _Side:
    """Everything about one source frame that does not depend on the target time."""

    def __init__(self, src: FrameData, other: FrameData, direction: int) -> None:
        h, w = src.depth.shape
        self.src, self.direction = src, direction
        self.u, self.v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        flow = src.flow[..., 0:2] if direction > 0 else src.flow[..., 2:4]
        other_back = other.flow[..., 2:4] if direction > 0 else other.flow[..., 0:2]
        self.bg = ~np.isfinite(src.depth)
        self.flow = np.where(self.bg[..., None], 0.0, np.nan_to_num(flow.astype(np.float64)))
        # Curved image motion: the parabola through the pixel's positions one frame back, now and one
        # frame on (both rendered flows of this frame) is x(s) = x + s·f − s(1 − s)·(f + g)/2 with f the
        # flow towards the other frame and g the flow away from it. Left linear where f + g is implausibly
        # large for the motion (flows from unrelated surfaces), and on the world background.
        away = src.flow[..., 2:4] if direction > 0 else src.flow[..., 0:2]
        away = np.where(self.bg[..., None], 0.0, np.nan_to_num(away.astype(np.float64)))
        accel = self.flow + away
        plausible = np.linalg.norm(accel, axis=-1) <= 0.5 * np.maximum(
            np.linalg.norm(self.flow, axis=-1), np.linalg.norm(away, axis=-1)
        )
        self.accel = np.where(plausible[..., None], accel, 0.0)
        # Where the other frame sees the same point (forward-backward consistent), its depth there
        # lets depth be interpolated; elsewhere the point is reprojected as if static.
        qx = np.floor(self.u + self.flow[..., 0]).astype(np.int64)
        qy = np.floor(self.v + self.flow[..., 1]).astype(np.int64)
        inside = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h) & ~self.bg
        qxc, qyc = np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1)
        z_other = other.depth[qyc, qxc].astype(np.float64)
        err = np.linalg.norm(self.flow + other_back[qyc, qxc], axis=-1)
        self.consistent = inside & np.isfinite(z_other) & (err < CONSISTENCY_PX)
        self.z_src = np.where(self.bg, 1.0, src.depth).astype(np.float64)
        self.z_other = np.where(self.consistent, z_other, self.z_src)
        # World points of every surface pixel (for the static-reprojection depth).
        from camsim.transforms import unproject

        self.points = unproject(self.z_src, src.c2w, src.K)
        self.slope = _relative_slope(src.depth)

    def contributions(self, frac: float, c2w_t: np.ndarray, K_t: np.ndarray, n_new: int):
        """Target positions, depths, time weights and values of every source pixel at fraction `frac`."""
        bend = 0.5 * frac * (1.0 - frac)
        x = self.u + frac * self.flow[..., 0] - bend * self.accel[..., 0]
        y = self.v + frac * self.flow[..., 1] - bend * self.accel[..., 1]
        valid = np.ones(x.shape, dtype=bool)
        if self.bg.any():
            H = rotation_homography(self.src.c2w, self.src.K, c2w_t, K_t)
            bx, by, bvalid = map_points(H, self.u[self.bg], self.v[self.bg])
            x[self.bg], y[self.bg] = bx, by
            valid[self.bg] = bvalid
        w2c = np.eye(4)  # rigid inverse: rotation transposed
        w2c[:3, :3] = c2w_t[:3, :3].T
        w2c[:3, 3] = -c2w_t[:3, :3].T @ c2w_t[:3, 3]
        z_static = -(self.points @ w2c[2, :3] + w2c[2, 3])
        z = np.where(self.consistent, (1 - frac) * self.z_src + frac * self.z_other, z_static)
        z = np.where(self.bg, np.inf, z)
        valid &= self.bg | (z > 0)
        motion = self.direction * self.flow / n_new  # per new frame step, forward in time
        flow_new = np.concatenate([motion, -motion], axis=-1)
        rot = w2c[:3, :3] @ self.src.c2w[:3, :3]  # source camera frame -> target camera frame
        normals = None if self.src.normals is None else self.src.normals.astype(np.float64) @ rot.T
        return x, y, z, valid, flow_new, normals


EDGE_JUMP = 0.05
"""Relative depth step to a neighbour above which a pixel counts as part of that nearer surface's edge."""


def edge_attached(src: FrameData, jump: float = EDGE_JUMP) -> FrameData:
    """The frame with each anti-aliased silhouette pixel moved with the nearer surface it shows.

    An anti-aliased silhouette blends the occluder into the pixels around it, and that blend travels
    with the silhouette, not with the surface behind. Cycles takes depth from one sample at the pixel
    centre but averages motion vectors over the pixel's surface samples, so an edge pixel's flow is
    a f_near + (1 - a) f_far, with f_near, f_far the flows of the nearest interior pixels of the two
    surfaces (within 2 px): that gives the occluder's coverage a of the pixel. Pixels with a >= 1/2 move
    with the nearer surface (its interior flow and depth); the rest keep their own. Where the two
    flows are too alike to tell, or the far side is world background (no motion vectors), a pixel
    that borders a nearer surface moves with it (the "closest depth in 3x3" rule of temporal
    anti-aliasing). Colours are unchanged. Used for colour only: ground truth keeps each pixel's own.
    """
    from scipy.ndimage import maximum_filter, minimum_filter

    h, w = src.depth.shape
    z = np.where(np.isfinite(src.depth), src.depth, np.inf)
    flow = np.nan_to_num(src.flow.astype(np.float64))
    zn = minimum_filter(z, size=3, mode="nearest")
    zf = maximum_filter(z, size=3, mode="nearest")
    with np.errstate(invalid="ignore"):
        edge = ~(zf <= zn * (1.0 + jump))  # a depth step within one pixel (inf against inf is none)
        edge &= ~(np.isinf(zf) & np.isinf(zn))
    zpad = np.pad(z, 2, mode="edge")
    epad = np.pad(edge, 2, mode="constant", constant_values=True)
    fpad = np.pad(flow, ((2, 2), (2, 2), (0, 0)), mode="edge")
    f_near, f_far = np.full_like(flow, np.nan), np.full_like(flow, np.nan)
    z_near, z_far = np.full((h, w), np.nan), np.full((h, w), np.nan)
    offsets = sorted(
        ((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)), key=lambda o: o[0] ** 2 + o[1] ** 2
    )
    with np.errstate(invalid="ignore"):
        for dy, dx in offsets:
            zq = zpad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]
            interior = edge & ~epad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]
            fq = fpad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]
            for zsel, fsel, ok in (
                (z_near, f_near, interior & (zq <= zn * (1.0 + jump)) & np.isnan(z_near)),
                (z_far, f_far, interior & (zq >= zf * (1.0 - jump)) & np.isfinite(zq) & np.isnan(z_far)),
            ):
                zsel[ok] = zq[ok]
                fsel[ok] = fq[ok]
    diff = f_near - f_far
    dd = (diff * diff).sum(-1)
    known = edge & np.isfinite(z_near) & np.isfinite(z_far) & (dd > 0.25)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = ((flow - f_far) * diff).sum(-1) / dd
    to_near = known & (coverage >= 0.5)
    depth, new_flow = src.depth.copy(), flow.copy()
    new_flow[to_near] = f_near[to_near]
    depth[to_near] = np.minimum(depth[to_near], z_near[to_near])
    # Undecidable: the closest-depth 8-neighbour carries the pixel.
    pad = np.pad(z, 1, mode="constant", constant_values=np.inf)
    best = z.copy()
    oy, ox = np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cand = pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            better = cand < best
            best = np.where(better, cand, best)
            oy[better], ox[better] = dy, dx
    with np.errstate(invalid="ignore"):
        moved = (best < z * (1.0 - jump)) & ~known
    yy, xx = np.mgrid[0:h, 0:w]
    qy, qx = yy + oy, xx + ox
    depth[moved] = src.depth[qy, qx][moved]
    new_flow[moved] = flow[qy, qx][moved]
    return replace(src, depth=depth, flow=new_flow, normals=None)  # normals: ground truth, not needed


def _fill_holes(arrays: list[np.ndarray], hole: np.ndarray) -> None:
    """Copy each hole pixel from its nearest covered pixel, in place."""
    if not hole.any() or hole.all():
        return
    from scipy.ndimage import distance_transform_edt

    _, (iy, ix) = distance_transform_edt(hole, return_distances=True, return_indices=True)
    for a in arrays:
        a[hole] = a[iy[hole], ix[hole]]


@dataclass
class ColourModel:
    """What sampling colours needs of one source frame alone (both pairs the frame belongs to can share it)."""

    attached: FrameData
    """The frame with its silhouette pixels moved with the nearer surface (`edge_attached`)."""
    coeffs: np.ndarray
    """Cubic-spline coefficients of `image` (`reverse.prefilter`)."""
    image: np.ndarray
    """HxWxC: the frame's colours, then its linear and albedo images where present."""
    edges: reverse.EdgeModel


def colour_model(src: FrameData, edge_sigma: float = reverse.EDGE_SIGMA) -> ColourModel:
    """The `ColourModel` of a source frame."""
    h, w = src.depth.shape
    imgs = [src.rgb.reshape(h, w, -1)] + [x for x in (src.linear, src.albedo) if x is not None]
    img = np.concatenate(imgs, axis=-1).astype(np.float64)
    return ColourModel(edge_attached(src), reverse.prefilter(img), img, reverse.edge_model(img, edge_sigma))


class PairWarper:
    """Interpolates any number of intermediate frames between two neighbouring rendered frames."""

    def __init__(
        self,
        a: FrameData,
        b: FrameData,
        beta: float = 60.0,
        edge_sigma: float = reverse.EDGE_SIGMA,
        appearance: bool = True,
        models: tuple[ColourModel, ColourModel] | None = None,
    ) -> None:
        """`models`: the two frames' `colour_model` (with `edge_sigma`) where already made."""
        if a.depth.shape != b.depth.shape:
            raise ValueError("frames of a pair differ in size")
        self.a, self.b, self.beta = a, b, beta
        # Colour fusion with an appearance flow where the exact flow does not explain the change (fusion.py).
        self.exact_flows = (a.flow[..., 0:2], b.flow[..., 2:4])  # a -> b and b -> a
        self.appearance = fusion.appearance_flows(a.rgb, b.rgb, self.exact_flows) if appearance else None
        self.sharp = fusion.sharpness(self.appearance) if self.appearance is not None else None
        self.unexplained = (
            (fusion.unexplained_motion(self.exact_flows[0], a.segmentation),
             fusion.unexplained_motion(self.exact_flows[1], b.segmentation))
            if appearance else None
        )  # fmt: skip
        self.sides = (_Side(a, b, +1), _Side(b, a, -1))
        ma, mb = models if models is not None else (colour_model(a, edge_sigma), colour_model(b, edge_sigma))
        ea, eb = ma.attached, mb.attached
        self.colour_sides = (_Side(ea, eb, +1), _Side(eb, ea, -1))
        finite = [d[np.isfinite(d)] for d in (a.depth, b.depth)]
        far = max([float(f.max()) for f in finite if f.size] + [1.0])
        self.bg_depth = far * BACKGROUND_DEPTH_FACTOR
        for side in (*self.sides, *self.colour_sides):
            side.z_bg = np.where(side.bg, self.bg_depth, side.z_src)
            side.window = reverse.window_stats(side.z_bg, side.slope)
        # Cubic-spline coefficients of each neighbour's colours, for backward sampling (reverse.py).
        self.coeffs = [(m.coeffs, m.image, m.edges) for m in (ma, mb)]

    def frame(self, s: float, c2w_t: np.ndarray, K_t: np.ndarray, n_new: int) -> WarpedFrame:
        """The frame at fraction `s` in (0, 1) of the pair, with camera `c2w_t`/`K_t`; flows per 1/n_new step."""
        h, w = self.a.depth.shape
        has_seg = self.a.segmentation is not None and self.b.segmentation is not None
        has_nrm = self.a.normals is not None and self.b.normals is not None
        has_lin = self.a.linear is not None and self.b.linear is not None
        has_alb = self.a.albedo is not None and self.b.albedo is not None
        xs, ys, zs, tws, vals, segs, finite, slopes = [], [], [], [], [], [], [], []
        sampled = []
        for side, cside, frac, src, coeffs in (
            (self.sides[0], self.colour_sides[0], s, self.a, self.coeffs[0]),
            (self.sides[1], self.colour_sides[1], 1.0 - s, self.b, self.coeffs[1]),
        ):
            x, y, z, valid, _, _ = cside.contributions(frac, c2w_t, K_t, n_new)
            zf = np.where(np.isfinite(z), z, self.bg_depth)
            near, far = reverse.reverse_layers(
                cside.u[valid], cside.v[valid], x[valid], y[valid], zf[valid], cside.z_bg[valid],
                cside.slope[valid], cside.bg[valid], h, w, self.beta,
            )  # fmt: skip
            smp = []
            for layer, only in ((near, None), (far, far.coverage > reverse.FAR_MIN_COVERAGE)):
                reverse.exact_background(layer, c2w_t, K_t, src.c2w, src.K, h, w)
                smp.append(
                    reverse.sample(
                        coeffs[0], coeffs[1], cside.z_bg, cside.slope, cside.window, layer, coeffs[2], only
                    )
                )
            sampled.append((1.0 - frac, near, far, [p[i] for i in range(3) for p in smp]))
            x, y, z, valid, flow_new, normals = side.contributions(frac, c2w_t, K_t, n_new)
            cols = [src.rgb.reshape(h, w, -1), flow_new]
            if has_nrm:
                cols.append(normals)
            if has_lin:
                cols.append(src.linear)
            if has_alb:
                cols.append(src.albedo)
            v = np.concatenate(cols, axis=-1)[valid]
            xs.append(x[valid])
            ys.append(y[valid])
            fin = np.isfinite(z[valid])
            finite.append(fin)
            zs.append(np.where(fin, z[valid], self.bg_depth))
            tws.append(np.full(int(valid.sum()), 1.0 - frac))
            vals.append(v)
            slopes.append(side.slope[valid])
            if has_seg:
                segs.append(src.segmentation[valid])
        x, y, z, tw = (np.concatenate(p) for p in (xs, ys, zs, tws))
        fin, slope, val = np.concatenate(finite), np.concatenate(slopes), np.concatenate(vals)
        seg = np.concatenate(segs) if has_seg else None

        # Bilinear footprint: four target pixels per contribution.
        idx, bil, k = reverse.footprint(x, y, h, w)
        npx = h * w
        zk = z[k]
        side = (k >= len(xs[0])).astype(np.int64)  # 0: frame A, 1: frame B
        bins = idx + side * npx
        zmin = np.full(npx, np.inf)
        np.minimum.at(zmin, idx, zk)
        excess = np.maximum(0.0, (zk - zmin[idx]) / zmin[idx] - 2.0 * slope[k])
        m = np.exp(-self.beta * excess)  # membership of the nearest surface at this target pixel

        # Per side and target pixel: near coverage N, total coverage A, best membership mu. The near
        # layer covers alpha = min(1, N) of the pixel (bilinear weights are overlap areas), the rest
        # shows whatever lies behind; sides are then blended by time weight, coverage and nearness.
        near_cov = np.bincount(bins, weights=bil * m, minlength=2 * npx)
        all_cov = np.bincount(bins, weights=bil, minlength=2 * npx)
        far_cov = np.maximum(all_cov - near_cov, 0.0)
        mu = np.zeros(2 * npx)
        np.maximum.at(mu, bins, m)
        has_far = far_cov > reverse.FAR_MIN_COVERAGE
        alpha = np.where(has_far, np.minimum(1.0, near_cov), 1.0)
        side_w = np.repeat([1.0 - s, s], npx) * np.minimum(1.0, all_cov) * mu
        wk = side_w[bins]
        wn = wk * bil * m  # near-layer weights
        wfar = wk * bil * (1.0 - m)
        e = alpha[bins] * wn / np.where(near_cov > 0, near_cov, 1.0)[bins]
        e += (1.0 - alpha[bins]) * wfar / np.where(has_far, far_cov, 1.0)[bins]

        hole = np.bincount(idx, weights=tw[k] * bil, minlength=npx) < HOLE_COVERAGE
        esum = np.bincount(idx, weights=e, minlength=npx)
        safe = np.where(esum > 0, esum, 1.0)
        nc = self.a.rgb.reshape(h, w, -1).shape[2]
        per_side: list[tuple[np.ndarray, np.ndarray]] = []
        sharp, swt = reverse.blend(sampled, self.beta, per_side)
        use = swt > 1e-6
        # Splatted values: the flow everywhere; colours only where the sharp sampling covers nothing (elsewhere
        # they are the sampled ones); normals come from the shown layer below.
        extra = 3 * (has_lin + has_alb)
        acc = np.zeros((npx, val.shape[1]))
        for c in range(nc, nc + 4):
            acc[:, c] = np.bincount(idx, weights=e * val[k, c], minlength=npx) / safe
        rest = np.flatnonzero(~use[idx])
        if rest.size:
            ir, er, kr = idx[rest], e[rest], k[rest]
            for c in [*range(nc), *range(val.shape[1] - extra, val.shape[1])]:
                acc[:, c] = np.bincount(ir, weights=er * val[kr, c], minlength=npx) / safe
        sw = side_w.reshape(2, npx)
        alpha_tot = (sw * alpha.reshape(2, npx)).sum(0) / np.maximum(sw.sum(0), 1e-300)
        use_near = alpha_tot >= 0.5
        layer_w = np.where(use_near[idx], wn, wfar)  # weights of the surface this pixel shows
        fink = fin[k]
        lw_all = np.bincount(idx, weights=layer_w, minlength=npx)
        lw_fin = np.bincount(idx, weights=layer_w * fink, minlength=npx)
        zacc = np.bincount(idx, weights=layer_w * np.where(fink, zk, 0.0), minlength=npx)
        surface = (lw_fin > 0.5 * lw_all) & (lw_fin > 0)
        depth = np.where(surface, zacc / np.where(lw_fin > 0, lw_fin, 1.0), np.inf)

        acc[use, :nc] = sharp[use, :nc]
        if extra:
            acc[use, -extra:] = sharp[use, nc : nc + extra]
        rgb = acc[:, :nc].reshape(h, w, nc)
        flow = acc[:, nc : nc + 4].reshape(h, w, 4)
        flow[~surface.reshape(h, w)] = 0.0  # convention: zero flow on world background
        col = nc + 4
        normals = linear = albedo = segmentation = None
        fill: list[np.ndarray] = [rgb, flow, depth.reshape(h, w)]
        if has_nrm:
            nsum = np.stack(
                [np.bincount(idx, weights=layer_w * fink * val[k, col + c], minlength=npx) for c in range(3)],
                1,
            ).reshape(h, w, 3)
            norm = np.linalg.norm(nsum, axis=-1, keepdims=True)
            normals = np.where(norm > 1e-12, nsum / np.where(norm > 1e-12, norm, 1.0), 0.0)
            normals[~surface.reshape(h, w)] = 0.0
            col += 3
            fill.append(normals)
        if has_lin:
            linear = acc[:, col : col + 3].reshape(h, w, 3)
            fill.append(linear)
            col += 3
        if has_alb:
            albedo = acc[:, col : col + 3].reshape(h, w, 3)
            fill.append(albedo)
        if has_seg:
            # Heaviest contribution per pixel (ties: the last one), without sorting.
            best = np.full(npx, -np.inf)
            np.maximum.at(best, idx, layer_w)
            cand = np.flatnonzero(layer_w == best[idx])
            win_of = np.full(npx, -1, dtype=np.int64)
            np.maximum.at(win_of, idx[cand], cand)
            covered = win_of >= 0
            segmentation = np.zeros(npx, dtype=np.uint32)
            segmentation[covered] = seg[k[win_of[covered]]]
            segmentation = segmentation.reshape(h, w)
            fill.append(segmentation)
        hole2 = hole.reshape(h, w)
        depth2 = fill[2]
        _fill_holes(fill, hole2)
        if self.appearance is not None:
            (ca, wa), (cb, wb) = per_side
            sides = (ca[:, :nc].reshape(h, w, nc), cb[:, :nc].reshape(h, w, nc))
            both = ((wa > fusion.BOTH) & (wb > fusion.BOTH)).reshape(h, w)
            carried = [
                fusion.at_sources(u, [near, far])
                for u, (_, near, far, _s) in zip(self.unexplained, sampled, strict=True)
            ]
            mixed = fusion.mixed_at(self.unexplained, self.appearance, s, carried)  # type: ignore[arg-type]
            warped = fusion.warped_neighbours(self.a.rgb, self.b.rgb, self.appearance, s, self.sharp)
            wgt = fusion.appearance_weight(sides, both, warped, self.appearance, mixed, self.exact_flows)
            rgb = fusion.fuse(rgb, warped, wgt, s)
            if linear is not None:
                lin = fusion.warped_neighbours(self.a.linear, self.b.linear, self.appearance, s, self.sharp)
                linear = fusion.fuse(linear, lin, wgt, s)
            cwt = fusion.crossfade_weight(np.hypot(flow[..., 0], flow[..., 1]) * n_new, self.appearance)
            if cwt.any():
                rgb = fusion.cross_fade(
                    rgb, self.a.rgb.reshape(rgb.shape), self.b.rgb.reshape(rgb.shape), cwt, s
                )
                if linear is not None:
                    linear = fusion.cross_fade(linear, self.a.linear, self.b.linear, cwt, s)
        return WarpedFrame(
            rgb=rgb,
            depth=depth2,
            flow=flow,
            hole=hole2,
            segmentation=segmentation,
            normals=normals,
            linear=linear,
            albedo=albedo,
        )
