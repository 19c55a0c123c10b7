"""What a render does for a lens other than the scene's pinhole (`--render-config.distortion`, `--render-config.lens`).

Distortion: Cycles renders a pinhole image that covers the ray of every distorted pixel (a `RenderWindow` of
the undistorted image, same focal length in pixels), and `lens_remap` resamples it into the distorted frame.
Fisheyes: Cycles renders them directly (its panoramic camera); only the world background's flow and the
pixels outside the image circle need camsim (`lens_remap.finish_fisheye`).

Pure functions of settings and camera states (the worker's `cameras` reply: fl_x, fl_y, cx, cy, w, h).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from camsim.errors import SceneError
from camsim.lenses import (
    PINHOLE,
    Camera,
    Lens,
    distort_jacobian,
    fisheye_angle,
    fisheye_radius,
    polynomial_valid_radius,
    undistort,
)

if TYPE_CHECKING:
    from camsim.config import RenderSettings

FISHEYE_MODELS = {
    "fisheye-equidistant": "OPENCV_FISHEYE",
    "fisheye-equisolid": "FISHEYE_EQUISOLID",
    "fisheye-polynomial": "FISHEYE_POLYNOMIAL",
}
"""--render-config.lens -> camera_model."""

BLENDER_PANORAMA = {
    "fisheye-equidistant": "FISHEYE_EQUIDISTANT",
    "fisheye-equisolid": "FISHEYE_EQUISOLID",
    "fisheye-polynomial": "FISHEYE_LENS_POLYNOMIAL",
}
"""--render-config.lens -> Blender's camera panorama_type."""

WINDOW_MARGIN = 2
"""Pinhole pixels rendered beyond the last one a distorted pixel samples (bilinear needs one)."""


def settings_problem(settings: RenderSettings) -> str | None:
    """Why these lens settings cannot be rendered exactly, naming the flags; None when they can."""
    d = settings.distortion
    if d is not None and not all(math.isfinite(float(v)) for v in d):
        return "--render-config.distortion must be five finite numbers K1 K2 K3 P1 P2"
    if d is not None and any(d) and settings.lens != "perspective":
        return f"--render-config.distortion is OpenCV's pinhole model; it cannot go with --render-config.lens {settings.lens}"
    if not (math.isfinite(settings.fisheye_fov) and 0 < settings.fisheye_fov <= 360):
        return f"--render-config.fisheye-fov must be in (0, 360] degrees, got {settings.fisheye_fov}"
    poly_problem = polynomial_settings_problem(settings)
    if poly_problem:
        return poly_problem
    if not lens_settings(settings).is_pinhole:
        fisheye = settings.lens != "perspective"
        if fisheye and getattr(settings, "annotations", False) and getattr(settings, "segmentations", True):
            return (
                "per-object annotations project geometry through a pinhole or a distortion's render window: "
                "with a fisheye --render-config.lens pass --render-config.no-annotations"
            )
        if getattr(settings, "cameras", ()):
            return "a rig (--render-config.cameras) renders pinhole cameras only: drop the lens settings"
    if settings.lens != "perspective" and getattr(settings, "scene_flows", False):
        return "scene flow unprojects planar depth through a pinhole: it cannot go with a fisheye --render-config.lens"
    return None


def lens_settings(settings: RenderSettings) -> Lens:
    """The lens a render with `settings` writes into transforms.json (its camera_model and keys)."""
    if settings.lens in FISHEYE_MODELS:
        model = FISHEYE_MODELS[settings.lens]
        params = {"OPENCV_FISHEYE": (0.0, 0.0, 0.0, 0.0), "FISHEYE_EQUISOLID": ()}.get(model)
        if params is None:  # FISHEYE_POLYNOMIAL (settings_problem: the coefficients are given)
            params = tuple(float(v) for v in settings.fisheye_polynomial or ())
        return Lens(model, params, math.radians(settings.fisheye_fov))
    if settings.distortion is not None and any(settings.distortion):
        return Lens("OPENCV", tuple(float(v) for v in settings.distortion))
    return PINHOLE


