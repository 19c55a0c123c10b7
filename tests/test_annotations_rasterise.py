"""The amodal masks' rasteriser, the category table and the semantic flag, checked without Blender.

Brute force: a ray through every pixel centre is intersected with every 3-D triangle (Moller-Trumbore), and
a hit counts when its planar depth lies between the clip planes, as Cycles' camera rays do."""

from __future__ import annotations

import numpy as np
import pytest

from camsim.annotations import category_lookup, category_table, semantic_map
from camsim.config import RenderConfig
from camsim.errors import ConfigError
from camsim.raster import clip_depth, coverage, project

W, H, FX, FY, CX, CY = 40, 30, 36.0, 34.0, 19.3, 15.6
NEAR, FAR = 1.0, 6.0


def _rays() -> np.ndarray:
    """(H,W,3) camera-frame directions through the pixel centres with planar depth 1 (z = -1)."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    return np.stack([(u - CX) / FX, -(v - CY) / FY, -np.ones_like(u)], axis=-1)


def _brute(tris: np.ndarray) -> np.ndarray:
    d = _rays().reshape(-1, 3)
    hit = np.zeros(len(d), bool)
    for a, b, c in tris:
        e1, e2 = b - a, c - a
        p = np.cross(d, e2)
        det = p @ e1
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = -a  # the rays start at the camera centre
        u = (p @ s) * inv
        q = np.cross(s, e1)
        v = (d * q).sum(1) * inv
        t = (q @ e2) * inv  # planar depth, since every ray has z = -1
        hit |= ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= NEAR) & (t <= FAR)
    return hit.reshape(H, W)


def _mask(tris: np.ndarray) -> np.ndarray:
    return coverage(project(clip_depth(tris, NEAR, FAR), FX, FY, CX, CY), W, H)


def test_triangles_in_view_cover_the_pixel_centres_their_rays_hit():
    rng = np.random.default_rng(1)
    centres = rng.uniform([-3, -2, -5.5], [3, 2, -1.5], size=(60, 1, 3))
    tris = centres + rng.normal(0, 0.6, size=(60, 3, 3))
    tris[..., 2] = np.clip(tris[..., 2], -5.9, -1.1)  # inside the clip planes: projection only
    mask = _mask(tris)
    assert mask.sum() > 200
    np.testing.assert_array_equal(mask, _brute(tris))


def test_triangles_cut_by_the_clip_planes_cover_only_what_lies_between_them():
    rng = np.random.default_rng(2)
    tris = rng.uniform([-4, -3, -9], [4, 3, 1.5], size=(80, 3, 3))  # behind, before and beyond the planes
    depth = -tris[..., 2]
    inside = (depth >= NEAR) & (depth <= FAR)
    assert (inside.any(axis=1) & ~inside.all(axis=1)).sum() > 20  # many are cut
    brute = _brute(tris)
    assert brute.sum() > 200
    np.testing.assert_array_equal(_mask(tris), brute)
    kept = clip_depth(tris, NEAR, FAR)
    assert (-kept[..., 2] >= NEAR - 1e-12).all() and (-kept[..., 2] <= FAR + 1e-12).all()


def test_either_winding_and_degenerate_triangles():
    tri = np.array([[[2.0, 3.0], [30.5, 4.0], [10.0, 25.0]]])
    a = coverage(tri, W, H)
    np.testing.assert_array_equal(a, coverage(tri[:, ::-1], W, H))
    assert a.sum() > 100
    assert not coverage(np.array([[[1.0, 1.0], [20.0, 20.0], [39.0, 39.0]]]), W, H).any()


def test_category_ids_are_the_sorted_names_and_the_semantic_map_their_lookup():
    objects = {"1": {"category": "table"}, "2": {"category": "chair"}, "3": {}, "5": {"category": "chair"}}
    names, of_object = category_table(objects)
    assert names == {"1": "chair", "2": "object", "3": "table"}
    assert of_object == {"1": 3, "2": 1, "3": 2, "5": 1}
    seg = np.array([[0, 1, 2], [3, 5, 5]], np.uint32)
    np.testing.assert_array_equal(semantic_map(seg, category_lookup(of_object)), [[0, 3, 1], [2, 1, 1]])


def test_semantic_maps_without_the_segmentation_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"--render-config.no-segmentations or --render-config.semantics$"):
        RenderConfig(semantics=True, segmentations=False).validate()


def _per_pixel(tri_uv: np.ndarray, w: int, h: int) -> np.ndarray:
    """The rule itself, pixel by pixel: every pixel centre tested against each oriented triangle's three edge
    functions with the arithmetic `raster.coverage` promises (float64, >= 0 on an edge)."""
    mask = np.zeros((h, w), bool)
    px, py = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    for tri in np.asarray(tri_uv, np.float64).reshape(-1, 3, 2):
        if not np.isfinite(tri).all():
            continue
        (u0, v0), (u1, v1), (u2, v2) = tri
        area = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
        if area == 0:
            continue
        if area < 0:
            tri = tri[[0, 2, 1]]
        inside = np.ones((h, w), bool)
        for e in range(3):
            (ax, ay), (bx, by) = tri[e], tri[(e + 1) % 3]
            inside &= (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0
        mask |= inside
    return mask


def test_coverage_by_runs_equals_the_per_pixel_rule() -> None:
    """Random triangles of every size, and the adversarial ones: vertices and edges through pixel centres,
    axis-aligned and nearly flat edges, slivers, triangles far outside or around the whole image."""
    rng = np.random.default_rng(7)
    w, h = 37, 23
    cases = [rng.uniform(-10, 47, (60, 3, 2)), rng.uniform(0, 40, (200, 3, 2)) * [1, 0.6]]
    small = rng.uniform(0, 35, (300, 1, 2)) + rng.uniform(-1.5, 1.5, (300, 3, 2))
    cases.append(small)
    centres = np.floor(rng.uniform(0, 30, (300, 3, 2))) + 0.5  # every vertex on a pixel centre
    cases.append(centres)
    halves = np.round(rng.uniform(0, 40, (300, 3, 2)) * 2) / 2  # vertices on centres and corners
    cases.append(halves)
    flat = rng.uniform(0, 36, (100, 3, 2))
    flat[:, 1, 1] = flat[:, 0, 1] + rng.uniform(-1e-9, 1e-9, 100)  # nearly horizontal edges
    cases.append(flat)
    through = []  # edges through pixel centres at random slopes: the edge function there is 0 up to rounding
    for _ in range(400):
        c = np.floor(rng.uniform(2, 20, 2)) + 0.5
        d = rng.normal(size=2)
        a, b = c - rng.uniform(0.3, 9) * d, c + rng.uniform(0.3, 9) * d
        through.append([a, b, c + rng.uniform(-9, 9, 2)])
    cases.append(np.array(through))
    cases.append(np.array([[[-1e6, -1e6], [1e6, -1e6], [0.0, 1e6]],  # around the whole image
                           [[1e3, 1e3], [2e3, 1e3], [1e3, 2e3]],  # all outside
                           [[3.5, 2.5], [3.5, 20.5], [3.5 + 1e-12, 11.5]],  # a sliver along a column of centres
                           [[0.5, 0.5], [36.5, 0.5], [0.5, 22.5]]]))  # fmt: skip
    for tris in cases:
        np.testing.assert_array_equal(coverage(tris, w, h), _per_pixel(tris, w, h))
        for one in tris[:40]:
            np.testing.assert_array_equal(coverage(one[None], w, h), _per_pixel(one[None], w, h))
