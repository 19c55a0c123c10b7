"""Colour where the exact flow does not explain how the picture changed: fuse with an appearance flow.

The renderer's flow moves surfaces exactly, but some of what a picture shows does not move with the surface
under it: a shadow moves with its caster, not with the floor; a line thinner than a pixel is not the surface
its pixels' centre samples hit (their flow is the sample-averaged mix of the line's and the background's
motion, so the line is dragged at the wrong speed); highlights and reflections move with the light and the
viewer. There the two neighbours, each warped to the new time with the exact flow, disagree.

So a second candidate is made from the pictures: OpenCV's DIS optical flow (medium preset) between the two
neighbours' grey sRGB images, started from the exact flows (what the pictures show moves with its surface
almost everywhere, so the search starts there and spends itself on what does not), each neighbour
backward-warped along it to the new time and the two blended by time distance in linear light. The warp's
interpolant follows how well the flow is known: where the two appearance flows are forward-backward consistent
to within a pixel, a cubic one (detail near the pixel scale, which the pixel filter passes and a bilinear
warp attenuates, is kept), and where they are not (a structure moved farther than the flow search reaches),
bilinear (a sharper kernel only makes a misplaced structure's error sharper).
Each candidate's error per pixel is how much its two warped neighbours disagree (root-mean-square sRGB difference over a 5x5 window; for the exact candidate, the two
neighbours as the exact warp sampled them, where both see the surface), and the appearance candidate gets
the share of the exact one's disagreement it explains:

    w_appearance = clip(1 - e_appearance^2 / e_exact^2, 0, 1)

Where the exact flow explains the change (almost everywhere) the exact colour is kept as it is; where it
does not, the appearance candidate takes over as far as it explains the change better.

The exact flow can also say itself that it is wrong. Cycles averages motion vectors over each pixel's
samples, so a pixel that a structure thinner than a pixel crosses (a wire, a fence bar) carries a mix of the
structure's and the background's motion: a flow that is neither surface's. At an ordinary silhouette the
mix lies between the flows of the two surfaces' own pixels nearby; a thin structure has no pixels of its
own, so there the flow lies off every such mix (`unexplained_motion`). Where it does by more than
`MIXED_PX`, and on the 3x3 neighbours of such pixels (the pixel filter spreads the structure's colour to
them), the exact candidate's disagreement is taken to be at least `MIXED_DISAGREEMENT` (the warp moves
part of the pixel with the wrong motion, and how wrong its colour is cannot be measured there: the two
warped neighbours can agree on the wrong picture), so the appearance candidate takes over as far as it
agrees with itself better than that.

Below a pixel of motion any resampling loses to blending: over less than a pixel per source frame a
pixel's colour changes almost linearly in time (the time blend of the unwarped neighbours is right to
second order in the motion, with no interpolation kernel), while a warp resamples anti-aliased edges at
sub-pixel offsets. So where the motion per source frame, the larger of the exact flow and both
appearance flows (a shadow or highlight can move over a still surface), is below `SUBPIXEL[0]` pixels
the new colour is the cross-fade of the two neighbours, above `SUBPIXEL[1]` the warp's, and in between a
linear ramp of the two.

Only colours are fused (the frame and, when present, the linear image); depth, flow, ids, normals and
albedo of a new frame stay those of the exact warp. Measured in `benchmarks/interpolate_peers.py`.
"""

from __future__ import annotations

import numpy as np

WINDOW = 5
"""Side (pixels) of the square window over which each candidate's disagreement is averaged."""
BOTH = 0.5
"""A neighbour sees the pixel's surface where its blend weight (without the time weight) exceeds this."""
POWER = 2.0
"""w = 1 - (e_appearance / e_exact) ** POWER."""
MIXED_PX = 0.25
"""Flow (pixels) farther than this from every mix of two nearby surfaces' flows is a thin structure's mix."""
SMOOTH_PX = 0.1
"""A pixel's own surface flow: its 3x3 neighbours share its id and its flow is within this of their median."""
MIXED_DISAGREEMENT = 0.2
"""Disagreement (sRGB units) the exact candidate is given where its flow is a thin structure's mix."""
DIFFERENT_PX = 0.5
"""The appearance candidate counts fully where its flow differs from the exact one by this (pixels), not at all
where they are equal (it would only add its bilinear blur), linearly between."""
UNEXPLAINED_CHUNK = 1 << 16
"""Pixels whose candidates `unexplained_motion` holds at once (memory: about 650 bytes a pixel)."""
SUBPIXEL = (0.5, 1.5)
"""Motion (pixels per source frame) below which colour is the neighbours' cross-fade, and above which the warp's."""
SHARP_PX = (1.0, 2.0)
"""Forward-backward inconsistency (pixels) of the appearance flows below which the neighbours are warped along them
with a cubic interpolant, above which bilinearly, and in between a linear ramp of the two."""
FLOOR = 1e-3
"""Disagreement (sRGB units) added to both candidates: below it neither is preferred (quantisation, noise)."""


