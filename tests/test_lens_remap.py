"""Lens distortion by resampling a larger pinhole render (camsim.lens_render, camsim.lens_remap), on synthetic
windows whose truth is known in closed form. No Blender."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camsim import lenses
from camsim.config import RenderConfig
from camsim.errors import ConfigError, SceneError
from camsim.lens_remap import (
    FrameLens,
    Remap,
    SequenceLens,
    finish_fisheye,
    remap_bilinear,
    remap_flow,
    remap_frame,
    remap_nearest,
    remap_plan,
)
from camsim.lens_render import (
    cycles_polynomial_radius,
    lens_settings,
    render_window,
    settings_problem,
    transforms_keys,
)
from camsim.lenses import Camera, Lens
from camsim.passes import DEPTH, FLOW, LINEAR, NORMAL, SEGMENTATION

W, H = 96, 72
STATE = {"fl_x": 80.0, "fl_y": 78.0, "cx": 47.3, "cy": 37.1, "w": W, "h": H}
DISTORTIONS = {
    "barrel": (-0.3, 0.08, -0.01, 0.0, 0.0),
    "pincushion": (0.4, 0.1, 0.0, 0.0, 0.0),
    "tangential": (-0.1, 0.0, 0.0, 0.006, -0.008),
}


def state(**changes: float) -> dict:
    return {**STATE, "transform_matrix": np.eye(4).tolist(), **changes}


def plan_for(name: str) -> tuple[Camera, Remap]:
    lens = Lens("OPENCV", DISTORTIONS[name])
    window = render_window([STATE], lens)
    cam = Camera(STATE["fl_x"], STATE["fl_y"], STATE["cx"], STATE["cy"], W, H, lens)
    return cam, remap_plan(cam, window)


def window_centres(remap: Remap) -> tuple[np.ndarray, np.ndarray]:
    """Window pixel centres in the frame's undistorted pixels (u, v)."""
    win = remap.window
    u, v = np.meshgrid(np.arange(win.width) + 0.5 + win.left, np.arange(win.height) + 0.5 + win.top)
    return u, v


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_the_window_holds_every_ray_of_the_distorted_frame(name):
    cam, remap = plan_for(name)
    win = remap.window
    # every distorted pixel's undistorted position lies inside the window, with the margin to spare
    p = remap.position
    assert p[..., 0].min() >= 2.0 and p[..., 0].max() <= win.width - 2.0
    assert p[..., 1].min() >= 2.0 and p[..., 1].max() <= win.height - 2.0
    # the position is exact: distorting it gives back the pixel centre to 1e-9 px
    pinhole = Camera(cam.fl_x, cam.fl_y, cam.cx - win.left, cam.cy - win.top, win.width, win.height)
    rays = np.stack([(p[..., 0] - pinhole.cx) / pinhole.fl_x, -(p[..., 1] - pinhole.cy) / pinhole.fl_y,
                     -np.ones(p.shape[:2])], -1)  # fmt: skip
    back, ok = lenses.project(rays, cam)
    assert ok.all() and np.abs(back - cam.pixel_centres()).max() < 1e-9
    # barrel distortion needs a wider pinhole image, pincushion a smaller one
    if name == "barrel":
        assert win.left < 0 and win.top < 0 and win.width > W and win.height > H
    if name == "pincushion":
        assert win.left > 0 and win.width < W and win.width * win.height < W * H


def test_a_distortion_that_folds_back_in_the_frame_is_refused():
    lens = Lens("OPENCV", (-0.9, 0.0, 0.0, 0.0, 0.0))  # r (1 - 0.9 r^2) peaks at r = 0.61, inside the frame
    with pytest.raises(SceneError, match="folds back within the 96x72 frame"):
        render_window([STATE], lens)


