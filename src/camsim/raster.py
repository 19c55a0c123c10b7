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
"""(Triangle, row) pairs evaluated at once (bounds the temporary arrays to some tens of MiB)."""


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
    triangles `tri_uv`. Exact in float64 (`inside`: the three edge functions at the centre, each >= 0), at a
    cost per covered row rather than per pixel: in a row each edge function is monotone in the column (every
    float64 operation in it rounds monotonically), so a triangle covers one run of columns there; the run's
    ends are found from each edge's crossing, then moved to where `inside`'s own arithmetic puts them."""
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
    keep = (c1 >= c0) & (r1 >= r0)
    t, c0, c1, r0, r1 = t[keep], c0[keep], c1[keep], r0[keep], r1[keep]
    rows = r1 - r0 + 1
    ends = np.cumsum(rows)
    a = 0
    while a < len(t):  # (triangle, row) pairs, about CHUNK of them at a time
        done = ends[a - 1] if a else 0
        stop = max(a + 1, int(np.searchsorted(ends, done + CHUNK, side="right")))
        b = slice(a, stop)
        a = stop
        tri_of = np.repeat(np.arange(len(t[b])), rows[b])
        first = np.cumsum(rows[b]) - rows[b]
        row = r0[b][tri_of] + (np.arange(len(tri_of)) - first[tri_of])
        lo, hi = c0[b][tri_of].copy(), c1[b][tri_of].copy()
        tri = t[b][tri_of]
        py = row + 0.5
        for e in range(3):
            ax, ay = tri[:, e, 0], tri[:, e, 1]
            dx, dy = tri[:, (e + 1) % 3, 0] - ax, tri[:, (e + 1) % 3, 1] - ay
            _edge_run(ax, ay, dx, dy, py, lo, hi)
        ok = lo <= hi
        _fill_runs(mask, row[ok], lo[ok], hi[ok])
    return mask


def _inside_edge(ax, ay, dx, dy, py, col) -> np.ndarray:  # type: ignore[no-untyped-def]
    """One edge function at the centre of pixel (row, col) >= 0, with exactly the arithmetic of a per-pixel
    test: (bx - ax) (py - ay) - (by - ay) (px - ax) >= 0."""
    return dx * (py - ay) - dy * ((col + 0.5) - ax) >= 0


def _edge_run(ax, ay, dx, dy, py, lo, hi) -> None:  # type: ignore[no-untyped-def]
    """Narrow the column runs [lo, hi] (in place) to where this edge's function is >= 0. dy > 0: the function
    falls with the column (an upper end); dy < 0: it rises (a lower end); dy == 0: all or nothing."""
    flat = dy == 0
    if flat.any():
        out = flat & ~_inside_edge(ax, ay, dx, dy, py, lo)
        hi[out] = lo[out] - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = ax + dx * (py - ay) / dy - 0.5  # the column where the function is 0 (up to rounding)
        # Clamped into the run's box: a nearly flat edge crosses far away (or at infinity), only the box matters.
        cross = np.minimum(np.maximum(cross, lo - 1), hi + 1)
    cross[flat] = lo[flat]  # any finite column: flat edges are settled above
    up, down = dy > 0, dy < 0
    end, start = np.floor(cross).astype(np.int64), np.ceil(cross).astype(np.int64)
    for _ in range(64):  # rounding moves a crossing by far less than a column: a step or two settles it
        more = up & _inside_edge(ax, ay, dx, dy, py, end + 1) & (end < hi)
        less = up & ~_inside_edge(ax, ay, dx, dy, py, end) & (end >= lo)
        earlier = down & _inside_edge(ax, ay, dx, dy, py, start - 1) & (start > lo)
        later = down & ~_inside_edge(ax, ay, dx, dy, py, start) & (start <= hi)
        if not (more.any() or less.any() or earlier.any() or later.any()):
            break
        end += more.astype(np.int64) - less.astype(np.int64)
        start += later.astype(np.int64) - earlier.astype(np.int64)
    np.minimum(hi, np.where(up, end, hi), out=hi)
    np.maximum(lo, np.where(down, start, lo), out=lo)


def _fill_runs(mask: np.ndarray, row: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Set mask[row, lo..hi] for every run (a difference array summed along the rows)."""
    if not len(row):
        return
    h, w = mask.shape
    n = h * (w + 1)
    diff = np.bincount(row * (w + 1) + lo, minlength=n) - np.bincount(row * (w + 1) + hi + 1, minlength=n)
    mask |= np.cumsum(diff.reshape(h, w + 1)[:, :w], axis=1) > 0