def camera(state: Mapping[str, Any], lens: Lens) -> Camera:
    """The camera of a camera state (the worker's fl_x, fl_y, cx, cy, w, h) with `lens`."""
    return Camera(
        float(state["fl_x"]), float(state["fl_y"]), float(state["cx"]), float(state["cy"]),
        int(state["w"]), int(state["h"]), lens,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ the window


@dataclass(frozen=True)
class RenderWindow:
    """The pinhole image rendered for a distorted frame: its pixel (i, j) is pixel (left + i, top + j) of the
    frame's undistorted image (the pinhole with the frame's own fl_x, fl_y, cx, cy); it may reach beyond the
    frame's 0..w-1, 0..h-1 (barrel distortion) or lie inside it (pincushion)."""

    left: int
    top: int
    width: int
    height: int

    def state(self, cam: Mapping[str, Any]) -> dict[str, Any]:
        """The camera state of the window's render for a frame's camera state."""
        return {
            **cam,
            "cx": float(cam["cx"]) - self.left,
            "cy": float(cam["cy"]) - self.top,
            "w": self.width,
            "h": self.height,
        }

    def to_json(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    def as_list(self) -> list[int]:
        """[left, top, width, height], as the worker's render_frame takes it."""
        return [self.left, self.top, self.width, self.height]


def undistorted_positions(cam: Camera) -> np.ndarray:
    """(h, w, 2) positions in the undistorted (pinhole) image of every distorted pixel centre; raises
    SceneError when a pixel has none (the distortion folds back within the frame)."""
    centres = cam.pixel_centres()
    ab_d = np.stack([(centres[..., 0] - cam.cx) / cam.fl_x, (centres[..., 1] - cam.cy) / cam.fl_y], -1)
    tolerance = 1e-9 / max(abs(cam.fl_x), abs(cam.fl_y))
    ab, ok = undistort(ab_d, cam.lens.params, tolerance)
    jac = distort_jacobian(ab, cam.lens.params)
    det = jac[..., 0, 0] * jac[..., 1, 1] - jac[..., 0, 1] * jac[..., 1, 0]
    ok &= det > 0
    if not ok.all():
        v, u = np.argwhere(~ok)[0]
        raise SceneError(
            f"--render-config.distortion {list(cam.lens.params)} folds back within the {cam.w}x{cam.h} frame "
            f"(pixel ({u}, {v}) has no unique undistorted position): OpenCV's model is not invertible there"
        )
    return np.stack([cam.fl_x * ab[..., 0] + cam.cx, cam.fl_y * ab[..., 1] + cam.cy], -1)


@functools.lru_cache(maxsize=4096)
def _bounds(key: tuple[float, ...], lens: Lens) -> tuple[float, float, float, float]:
    """(u min, v min, u max, v max) of the undistorted positions of a camera's pixel centres (cached: the
    sequence's plan and its transforms.json ask for the same cameras)."""
    p = undistorted_positions(Camera(*key[:4], int(key[4]), int(key[5]), lens))
    return float(p[..., 0].min()), float(p[..., 1].min()), float(p[..., 0].max()), float(p[..., 1].max())


def render_window(
    states: Iterable[Mapping[str, Any]], lens: Lens, margin: int = WINDOW_MARGIN
) -> RenderWindow:
    """The smallest pinhole window (plus `margin` pixels) that holds, for every frame's camera state, the
    pinhole pixels each distorted pixel samples: the nearest one and the four of a bilinear sample."""
    keys = {tuple(float(s[k]) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")) for s in states}
    bounds = [_bounds(key, lens) for key in sorted(keys)]
    u0, v0 = min(b[0] for b in bounds), min(b[1] for b in bounds)
    u1, v1 = max(b[2] for b in bounds), max(b[3] for b in bounds)
    left, top = math.floor(u0 - 0.5) - margin, math.floor(v0 - 0.5) - margin
    right, bottom = math.floor(u1 - 0.5) + 1 + margin, math.floor(v1 - 0.5) + 1 + margin
    return RenderWindow(left, top, right - left + 1, bottom - top + 1)


def field_of_view(cam: Camera) -> tuple[float, float]:
    """Horizontal and vertical field of view (degrees) of a pinhole camera state's full image."""
    return (
        math.degrees(math.atan(cam.cx / cam.fl_x) + math.atan((cam.w - cam.cx) / cam.fl_x)),
        math.degrees(math.atan(cam.cy / cam.fl_y) + math.atan((cam.h - cam.cy) / cam.fl_y)),
    )


def window_record(window: RenderWindow, state: Mapping[str, Any]) -> dict[str, Any]:
    """transforms.json `render_window`: the window, and how much more than the frame it renders (pixels and
    field of view of the pinhole frame vs. the window, for the first frame's camera)."""
    frame = camera(state, PINHOLE)
    wide = camera(window.state(state), PINHOLE)
    return {
        **window.to_json(),
        "pixels_rendered_per_output_pixel": window.width * window.height / (frame.w * frame.h),
        "pinhole_fov_degrees": [round(v, 6) for v in field_of_view(frame)],
        "rendered_fov_degrees": [round(v, 6) for v in field_of_view(wide)],
    }


def transforms_keys(
    settings: RenderSettings, cams: Mapping[int, Mapping[str, Any]], frames: list[int]
) -> dict[str, Any]:
    """The lens's transforms.json keys: camera_model and its parameters (the pinhole: OPENCV with k1 = k2 = p1
    = p2 = 0; a distortion adds k3 and `render_window`; a fisheye its model's keys and fisheye_fov)."""
    lens = lens_settings(settings)
    if lens.is_pinhole:
        return {"camera_model": "OPENCV", "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}
    out = lens.keys()
    if not lens.is_fisheye:
        window = render_window([cams[f] for f in frames], lens)
        out["render_window"] = window_record(window, cams[frames[0]])
    return out


# ------------------------------------------------------------------------------- the polynomial fisheye

POLYNOMIAL_FLOW_TOLERANCE_PX = 1e-3
"""How closely Cycles' motion vectors must find a polynomial fisheye's image radius (pixels), or flow is refused."""

POLYNOMIAL_FLOW_REACH = 2.0
"""Out to how many times the frame's farthest corner radius Cycles' polynomial motion vectors are checked."""


def polynomial_settings_problem(settings: RenderSettings) -> str | None:
    """Why the polynomial fisheye settings cannot be rendered exactly (before any camera is known), or None.
    Cycles turns a pixel at image radius r (mm) into a ray at θ = -(k0 + k1 r + ... + k4 r⁴) from the axis;
    camsim needs θ to start at the axis or beyond (k0 <= 0) and to grow there (k1 < 0)."""
    coeffs = getattr(settings, "fisheye_polynomial", None)
    if settings.lens != "fisheye-polynomial":
        if coeffs is not None:
            return "--render-config.fisheye-polynomial goes with --render-config.lens fisheye-polynomial"
        return None
    if coeffs is None:
        return (
            "--render-config.lens fisheye-polynomial needs --render-config.fisheye-polynomial K0 K1 K2 K3 K4"
        )
    if len(coeffs) != 5 or not all(math.isfinite(float(v)) for v in coeffs):
        return "--render-config.fisheye-polynomial must be five finite numbers K0 K1 K2 K3 K4"
    if coeffs[0] > 0:
        return (
            f"--render-config.fisheye-polynomial K0 = {coeffs[0]} > 0 turns the pixels around the principal point "
            "to negative angles (mirrored rays): camsim needs K0 <= 0"
        )
    if coeffs[1] >= 0:
        return (
            f"--render-config.fisheye-polynomial K1 = {coeffs[1]} >= 0: the angle must grow from the principal "
            "point (theta = -(K0 + K1 r + ...), so K1 < 0)"
        )
    return None


def _frame_radii(cam: Camera) -> np.ndarray:
    """Image radii (camera units: millimetres for the polynomial) of the frame at half-pixel steps (pixel centres,
    edges and corners): where Cycles' samples fall."""
    u = np.arange(2 * cam.w + 1) * 0.5
    v = np.arange(2 * cam.h + 1) * 0.5
    a, b = (u - cam.cx) / cam.fl_x, (v - cam.cy) / cam.fl_y
    return np.hypot(a[None, :], b[:, None]).ravel()


def polynomial_frame_problem(cam: Camera) -> str | None:
    """Why Cycles' polynomial fisheye cannot be rendered exactly in this frame, or None: a pixel beyond the
    radius where θ(r) stops growing would still get a ray (|θ| <= fisheye_fov / 2) that the model also gives
    a pixel nearer the centre, so projection would not be unique."""
    lens = cam.lens
    assert lens.model == "FISHEYE_POLYNOMIAL" and lens.fov is not None
    limit = polynomial_valid_radius(lens.params)
    r = _frame_radii(cam)
    beyond = r[r > limit]
    if beyond.size and (np.abs(fisheye_angle(beyond, lens)) <= 0.5 * lens.fov).any():
        return (
            f"--render-config.fisheye-polynomial {list(lens.params)} folds back within the {cam.w}x{cam.h} frame: "
            f"theta(r) stops growing at r = {limit:.6g} mm, and pixels beyond it still see rays within "
            "--render-config.fisheye-fov / 2 (one direction at two pixels); narrow --render-config.fisheye-fov "
            "or change the coefficients"
        )
    return None


def cycles_polynomial_radius(theta: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    """The image radius (mm) Cycles 5.0 finds for rays at angle θ from the axis when it turns directions into
    pixels (its motion vectors: direction_to_fisheye_lens_polynomial): at most 20 Newton steps in float32 from
    the linear model's radius, stopping once a step is below 1e-6 mm. θ is taken exactly (Cycles computes it
    as acos of the direction's axial component, in float32)."""
    f32 = np.float32
    k0, k1, k2, k3, k4 = (f32(v) for v in params)
    t = -np.asarray(theta, dtype=f32)
    with np.errstate(all="ignore"):
        r = (t - k0) / k1
        active = np.ones(r.shape, bool)
        for _ in range(20):
            r2 = r * r
            f = t - (k0 + (k1 * r + k2 * r2 + k3 * r2 * r + k4 * r2 * r2))
            df = f32(1.0) * k1 + f32(2.0) * k2 * r + f32(3.0) * k3 * r2 + f32(4.0) * k4 * r2 * r
            new = np.where(active, r + f / df, r).astype(f32)
            active &= ~(np.abs(new - r) < f32(1e-6))
            r = new
            if not active.any():
                break
    return r.astype(np.float64)


def polynomial_flow_problem(cam: Camera) -> str | None:
    """Why Cycles' motion vectors of this polynomial fisheye are not exact, or None: its Newton steps must find
    the image radius of every angle the lens images out to twice the frame's farthest corner (and up to
    fisheye_fov / 2 and the radius where θ(r) stops growing) to POLYNOMIAL_FLOW_TOLERANCE_PX."""
    lens = cam.lens
    assert lens.model == "FISHEYE_POLYNOMIAL" and lens.fov is not None
    reach = min(polynomial_valid_radius(lens.params), POLYNOMIAL_FLOW_REACH * float(_frame_radii(cam).max()))
    top = min(0.5 * lens.fov, float(fisheye_angle(np.array(reach), lens)))
    start = float(fisheye_angle(np.array(0.0), lens))
    theta = np.linspace(start, top, 4001)
    exact = fisheye_radius(theta, lens)
    err = np.abs(cycles_polynomial_radius(theta, lens.params) - exact) * max(cam.fl_x, cam.fl_y)
    worst = float(np.nanmax(np.where(np.isfinite(err), err, np.inf)))
    if worst > POLYNOMIAL_FLOW_TOLERANCE_PX:
        at = float(theta[int(np.argmax(np.where(np.isfinite(err), err, np.inf)))])
        return (
            f"Cycles' motion vectors for --render-config.fisheye-polynomial {list(lens.params)} are off by up to "
            f"{worst:.3g} px (its Newton steps do not find the image radius at {math.degrees(at):.4g} degrees): "
            "pass --render-config.no-flows"
        )
    return None
