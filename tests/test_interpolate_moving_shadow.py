"""A shadow moving over a static textured floor: the exact (surface) flow is zero there, so the exact warp
alone cross-fades two shadows; the appearance fusion (interpolate/fusion.py) moves the shadow instead."""

from __future__ import annotations

import numpy as np

from camsim.interpolate.warp import FrameData, PairWarper

H, W = 48, 64


def _floor() -> np.ndarray:
    rng = np.random.default_rng(3)
    coarse = rng.uniform(0.3, 0.8, (H // 8 + 1, W // 8 + 1))
    from scipy.ndimage import zoom

    return zoom(coarse, 8, order=3)[:H, :W].clip(0.05, 1.0)


def _shadow(x0: float) -> np.ndarray:
    """A soft vertical shadow band (light factor 0.35 inside) with its left edge at x0 (pixels)."""
    x = np.arange(W) + 0.5
    inside = 1.0 / (1.0 + np.exp(-(x - x0) / 0.6)) * (1.0 / (1.0 + np.exp((x - x0 - 14.0) / 0.6)))
    return np.broadcast_to(1.0 - 0.65 * inside, (H, W))


def _frame(x0: float) -> FrameData:
    img = (_floor() * _shadow(x0))[..., None].repeat(3, axis=2)
    K = np.array([[50.0, 0.0, W / 2], [0.0, 50.0, H / 2], [0.0, 0.0, 1.0]])
    return FrameData(rgb=img, depth=np.full((H, W), 4.0), flow=np.zeros((H, W, 4)), c2w=np.eye(4), K=K)


def test_moving_shadow_on_static_floor_moves_instead_of_cross_fading():
    a, b = _frame(20.0), _frame(28.0)  # the shadow moves 8 px per frame; the floor does not move
    truth = (_floor() * _shadow(24.0))[..., None]
    fused = PairWarper(a, b).frame(0.5, np.eye(4), a.K, 2).rgb
    exact = PairWarper(a, b, appearance=False).frame(0.5, np.eye(4), a.K, 2).rgb
    core = np.s_[6:-6, 6:-6]
    err_fused = np.abs(fused - truth)[core].mean()
    err_exact = np.abs(exact - truth)[core].mean()
    assert err_fused < 0.35 * err_exact, (err_fused, err_exact)
    assert np.abs(fused - truth)[core].max() < 0.2  # contrast 0.65 of the floor


def test_static_scene_interpolates_to_itself():
    a = _frame(20.0)
    fused = PairWarper(a, a).frame(0.5, np.eye(4), a.K, 2).rgb
    # Nothing moves: no DIS colour is fused in, and the new frame is the frame itself (below a pixel of
    # motion the colour is the neighbours' cross-fade, so the warp's resampling of edges does not show).
    np.testing.assert_allclose(fused, a.rgb, rtol=0.0, atol=1e-12)


def test_sub_pixel_motion_takes_the_cross_fade_and_larger_motion_the_warp():
    from camsim.interpolate import fusion

    a, b = _frame(20.0), _frame(20.3)  # the shadow moves 0.3 px per frame
    out = PairWarper(a, b).frame(0.25, np.eye(4), a.K, 4).rgb
    np.testing.assert_allclose(out, 0.75 * a.rgb + 0.25 * b.rgb, rtol=0.0, atol=1e-12)
    motion = np.array([[0.0, 0.5, 1.0, 1.5, 3.0]])
    still = (np.zeros((1, 5, 2)), np.zeros((1, 5, 2)))
    np.testing.assert_allclose(fusion.crossfade_weight(motion, still), [[1.0, 1.0, 0.5, 0.0, 0.0]])
    moving = (np.full((1, 5, 2), 2.0), np.zeros((1, 5, 2)))  # an appearance moving faster than the surface
    np.testing.assert_array_equal(fusion.crossfade_weight(motion, moving), 0.0)
