"""A bar thinner than a pixel over a still wall: Cycles averages motion vectors over each pixel's samples, so the
bar's pixels carry a fraction of its motion (a flow neither surface has). The exact warp drags the bar at that
fraction and leaves a ghost; fusion.unexplained_motion finds those pixels and there the appearance candidate
takes over as far as it agrees with itself. Ordinary silhouettes and turning surfaces, whose mixed flows lie
between two surfaces' own flows, are not flagged. (On rendered thin bars: benchmarks/interpolate_peers.py,
scene "lines".)"""

from __future__ import annotations

import numpy as np
import pytest

from camsim.interpolate import fusion

H, W = 48, 64


def test_a_mixed_flow_hands_the_pixel_to_an_appearance_that_agrees_with_itself() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(0.2, 0.6, (H, W, 3))
    sides = (a, a)  # the exact warp's two neighbours agree (on a picture that may be wrong)
    still = (np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32))
    close = a * 1.02  # an appearance candidate whose neighbours agree within about 1 % (sRGB)
    far = np.clip(a * 4.0, 0, 1)  # one whose neighbours disagree by far more than MIXED_DISAGREEMENT
    both = np.ones((H, W), bool)
    mixed = np.zeros((H, W))
    mixed[:, 20:24] = 1.0
    w_none = fusion.appearance_weight(sides, both, (a, close), still)
    w_mixed = fusion.appearance_weight(sides, both, (a, close), still, mixed)
    w_far = fusion.appearance_weight(sides, both, (a, far), still, mixed)
    assert w_none.max() == 0.0  # the exact warp explains everything it can measure
    assert w_mixed[:, 20:24].min() > 0.9 and w_mixed[:, 30:].max() == 0.0
    assert w_far.max() == 0.0  # an appearance that does not agree with itself is not taken either


def test_silhouettes_and_turning_surfaces_are_explained() -> None:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    # A turning surface: flow linear in position (0.1 px more per pixel), one id.
    turning = np.stack([-0.1 * (yy - H / 2), 0.1 * (xx - W / 2)], axis=-1)
    assert fusion.unexplained_motion(turning, np.ones((H, W), np.uint32)).max() == 0.0
    # A silhouette: ids 1 | 2 with flows (0, 0) | (6, 2); the two columns either side of the edge mix them.
    ids = np.where(xx < 30, 1, 2).astype(np.uint32)
    flow = np.where((xx < 30)[..., None], 0.0, np.array([6.0, 2.0]))
    for col, share in ((29, 0.25), (30, 0.75)):
        flow[:, col] = share * np.array([6.0, 2.0])
    assert fusion.unexplained_motion(flow, ids).max() == 0.0
    # A quarter of that motion on one column of a still wall (a thin structure with no pixels of its own) is
    # flagged at its full size, and only there.
    line = np.zeros((H, W, 2))
    line[:, 29] = 0.25 * np.array([6.0, 2.0])
    u = fusion.unexplained_motion(line, np.ones((H, W), np.uint32))
    assert u[:, 29].min() == pytest.approx(0.25 * np.hypot(6.0, 2.0), rel=1e-5)
    assert u[:, [c for c in range(W) if c != 29]].max() == 0.0


def test_an_appearance_flow_equal_to_the_exact_one_adds_nothing() -> None:
    """Where DIS found the exact flow, its candidate is the same motion with a bilinear blur: never fused."""
    rng = np.random.default_rng(4)
    a = rng.uniform(0.2, 0.6, (H, W, 3))
    sides = (a, a * 1.1)  # the exact warp's neighbours disagree ...
    same = (np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32))
    both = np.ones((H, W), bool)
    w_free = fusion.appearance_weight(sides, both, (a, a), same)  # ... and the appearance agrees
    w_gated = fusion.appearance_weight(sides, both, (a, a), same, exact=same)
    assert w_free.min() > 0.5 and w_gated.max() == 0.0
    apart = (same[0] + np.float32(fusion.DIFFERENT_PX), same[1])
    w_apart = fusion.appearance_weight(sides, both, (a, a), same, exact=apart)
    np.testing.assert_allclose(w_apart, w_free)


