"""Triangles in a pinhole camera's frame -> the pixels whose centres they cover (pure numpy).

What a ray through a pixel centre would hit with nothing in front: the same rule as Cycles' depth and
segmentation passes, which take one camera sample at the pixel centre (transforms.CONVENTIONS["sampling"]).
Cycles clips at planar depths (a ray through a pixel starts at depth clip_start and ends at clip_end, along
the optical axis), so triangles are clipped against those two planes before they are projected; a projected
triangle is exact, since a pinhole maps the part of a triangle in front of the camera onto a triangle.

Camera frame: OpenGL axes (+X right, +Y up, the camera looks along -Z), as transforms.CONVENTIONS says.
Pixels: the top-left corner of the top-left pixel is (0, 0), pixel centres at integer + 0.5.
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 22
"""Pixel-centre tests evaluated at once (bounds the temporary arrays to some tens of MiB)."""


def clip_depth(tris: np.ndarray, near: float, far: float) -> np.ndarray:
    """(M,3,3) triangles: the parts of the (N,3,3) camera-frame triangles `tris` with planar depth -z in
    [near, far], fan-triangulated where a plane cuts one."""
    tris = np.asarray(tris, dtype=np.float64).reshape(-1, 3, 3)
    d = -tris[..., 2]
    inside = (d >= near) & (d <= far)
    whole = inside.all(axis=1)
    gone = (d < near).all(axis=1) | (d > far).all(axis=1)
    cut = ~whole & ~gone
    if not cut.any():
        return tris[whole]
    pieces = [tris[whole]]
    for tri in tris[cut]:
        poly = _clip_polygon(list(tri), near, far)
        pieces += [np.array([poly[0], poly[k], poly[k + 1]])[None] for k in range(1, len(poly) - 1)]
    return np.concatenate(pieces, axis=0)


def _clip_polygon(poly: list[np.ndarray], near: float, far: float) -> list[np.ndarray]:
    """Sutherland-Hodgman against depth >= near, then depth <= far (depth = -z)."""
    for sign, limit in ((1.0, near), (-1.0, -far)):  # keep sign * depth >= limit
        out: list[np.ndarray] = []
        for k, cur in enumerate(poly):
            prev = poly[k - 1]
            a, b = sign * -prev[2] - limit, sign * -cur[2] - limit
            if b >= 0:
                if a < 0:
                    out.append(prev + (cur - prev) * (a / (a - b)))
                out.append(cur)
            elif a >= 0:
                out.append(prev + (cur - prev) * (a / (a - b)))
        poly = out
        if len(poly) < 3:
            return []
    return poly


def project(points: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(...,2) pixel coordinates (u right, v down) of camera-frame points (...,3) in front of the camera:
    u = fx X/(-Z) + cx, v = -fy Y/(-Z) + cy."""
    p = np.asarray(points, dtype=np.float64)
    d = -p[..., 2]
    return np.stack([fx * p[..., 0] / d + cx, cy - fy * p[..., 1] / d], axis=-1)


def coverage(tri_uv: np.ndarray, w: int, h: int) -> np.ndarray:
    """(h,w) bool: the pixels whose centres lie inside (or on an edge of) any of the (N,3,2) image-plane
    triangles `tri_uv`. Exact in float64: each candidate centre of a triangle's bounding box is tested
    against its three edges; triangles are grouped by box size so the work is about twice their area."""
    mask = np.zeros((h, w), dtype=bool)
    t = np.asarray(tri_uv, dtype=np.float64).reshape(-1, 3, 2)
    t = t[np.isfinite(t).all(axis=(1, 2))]
    if not len(t):
        return mask
    (u0, v0), (u1, v1), (u2, v2) = t[:, 0].T, t[:, 1].T, t[:, 2].T
    area = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
    flip = area < 0  # orient every triangle one way, so inside = all three edge functions >= 0
    t[flip, 1], t[flip, 2] = t[flip, 2].copy(), t[flip, 1].copy()
    t = t[area != 0]
    if not len(t):
        return mask
    c0 = np.maximum(np.ceil(t[..., 0].min(axis=1) - 0.5), 0).astype(np.int64)
    c1 = np.minimum(np.floor(t[..., 0].max(axis=1) - 0.5), w - 1).astype(np.int64)
    r0 = np.maximum(np.ceil(t[..., 1].min(axis=1) - 0.5), 0).astype(np.int64)
    r1 = np.minimum(np.floor(t[..., 1].max(axis=1) - 0.5), h - 1).astype(np.int64)
    bw, bh = c1 - c0 + 1, r1 - r0 + 1
    keep = (bw > 0) & (bh > 0)
    t, c0, r0, bw, bh = t[keep], c0[keep], r0[keep], bw[keep], bh[keep]
    n = bw * bh
    size = np.ceil(np.log2(np.maximum(n, 1))).astype(np.int64)  # bucket: boxes of at most 2**size pixels
    for s in np.unique(size):
        cap = 1 << int(s)
        sel_all = np.nonzero(size == s)[0]
        step = max(1, CHUNK // cap)
        k = np.arange(cap)
        for a in range(0, len(sel_all), step):
            sel = sel_all[a : a + step]
            width = bw[sel, None]
            dx, dy = k % width, k // width
            ok = k < n[sel, None]
            col, row = c0[sel, None] + dx, r0[sel, None] + dy
            px, py = col + 0.5, row + 0.5
            tri = t[sel]
            inside = ok
            for e in range(3):
                (ax, ay), (bx, by) = tri[:, e].T, tri[:, (e + 1) % 3].T
                inside = inside & (
                    (bx - ax)[:, None] * (py - ay[:, None]) - (by - ay)[:, None] * (px - ax[:, None]) >= 0
                )
            mask[row[inside], col[inside]] = True
    return mask