def test_nearest_samples_never_blend_ids_or_depths():
    _, remap = plan_for("barrel")
    u, v = window_centres(remap)
    ids = (1 + (np.floor(u / 7) + 3 * np.floor(v / 5)) % 9).astype(np.uint32)  # a patchwork of ids
    depth = (2.0 + 0.01 * u + 0.02 * v).astype(np.float32)
    out_ids, out_depth = remap_nearest(ids, remap), remap_nearest(depth, remap)
    assert out_ids.dtype == np.uint32 and out_ids.shape == (H, W)
    # every value is the window's at the pixel whose centre is nearest the undistorted position
    col, row = np.floor(remap.position[..., 0]).astype(int), np.floor(remap.position[..., 1]).astype(int)
    assert np.array_equal(out_ids, ids[row, col]) and np.array_equal(out_depth, depth[row, col])
    centre = np.stack([col + 0.5, row + 0.5], -1)
    assert np.abs(centre - remap.position).max() <= 0.5
    assert set(np.unique(out_ids)) <= set(np.unique(ids))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_colours_are_bilinear_samples(dtype):
    _, remap = plan_for("tangential")
    u, v = window_centres(remap)
    # bilinear interpolation reproduces an affine image exactly: its value at the undistorted position
    a, b = {np.uint8: (1, 1), np.uint16: (200, 300), np.float32: (1.0, 0.7)}[dtype]
    col, row = u - remap.window.left - 0.5, v - remap.window.top - 0.5  # window pixel indices
    ramp = a * col + b * row
    rgb = np.stack([ramp, ramp // 2, ramp[::-1, ::-1]], -1).astype(dtype)
    out = remap_bilinear(rgb, remap)
    assert out.dtype == dtype and out.shape == (H, W, 3)
    truth = a * (remap.position[..., 0] - 0.5) + b * (remap.position[..., 1] - 0.5)
    tolerance = 1e-4 if dtype == np.float32 else 0.5 + 1e-9  # integers: rounded to the nearest code value
    assert np.abs(out[..., 0].astype(np.float64) - truth).max() <= tolerance


def moving_camera_flow(remap: Remap, depth: float, move: np.ndarray, other: Camera) -> np.ndarray:
    """The pinhole flow of a fronto-parallel plane at planar `depth` seen from the window when the camera moves
    by `move` (camera frame), into the undistorted pixels of `other` (window offsets applied)."""
    u, v = window_centres(remap)
    cam_fx, cam_fy, cx, cy = STATE["fl_x"], STATE["fl_y"], STATE["cx"], STATE["cy"]
    pts = (
        np.stack([(u - cx) / cam_fx * depth, -(v - cy) / cam_fy * depth, -np.full(u.shape, depth)], -1) - move
    )
    uu = other.fl_x * pts[..., 0] / -pts[..., 2] + other.cx
    vv = -other.fl_y * pts[..., 1] / -pts[..., 2] + other.cy
    return np.stack([uu - u, vv - v], -1)


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_distorted_flow_follows_the_point_through_both_lenses(name):
    cam, remap = plan_for(name)
    lens = cam.lens
    nxt = state(fl_x=84.0, fl_y=81.9)  # the next frame zooms in
    prev = state(cx=46.0)  # the previous frame's principal point differs
    frame = FrameLens.of(lens, state(), prev, nxt, remap)
    move_next, move_prev = np.array([0.05, -0.03, 0.02]), np.array([-0.04, 0.01, 0.0])
    depth = np.full((remap.window.height, remap.window.width), 5.0, np.float32)
    fwd = moving_camera_flow(remap, 5.0, move_next, frame.next)
    bwd = moving_camera_flow(remap, 5.0, move_prev, frame.previous)
    got = remap_flow(np.concatenate([fwd, bwd], -1).astype(np.float32), depth, frame)
    # the truth: each distorted pixel's own surface point, moved, through the other frame's distortion
    rays, _ = lenses.unproject(cam.pixel_centres(), cam)
    points = rays * 5.0
    for sl, move, other in ((slice(0, 2), move_next, frame.next), (slice(2, 4), move_prev, frame.previous)):
        uv, _ = lenses.project(points - move, other)
        truth = uv - cam.pixel_centres()
        # exact up to the nearest sample: the pinhole flow changes by up to 0.05 px per px here (a 5 % zoom),
        # over the at most 0.71 px between the undistorted position and the nearest pinhole centre
        assert np.abs(got[..., sl] - truth).max() < 0.05
    # with a uniform pinhole flow (a translation parallel to the plane, no zoom) it is exact
    flat = FrameLens.of(lens, state(), state(), state(), remap)
    shift = moving_camera_flow(remap, 5.0, np.array([0.05, -0.03, 0.0]), flat.next)
    got = remap_flow(np.concatenate([shift, -shift], -1).astype(np.float32), depth, flat)
    uv, _ = lenses.project(points - np.array([0.05, -0.03, 0.0]), flat.next)
    assert np.abs(got[..., :2] - (uv - cam.pixel_centres())).max() < 1e-4  # float32 flow


def test_background_flow_is_exact_at_the_distorted_pixel():
    cam, remap = plan_for("barrel")
    turn = np.eye(4)
    a = 0.03
    turn[:3, :3] = [[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]]
    frame = FrameLens.of(cam.lens, state(), state(), state(transform_matrix=turn.tolist()), remap)
    sky = np.full((remap.window.height, remap.window.width), np.inf, np.float32)
    junk = np.full((remap.window.height, remap.window.width, 4), 99.0, np.float32)  # never used on the sky
    got = remap_flow(junk, sky, frame)
    rays, _ = lenses.unproject(cam.pixel_centres(), cam)
    turned = rays @ (turn[:3, :3].T @ np.eye(3)).T
    uv, ok = lenses.project(turned, cam)
    assert ok.all()
    assert np.abs(got[..., :2] - (uv - cam.pixel_centres())).max() < 1e-4
    assert np.abs(got[..., 2:]).max() < 1e-6  # the previous frame does not turn


def test_remap_frame_resamples_each_kind_its_way():
    cam, remap = plan_for("pincushion")
    frame = FrameLens.of(cam.lens, state(), state(), state(), remap)
    shape = (remap.window.height, remap.window.width)
    u, _ = window_centres(remap)
    arrays = {
        DEPTH: np.where(u > 50, np.inf, 3.0).astype(np.float32),
        SEGMENTATION: np.where(u > 50, 0, 7).astype(np.uint32),
        NORMAL: np.dstack([np.zeros(shape), np.zeros(shape), np.ones(shape)]).astype(np.float32),
        LINEAR: np.dstack([u, u, u]).astype(np.float32),
        FLOW: np.zeros((*shape, 4), np.float32),
    }
    out = remap_frame(arrays, arrays[DEPTH], frame)
    assert {k: v.shape[:2] for k, v in out.items()} == dict.fromkeys(arrays, (H, W))
    assert set(np.unique(out[SEGMENTATION])) == {0, 7}
    assert np.array_equal(out[SEGMENTATION] == 0, np.isinf(out[DEPTH]))  # one mask for every nearest kind
    np.testing.assert_allclose(out[LINEAR][..., 0], remap.position[..., 0] + remap.window.left, atol=1e-4)


def test_fisheye_frames_have_nothing_outside_the_image_circle():
    lens = Lens("OPENCV_FISHEYE", (0.0, 0.0, 0.0, 0.0), math.radians(180))
    fish = {"fl_x": W / math.pi, "fl_y": H / math.pi, "cx": W / 2, "cy": H / 2, "w": W, "h": H,
            "transform_matrix": np.eye(4).tolist()}  # fmt: skip
    turn = np.eye(4)
    turn[:3, :3] = [
        [1.0, 0.0, 0.0],
        [0.0, math.cos(0.05), -math.sin(0.05)],
        [0.0, math.sin(0.05), math.cos(0.05)],
    ]
    frame = FrameLens.of(lens, fish, fish, {**fish, "transform_matrix": turn.tolist()})
    arrays = {
        DEPTH: np.full((H, W), np.inf, np.float32),
        SEGMENTATION: np.ones((H, W), np.uint32),
        FLOW: np.full((H, W, 4), 5.0, np.float32),
    }
    out = finish_fisheye(arrays, arrays[DEPTH], frame)
    cam = frame.current
    _, inside = lenses.unproject(cam.pixel_centres(), cam)
    assert 0.5 < inside.mean() < 0.9  # the equidistant 180-degree circle touches the frame's edges
    assert (out[SEGMENTATION][~inside] == 0).all() and (out[SEGMENTATION][inside] == 1).all()
    assert (out[FLOW][~inside] == 0).all()
    # the sky inside the circle moves as points at infinity seen through the turning fisheye
    rays, _ = lenses.unproject(cam.pixel_centres()[inside], cam)
    uv, ok = lenses.project(rays @ turn[:3, :3], frame.next)
    truth = np.where(ok[:, None], uv - cam.pixel_centres()[inside], 0.0)
    assert np.abs(out[FLOW][..., :2][inside] - truth).max() < 1e-4
    assert np.abs(out[FLOW][..., 2:][inside]).max() < 1e-6


def test_lens_settings_and_their_refusals():
    fast = RenderConfig(annotations=False)
    assert lens_settings(fast).is_pinhole and SequenceLens.plan(fast, {}, []) is None
    assert transforms_keys(fast, {}, []) == {
        "camera_model": "OPENCV",
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
    }
    barrel = fast.replace(distortion=DISTORTIONS["barrel"])
    assert lens_settings(barrel) == Lens("OPENCV", DISTORTIONS["barrel"])
    cams = {f: state() for f in (0, 1, 2)}
    keys = transforms_keys(barrel, cams, [1])
    assert keys["camera_model"] == "OPENCV"
    assert [keys[k] for k in ("k1", "k2", "k3", "p1", "p2")] == list(DISTORTIONS["barrel"])
    window = keys["render_window"]
    assert window["pixels_rendered_per_output_pixel"] == pytest.approx(
        window["width"] * window["height"] / (W * H)
    )
    assert window["rendered_fov_degrees"][0] > window["pinhole_fov_degrees"][0]
    fish = fast.replace(lens="fisheye-equisolid", fisheye_fov=200.0)
    assert transforms_keys(fish, cams, [1]) == {
        "camera_model": "FISHEYE_EQUISOLID",
        "fisheye_fov": math.radians(200),
    }
    assert (
        transforms_keys(fast.replace(lens="fisheye-equidistant"), cams, [1])["camera_model"]
        == "OPENCV_FISHEYE"
    )
    # what cannot be rendered exactly is refused, naming the flags
    assert "cannot go with --render-config.lens" in settings_problem(
        fish.replace(distortion=(0.1, 0, 0, 0, 0))
    )
    assert "fisheye-fov" in settings_problem(fish.replace(fisheye_fov=400.0))
    assert settings_problem(barrel.replace(annotations=True)) is None  # annotated through the window
    assert "no-annotations" in settings_problem(fish.replace(annotations=True))
    with pytest.raises(ConfigError, match="no-annotations"):
        RenderConfig(lens="fisheye-equidistant", flows=False).validate()
    zoom = {0: state(), 1: state(), 2: state(fl_x=90.0)}
    with pytest.raises(SceneError, match="fisheye's flow needs a lens that does not change"):
        SequenceLens.plan(fish, zoom, [1])
    assert SequenceLens.plan(fish.replace(flows=False), zoom, [1]) is not None


POLY_STATE = {"fl_x": 96 / 36.0, "fl_y": 96 / 36.0}  # a 36 mm sensor: pixels per millimetre
POLY_GOOD = (0.0, -0.07, -0.004, 2.5e-4, -5e-6)


def test_polynomial_fisheye_settings_and_their_refusals():
    fast = RenderConfig(annotations=False)
    poly = fast.replace(lens="fisheye-polynomial", fisheye_fov=200.0, fisheye_polynomial=POLY_GOOD)
    cams = {f: state(**POLY_STATE) for f in (0, 1, 2)}
    keys = transforms_keys(poly, cams, [1])
    assert keys == {"camera_model": "FISHEYE_POLYNOMIAL", "fisheye_fov": math.radians(200),
                    **dict(zip(("k0", "k1", "k2", "k3", "k4"), POLY_GOOD, strict=True))}  # fmt: skip
    assert SequenceLens.plan(poly, cams, [1]).window is None  # Cycles renders it directly
    # the flags are named
    assert "needs --render-config.fisheye-polynomial" in settings_problem(
        poly.replace(fisheye_polynomial=None)
    )
    assert "goes with --render-config.lens fisheye-polynomial" in settings_problem(
        fast.replace(fisheye_polynomial=POLY_GOOD)
    )
    assert "K0 <= 0" in settings_problem(poly.replace(fisheye_polynomial=(0.01, *POLY_GOOD[1:])))
    assert "K1 < 0" in settings_problem(poly.replace(fisheye_polynomial=(0.0, 0.0, -0.01, 0.0, 0.0)))
    assert "finite" in settings_problem(poly.replace(fisheye_polynomial=(0.0, math.nan, 0.0, 0.0, 0.0)))
    with pytest.raises(ConfigError, match="fisheye-polynomial"):
        fast.replace(fisheye_polynomial=POLY_GOOD).validate()
    # theta(r) = 0.04 r - 1e-6 r^4 stops growing at r = 21.5 mm, inside the 96x72 frame (corners 22 mm away)
    with pytest.raises(SceneError, match="folds back within the 96x72 frame"):
        SequenceLens.plan(poly.replace(fisheye_polynomial=(0.0, -0.04, 0.0, 0.0, 1e-6)), cams, [1])
    # Cycles' motion vectors (float32 Newton steps from the linear radius) stall where theta(r) flattens out
    stalls = poly.replace(fisheye_polynomial=(0.0, -0.0233, -4.68e-4, 1.7e-5, 0.0))
    with pytest.raises(SceneError, match=r"motion vectors.*pass --render-config\.no-flows"):
        SequenceLens.plan(stalls, cams, [1])
    assert SequenceLens.plan(stalls.replace(flows=False), cams, [1]) is not None


def test_cycles_polynomial_motion_vectors_are_emulated():
    """lens_render.cycles_polynomial_radius (Cycles' inversion, float32) finds the model's radius where the model
    grows steadily, and not where it flattens out (the refusal above)."""
    theta = np.linspace(0.0, math.radians(100), 500)
    good = Lens("FISHEYE_POLYNOMIAL", POLY_GOOD, math.radians(200))
    exact = lenses.fisheye_radius(theta, good)
    assert np.abs(cycles_polynomial_radius(theta, POLY_GOOD) - exact).max() < 1e-4  # mm: 3e-4 px here
    flat = (0.0, -0.0233, -4.68e-4, 1.7e-5, 0.0)
    top = lenses.polynomial_valid_radius(flat)
    edge = lenses.fisheye_angle(np.array([top]), Lens("FISHEYE_POLYNOMIAL", flat, math.pi))
    assert abs(cycles_polynomial_radius(edge, flat)[0] - top) > 1e-3