def _unexplained_by_definition(flow: np.ndarray, ids: np.ndarray, r: int = 2) -> np.ndarray:
    """unexplained_motion's docstring, pixel by pixel (own pixels and candidates in offset order, the first of
    equal candidates chosen as numpy's argmin/argmax do)."""
    from scipy.ndimage import median_filter

    h, w = ids.shape
    med = np.stack([median_filter(flow[..., c], size=3, mode="nearest") for c in range(2)], axis=-1)
    pad = np.pad(ids, 1, mode="edge")
    own = np.hypot(*np.moveaxis(flow - med, -1, 0)) < fusion.SMOOTH_PX
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            own &= pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] == ids
    out = np.zeros((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            cands = [(flow[y + dy, x + dx], ids[y + dy, x + dx]) for dy in range(-r, r + 1)
                     for dx in range(-r, r + 1) if 0 <= y + dy < h and 0 <= x + dx < w and own[y + dy, x + dx]]  # fmt: skip
            if not cands:
                continue
            f = flow[y, x]
            q1, id1 = min(cands, key=lambda c: np.linalg.norm(c[0] - f))
            q2, id2 = max(cands, key=lambda c: np.linalg.norm(c[0] - q1))
            spread = max(max([np.linalg.norm(c - q1) for c, i in cands if i == id1], default=0.0),
                         max([np.linalg.norm(c - q2) for c, i in cands if i == id2], default=0.0))  # fmt: skip
            seg = q2 - q1
            t = np.clip(np.dot(f - q1, seg) / np.dot(seg, seg), 0.0, 1.0) if np.dot(seg, seg) > 0 else 0.0
            out[y, x] = max(np.linalg.norm(f - (q1 + t * seg)) - spread, 0.0)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unexplained_motion_matches_its_definition_at_every_pixel(seed: int) -> None:
    """Only pixels that are not their surface's own are measured (an own pixel is its own nearest
    candidate): the result is the definition's at every pixel, thin lines, silhouettes and noise alike."""
    rng = np.random.default_rng(seed)
    h, w = 18, 22
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ids = np.where(xx < 9, 1, 2).astype(np.int64)
    flow = np.stack([0.05 * yy + 1.0, 0.03 * xx], axis=-1).astype(np.float32)
    flow[ids == 2] = (-2.0, 0.5)
    flow[:, 14] = (-0.4, 0.6)  # a thin line's mix over surface 2
    flow[rng.uniform(size=(h, w)) < 0.08] += rng.normal(0, 0.5, 2).astype(np.float32)  # scattered odd pixels
    got = fusion.unexplained_motion(flow, ids)
    assert (got > 0).any() and (got == 0).mean() > 0.5
    np.testing.assert_allclose(got, _unexplained_by_definition(flow, ids), atol=1e-5, rtol=0)


def test_a_thin_structure_is_sure_on_its_pixels_and_their_neighbours_only() -> None:
    """The pixel filter spreads a line's colour to the pixels beside those whose motion vectors it changed:
    the mixed surety covers their 3x3 neighbours, and no more."""
    line = np.zeros((H, W), np.float32)
    line[10:30, 20] = 2 * fusion.MIXED_PX
    line[10:30, 40] = 0.5 * fusion.MIXED_PX  # half sure
    still = (np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32))
    sure = fusion.mixed_at((line, np.zeros_like(line)), still, 0.5)
    np.testing.assert_array_equal(sure[9:31, 19:22], 1.0)
    np.testing.assert_array_equal(sure[9:31, 39:42], 0.5)
    assert sure[:, [18, 22, 38, 42]].max() == 0.0 and sure[[8, 31], :].max() == 0.0


def test_where_the_exact_warp_carried_a_mixed_pixel_is_sure_too() -> None:
    """The exact warp moves a thin structure's pixel with its mixed flow, so a ghost of the structure lands
    where no flow of either neighbour is mixed: the pixels that sampled a mixed source pixel are flagged."""
    from camsim.interpolate.reverse import Layer

    unexplained = np.zeros((H, W), np.float32)
    unexplained[10:30, 20] = 2 * fusion.MIXED_PX
    n = H * W
    tx, ty = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    ones, zeros = np.ones(n), np.zeros(n)

    def layer(
        shift: float, coverage: np.ndarray
    ) -> Layer:  # every target pixel sampled `shift` px to its left
        return Layer(coverage, tx.ravel() - shift, ty.ravel(), ones, zeros, ones, np.zeros(n, bool))

    got = fusion.at_sources(unexplained, [layer(3.0, ones)])
    np.testing.assert_array_equal(got[10:30, 23], 2 * fusion.MIXED_PX)
    assert np.delete(got, 23, axis=1).max() == 0.0 and got[[9, 30], 23].max() == 0.0
    # A layer without coverage at a pixel sampled nothing there.
    assert fusion.at_sources(unexplained, [layer(3.0, zeros)]).max() == 0.0
    sure = fusion.mixed_at((np.zeros_like(unexplained),) * 2, _still(), 0.5, [got])
    np.testing.assert_array_equal(sure[9:31, 22:25], 1.0)
    assert sure[:, :22].max() == 0.0


def _still() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32)