def _cv2():
    import cv2

    return cv2


def _grey8(rgb: np.ndarray) -> np.ndarray:
    """8-bit grey sRGB of a linear-light HxWxC image (the mean of its colour channels)."""
    from camsim import srgb

    c = rgb[..., : min(3, rgb.shape[2])].mean(-1)
    return np.clip(np.round(srgb.oetf(np.clip(c, 0.0, 1.0)) * 255.0), 0, 255).astype(np.uint8)


def appearance_flows(
    a_rgb: np.ndarray, b_rgb: np.ndarray, initial: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """DIS optical flow (pixels, x right, y down) from a to b and from b to a, HxWx2 float32 each; refined from
    `initial` (the exact flows a->b and b->a) when given, else from zero."""
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ga, gb = _grey8(a_rgb), _grey8(b_rgb)
    start = (
        [None, None]
        if initial is None
        else [np.ascontiguousarray(np.nan_to_num(f), np.float32) for f in initial]
    )
    return dis.calc(ga, gb, start[0]), dis.calc(gb, ga, start[1])


def _warp(img: np.ndarray, flow: np.ndarray, s: float, cubic: bool = False) -> np.ndarray:
    """Backward-warp `img` by fraction s of `flow` taken at the target pixel (bilinear or cubic, edges
    replicated; a cubic result is clipped at 0)."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = (xx - np.float32(s) * flow[..., 0]).astype(np.float32)
    my = (yy - np.float32(s) * flow[..., 1]).astype(np.float32)
    kind = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    out = cv2.remap(img.astype(np.float32), mx, my, kind, borderMode=cv2.BORDER_REPLICATE)
    return (np.maximum(out, 0.0) if cubic else out).reshape(img.shape)


def sharpness(appearance: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per pixel (HxW float32 in [0, 1]), the cubic interpolant's share in warping along the appearance flows
    (a->b, b->a; HxWx2): 1 where both are forward-backward consistent within `SHARP_PX[0]` pixels, 0 beyond
    `SHARP_PX[1]`, linear between."""
    cv2 = _cv2()
    fab, fba = (np.asarray(f, np.float32) for f in appearance)
    h, w = fab.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def gap(f: np.ndarray, g: np.ndarray) -> np.ndarray:
        back = cv2.remap(g, xx + f[..., 0], yy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.hypot(f[..., 0] + back[..., 0], f[..., 1] + back[..., 1])

    lo, hi = SHARP_PX
    return np.clip((hi - np.maximum(gap(fab, fba), gap(fba, fab))) / (hi - lo), 0.0, 1.0).astype(np.float32)


def warped_neighbours(
    a_img: np.ndarray,
    b_img: np.ndarray,
    appearance: tuple[np.ndarray, np.ndarray],
    s: float,
    sharp: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The two neighbours (HxWxC) backward-warped along the appearance flows to fraction s: per pixel the
    `sharpness` share of the cubic interpolant and the rest of the bilinear one."""
    k = sharp[..., None]
    out = []
    for img, flow, frac in ((a_img, appearance[0], s), (b_img, appearance[1], 1.0 - s)):
        lin, cub = _warp(img, flow, frac), _warp(img, flow, frac, cubic=True)
        out.append(lin + k * (cub - lin))
    return out[0], out[1]


def _disagreement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """RMS over the window of the mean absolute sRGB difference of two linear-light images (float32)."""
    from camsim import srgb

    cv2 = _cv2()
    nc = min(3, x.shape[2])
    enc = lambda v: srgb.oetf(np.clip(v[..., :nc].astype(np.float32), 0.0, 1.0))  # noqa: E731
    d = np.abs(enc(x) - enc(y)).mean(-1, dtype=np.float32)
    mean_sq = cv2.boxFilter(d * d, -1, (WINDOW, WINDOW), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(np.maximum(mean_sq, 0.0)) + np.float32(FLOOR)


def unexplained_motion(flow: np.ndarray, ids: np.ndarray | None, radius: int = 2) -> np.ndarray:
    """Per pixel (HxW float32, pixels), how far its flow (HxWx2) lies from every mix of two surfaces' own flows
    within `radius` pixels, beyond the spread of those surfaces' flows there (a turning surface's flow varies).

    A surface's own pixels: their 3x3 neighbours share their id (`ids`, HxW; None: one surface) and their flow
    is within `SMOOTH_PX` of the 3x3 median. Per pixel, q1 is the own flow nearest its flow and q2 the own flow
    farthest from q1; the distance is that of the flow from the segment q1-q2, less the larger spread of the
    own flows of q1's and q2's surfaces in the window. 0 where no own pixel is near."""
    from scipy.ndimage import median_filter

    h, w = flow.shape[:2]
    f = np.nan_to_num(np.asarray(flow, np.float32)[..., :2])
    seg = np.zeros((h, w), np.int64) if ids is None else np.asarray(ids).astype(np.int64)
    pad = np.pad(seg, 1, mode="edge")
    own = np.ones((h, w), bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            own &= pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] == seg
    med = np.stack([median_filter(f[..., c], size=3, mode="nearest") for c in range(2)], axis=-1)
    off = f - med
    own &= np.hypot(off[..., 0], off[..., 1]) < SMOOTH_PX
    r = radius
    pf = np.pad(f, ((r, r), (r, r), (0, 0)), mode="edge")
    po = np.pad(own, r, mode="constant", constant_values=False)
    ps = np.pad(seg, r, mode="edge")
    offs = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    out = np.zeros((h, w), np.float32)
    # An own pixel is its own nearest candidate (q1 = its flow): 0. Only the others are measured.
    ys, xs = np.nonzero(~own)
    for i0 in range(0, ys.size, UNEXPLAINED_CHUNK):  # the (2r+1)^2 candidates of a block of pixels at a time
        y, x = ys[i0 : i0 + UNEXPLAINED_CHUNK] + r, xs[i0 : i0 + UNEXPLAINED_CHUNK] + r
        cand = np.stack([pf[y + dy, x + dx] for dy, dx in offs])
        ok = np.stack([po[y + dy, x + dx] for dy, dx in offs])
        cid = np.stack([ps[y + dy, x + dx] for dy, dx in offs])
        fb = f[y - r, x - r]
        i1 = np.where(ok, np.linalg.norm(cand - fb[None], axis=-1), np.inf).argmin(0)[None]
        q1, id1 = np.take_along_axis(cand, i1[..., None], 0)[0], np.take_along_axis(cid, i1, 0)[0]
        d1 = np.linalg.norm(cand - q1[None], axis=-1)
        i2 = np.where(ok, d1, -1.0).argmax(0)[None]
        q2, id2 = np.take_along_axis(cand, i2[..., None], 0)[0], np.take_along_axis(cid, i2, 0)[0]
        spread = np.maximum(
            np.where(ok & (cid == id1[None]), d1, 0.0).max(0),
            np.where(ok & (cid == id2[None]), np.linalg.norm(cand - q2[None], axis=-1), 0.0).max(0),
        )
        seg12 = q2 - q1
        l2 = (seg12 * seg12).sum(-1)
        t = np.clip(((fb - q1) * seg12).sum(-1) / np.where(l2 > 0, l2, 1.0), 0.0, 1.0)
        dist = np.linalg.norm(fb - (q1 + t[..., None] * seg12), axis=-1)
        out[y - r, x - r] = np.where(ok.any(0), np.maximum(dist - spread, 0.0), 0.0)
    return out


def at_sources(unexplained: np.ndarray, layers: list) -> np.ndarray:
    """Per target pixel (HxW), the largest `unexplained_motion` of a neighbour (HxW) at the source pixels its
    exact warp samples there (each `reverse.Layer`'s sx, sy, where it has coverage): where a thin structure's
    mixed flow carried that neighbour's colour to."""
    h, w = unexplained.shape
    out = np.zeros(h * w, np.float32)
    for layer in layers:
        ok = (layer.coverage > 0) & np.isfinite(layer.sx) & np.isfinite(layer.sy)
        x = np.clip(np.floor(np.where(ok, layer.sx, 0.5)).astype(np.int64), 0, w - 1)
        y = np.clip(np.floor(np.where(ok, layer.sy, 0.5)).astype(np.int64), 0, h - 1)
        out = np.maximum(out, np.where(ok, unexplained[y, x], 0.0))
    return out.reshape(h, w)


def mixed_at(
    unexplained: tuple[np.ndarray, np.ndarray],
    appearance: tuple[np.ndarray, np.ndarray],
    s: float,
    carried: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Per pixel at fraction s (HxW in [0, 1]), how surely a thin structure's mixed flow is there: each
    neighbour's `unexplained_motion` where it was and where the appearance flow carries it at s, over
    `MIXED_PX`, clipped to 1, and the largest of that over the pixel's 3x3 neighbours: the structure's colour
    reaches the pixels around those whose motion vectors it changed (the pixel filter, Blackman-Harris of
    1.5 px by default, spreads a sample over the neighbours within 0.75 px). `carried`: maps (HxW, like
    `at_sources`) of where the exact warp carried mixed pixels, taken in the same way."""
    cv2 = _cv2()
    ua, ub = unexplained
    moved = (
        _warp(ua[..., None], appearance[0], s)[..., 0],
        _warp(ub[..., None], appearance[1], 1.0 - s)[..., 0],
    )
    sure = np.clip(np.maximum.reduce([ua, ub, *moved, *(carried or [])]) / MIXED_PX, 0.0, 1.0).astype(
        np.float32
    )
    return cv2.dilate(sure, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)


def appearance_weight(
    exact_sides: tuple[np.ndarray, np.ndarray],
    both: np.ndarray,
    warped: tuple[np.ndarray, np.ndarray],
    appearance: tuple[np.ndarray, np.ndarray],
    mixed: np.ndarray | None = None,
    exact: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per pixel, the appearance candidate's weight (HxW). `exact_sides`: each neighbour's colour as the exact
    warp sampled it (HxWxC), `both`: where both neighbours see the pixel's surface (elsewhere one side alone is
    right and they cannot agree); `warped`: the neighbours warped along the appearance flows
    (`warped_neighbours`); `appearance`: those flows (a->b, b->a), HxWx2; `mixed`: `mixed_at` (None: no thin
    structures); `exact`: the exact flows (None: not compared).

    The weight is the share of the exact candidate's disagreement that the appearance candidate explains,
    1 - e_appearance^2 / e_exact^2, clipped to [0, 1]: 0 wherever the exact warp agrees as well."""
    ea, eb = (np.nan_to_num(x) for x in exact_sides)
    e_exact = _disagreement(np.where(both[..., None], ea, 0.0), np.where(both[..., None], eb, 0.0))
    e_app = _disagreement(*warped)
    if mixed is not None:
        e_exact = np.maximum(e_exact, (mixed * MIXED_DISAGREEMENT).astype(e_exact.dtype))
    w = np.clip(1.0 - (e_app / e_exact) ** POWER, 0.0, 1.0)
    if exact is not None:  # where the appearance flow is the exact one, it only adds its bilinear blur
        w *= np.clip(_flow_gap(exact[0], appearance[0], exact[1], appearance[1]) / DIFFERENT_PX, 0.0, 1.0)
    return w


def fuse(
    colour: np.ndarray, warped: tuple[np.ndarray, np.ndarray], weight: np.ndarray, s: float
) -> np.ndarray:
    """`colour` (the exact warp's, HxWxC) blended by `weight` with the appearance candidate: the time blend of
    the neighbours `warped` along the appearance flows to fraction s."""
    w = weight[..., None]
    return (1.0 - w) * colour + w * ((1.0 - s) * warped[0] + s * warped[1])


def _flow_gap(e0: np.ndarray | float, f0: np.ndarray, e1: np.ndarray | float, f1: np.ndarray) -> np.ndarray:
    """Per pixel, the larger of |f0 - e0| and |f1 - e1| (HxWx2 flows; e0, e1 may be 0), in pixels."""
    d0, d1 = f0 - np.nan_to_num(e0), f1 - np.nan_to_num(e1)
    return np.maximum(np.hypot(d0[..., 0], d0[..., 1]), np.hypot(d1[..., 0], d1[..., 1]))


def crossfade_weight(exact_motion: np.ndarray, appearance: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per pixel (HxW), the weight of the neighbours' cross-fade: 1 below `SUBPIXEL[0]` pixels of motion
    per source frame, 0 above `SUBPIXEL[1]`, linear between. `exact_motion`: the exact flow's length per
    source frame at the new frame's pixels; `appearance`: the appearance flows (a->b, b->a), HxWx2."""
    lo, hi = SUBPIXEL
    v = np.maximum(exact_motion, _flow_gap(0.0, appearance[0], 0.0, appearance[1]))
    return np.clip((hi - v) / (hi - lo), 0.0, 1.0).astype(np.float64)


def cross_fade(
    colour: np.ndarray, a_img: np.ndarray, b_img: np.ndarray, weight: np.ndarray, s: float
) -> np.ndarray:
    """`colour` (HxWxC) blended with the time blend of the unwarped neighbours by `weight` (HxW)."""
    w = weight[..., None]
    return (1.0 - w) * colour + w * ((1.0 - s) * a_img + s * b_img)