def _grating(x0: float, period: float = 6.0) -> np.ndarray:
    """Vertical sine stripes (HxWx3, linear light 0.2-0.6) shifted to x0: detail near the pixel scale."""
    xc = np.arange(W) + 0.5
    row = 0.4 + 0.2 * np.sin(2 * np.pi * (xc - x0) / period)
    return np.repeat(np.broadcast_to(row, (H, W))[..., None], 3, axis=-1).copy()


@pytest.mark.parametrize("s", [0.1, 0.25, 0.5, 0.75])
def test_a_consistent_appearance_flow_moves_fine_detail_with_a_cubic_interpolant(s: float) -> None:
    """Closed form: stripes of a 6 px period moved 7 px are, at fraction s, the stripes drawn 7 s px on. Along
    flows known to a pixel the cubic interpolant reproduces them (a bilinear one attenuates them by up to 4 %
    of their contrast); along flows inconsistent by more than SHARP_PX[1] the warp is bilinear alone."""
    a, b = _grating(0.0), _grating(7.0)
    fab = np.zeros((H, W, 2), np.float32)
    fab[..., 0] = 7.0
    consistent = (fab, -fab)
    truth = _grating(7.0 * s)
    sharp = fusion.sharpness(consistent)
    assert sharp.min() == 1.0
    cub = fusion.warped_neighbours(a, b, consistent, s, sharp)
    lin = fusion.warped_neighbours(a, b, consistent, s, np.zeros_like(sharp))
    for side in (0, 1):
        e_cub = np.abs(cub[side] - truth)[:, 10:-10].max()
        e_lin = np.abs(lin[side] - truth)[:, 10:-10].max()
        assert e_cub < 0.4 * e_lin and e_cub < 0.008
    dx = np.zeros(2, np.float32)
    dx[0] = fusion.SHARP_PX[1] + 0.5  # the way back falls short by this many pixels
    off = (fab, -fab + dx)
    assert fusion.sharpness(off).max() == 0.0
    np.testing.assert_array_equal(fusion.warped_neighbours(a, b, off, s, fusion.sharpness(off))[0], lin[0])
    dx[0] = np.mean(fusion.SHARP_PX)
    halfway = (fab, -fab + dx)
    np.testing.assert_allclose(fusion.sharpness(halfway)[4:-4, 12:-12], 0.5, atol=1e-5)
