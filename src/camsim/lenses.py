"""Lens models: camera-frame points to pixels and pixels back to rays, for every camera model camsim writes.

Frames: camsim's camera frame (OpenGL axes: +X right, +Y up, the camera looks along -Z); pixels with the
origin at the top-left corner of the top-left pixel, x right, y down (transforms.CONVENTIONS). Every model
first maps a point to normalized image coordinates (a, b) (a right, b down), then to pixels:
u = fl_x * a + cx, v = fl_y * b + cy.

| camera_model | keys | (a, b) of a camera-frame point (X, Y, Z) |
| --- | --- | --- |
| `OPENCV` | k1 k2 k3 p1 p2 | OpenCV's radial-tangential distortion of (X/(-Z), -Y/(-Z)); all 0: the pinhole |
| `OPENCV_FISHEYE` | k1 k2 k3 k4 | Kannala-Brandt: r = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸) along the point's image direction; camsim writes k = 0, the equidistant fisheye r = θ (Cycles' FISHEYE_EQUIDISTANT) |
| `FISHEYE_EQUISOLID` | (none) | r = 2 sin(θ/2) (Cycles' FISHEYE_EQUISOLID); camsim's own name: nerfstudio has no exact equivalent |
| `FISHEYE_POLYNOMIAL` | k0 k1 k2 k3 k4 | Cycles' FISHEYE_LENS_POLYNOMIAL: θ = -(k0 + k1 r + k2 r² + k3 r³ + k4 r⁴), r in millimetres on the sensor (fl_x = fl_y = pixels per millimetre), up to `polynomial_valid_radius` (where θ stops growing); camsim's own name |

θ is the angle between the ray and the optical axis (-Z). Fisheye models see up to `fisheye_fov` / 2 from the
axis (the image circle; beyond it no ray leaves the camera). Depth along a pixel is planar z for `OPENCV`
(rays from `unproject` have z = -1) and the distance along the ray for the fisheyes (unit rays): the
convention of each model's depth maps (`depth_is_radial`).

Unprojection of `OPENCV` undistorts iteratively (Newton's method) until the distorted point is reproduced
to 1e-9 px; a pixel whose undistortion does not converge, or lands beyond the model's valid radius (where
the radial distortion folds back), has no ray (valid False). Pure numpy, float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from camsim.errors import DatasetError

MODELS: dict[str, tuple[str, ...]] = {
    "OPENCV": ("k1", "k2", "k3", "p1", "p2"),
    "OPENCV_FISHEYE": ("k1", "k2", "k3", "k4"),
    "FISHEYE_EQUISOLID": (),
    "FISHEYE_POLYNOMIAL": ("k0", "k1", "k2", "k3", "k4"),
}
"""Every camera model camsim writes and the transforms.json keys of its parameters, in `Lens.params` order."""

FISHEYES = ("OPENCV_FISHEYE", "FISHEYE_EQUISOLID", "FISHEYE_POLYNOMIAL")

UNDISTORT_TOLERANCE_PX = 1e-9
"""How closely an undistorted point must reproduce its distorted pixel (pixels)."""

_NEWTON_STEPS = 60


@dataclass(frozen=True)
class Lens:
    """A camera model and its parameters (`MODELS[model]` order); `fov`: a fisheye's full field of view
    (radians), None for OPENCV."""

    model: str = "OPENCV"
    params: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    fov: float | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise DatasetError(f"unknown camera_model {self.model!r} (camsim knows {', '.join(MODELS)})")
        if len(self.params) != len(MODELS[self.model]):
            raise DatasetError(f"camera_model {self.model} takes {len(MODELS[self.model])} parameters")
        if (self.model in FISHEYES) != (self.fov is not None):
            raise DatasetError(f"camera_model {self.model}: a fisheye has a field of view, nothing else does")

    @property
    def is_fisheye(self) -> bool:
        return self.model in FISHEYES

    @property
    def is_pinhole(self) -> bool:
        """OPENCV without distortion."""
        return self.model == "OPENCV" and not any(self.params)

    def keys(self) -> dict[str, Any]:
        """The transforms.json keys of this lens: camera_model, its parameters, and a fisheye's fisheye_fov."""
        out: dict[str, Any] = {"camera_model": self.model}
        out.update({k: float(v) for k, v in zip(MODELS[self.model], self.params, strict=True)})
        if self.fov is not None:
            out["fisheye_fov"] = float(self.fov)
        return out


PINHOLE = Lens()


@dataclass(frozen=True)
class Camera:
    """Intrinsics in pixels (top-left corner origin) and the lens of one frame."""

    fl_x: float
    fl_y: float
    cx: float
    cy: float
    w: int
    h: int
    lens: Lens = PINHOLE

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fl_x, 0.0, self.cx], [0.0, self.fl_y, self.cy], [0.0, 0.0, 1.0]])

    def pixel_centres(self) -> np.ndarray:
        """(h, w, 2) pixel centres (u, v)."""
        u, v = np.meshgrid(np.arange(self.w) + 0.5, np.arange(self.h) + 0.5)
        return np.stack([u, v], axis=-1)


def depth_is_radial(lens: Lens) -> bool:
    """True when depth maps of this lens hold the distance along the ray (fisheyes), False for planar z."""
    return lens.is_fisheye


# ------------------------------------------------------------------------------------ transforms.json


def _number(meta: dict[str, Any], key: str) -> float:
    value = meta.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DatasetError(f"'{key}' must be a finite number, got {value!r}")
    return float(value)


def lens_of(meta: dict[str, Any]) -> Lens:
    """The lens a transforms.json describes: `camera_model` (default OPENCV) and its keys (missing: 0)."""
    model = meta.get("camera_model", "OPENCV")
    if model not in MODELS:
        raise DatasetError(f"unknown camera_model {model!r} (camsim knows {', '.join(MODELS)})")
    params = tuple(_number(meta, k) for k in MODELS[model])
    fov = None
    if model in FISHEYES:
        fov = _number(meta, "fisheye_fov")
        if not 0 < fov <= 2 * math.pi:
            raise DatasetError(f"'fisheye_fov' must be in (0, 2 pi] radians, got {fov!r}")
    return Lens(model, params, fov)


def camera_of(meta: dict[str, Any], index: int | None = None) -> Camera:
    """The camera of frame `index` (per-frame intrinsics where the frame has them) or of the top level."""
    fr = meta["frames"][index] if index is not None else {}
    fx, fy, cx, cy = (float(fr.get(k, meta.get(k))) for k in ("fl_x", "fl_y", "cx", "cy"))
    return Camera(fx, fy, cx, cy, int(meta["w"]), int(meta["h"]), lens_of(meta))


# -------------------------------------------------------------------------------- OpenCV radial-tangential


def distort(ab: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    """OpenCV's radial-tangential distortion of normalized coordinates (..., 2) (a right, b down)."""
    ad, bd = distort_components(ab[..., 0], ab[..., 1], params)
    return np.stack([ad, bd], axis=-1)


def distort_components(
    a: np.ndarray, b: np.ndarray, params: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """`distort` on separate coordinate arrays (no stacking: the per-pixel loops of a frame)."""
    k1, k2, k3, p1, p2 = params
    s = a * a + b * b
    radial = 1.0 + s * (k1 + s * (k2 + s * k3))
    ad = a * radial + 2.0 * p1 * a * b + p2 * (s + 2.0 * a * a)
    bd = b * radial + p1 * (s + 2.0 * b * b) + 2.0 * p2 * a * b
    return ad, bd


def distort_jacobian(ab: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    """(..., 2, 2) derivative of `distort` with respect to (a, b)."""
    k1, k2, k3, p1, p2 = params
    a, b = ab[..., 0], ab[..., 1]
    s = a * a + b * b
    radial = 1.0 + s * (k1 + s * (k2 + s * k3))
    slope = k1 + s * (2.0 * k2 + 3.0 * k3 * s)  # d radial / d s
    daa = radial + 2.0 * a * a * slope + 2.0 * p1 * b + 6.0 * p2 * a
    dab = 2.0 * a * b * slope + 2.0 * p1 * a + 2.0 * p2 * b
    dbb = radial + 2.0 * b * b * slope + 6.0 * p1 * b + 2.0 * p2 * a
    return np.stack([np.stack([daa, dab], -1), np.stack([dab, dbb], -1)], -2)


def valid_radius(params: tuple[float, ...]) -> float:
    """The normalized radius up to which OpenCV's radial distortion r (1 + k1 r² + k2 r⁴ + k3 r⁶) still grows
    with r (inf when it always does): beyond it the model folds back and is not invertible."""
    k1, k2, k3 = params[:3]
    # d/dr [r (1 + k1 r² + k2 r⁴ + k3 r⁶)] = 1 + 3 k1 s + 5 k2 s² + 7 k3 s³ with s = r²
    roots = np.roots([7.0 * k3, 5.0 * k2, 3.0 * k1, 1.0]) if any((k1, k2, k3)) else np.array([])
    positive = [r.real for r in np.atleast_1d(roots) if abs(r.imag) < 1e-12 and r.real > 0]
    return math.sqrt(min(positive)) if positive else math.inf


def undistort(
    ab_d: np.ndarray, params: tuple[float, ...], tolerance: float = 1e-12
) -> tuple[np.ndarray, np.ndarray]:
    """Normalized coordinates whose distortion is `ab_d` (..., 2), by Newton steps (halved while they
    overshoot), and whether each converged (|distort(ab) - ab_d| <= tolerance) within the model's valid
    radius."""
    target = np.asarray(ab_d, dtype=np.float64)
    shape = target.shape
    target = target.reshape(-1, 2)
    ab = target.copy()
    if not any(params):
        return ab.reshape(shape), np.isfinite(ab).all(-1).reshape(shape[:-1])
    err = np.linalg.norm(distort(ab, params) - target, axis=-1)
    goal = max(1e-3 * tolerance, 1e-15)  # a step or two past the tolerance: quadratic convergence is cheap
    for _ in range(_NEWTON_STEPS):
        idx = np.flatnonzero(err > goal)
        if idx.size == 0:
            break
        cur, tgt = ab[idx], target[idx]
        res = distort(cur, params) - tgt
        jac = distort_jacobian(cur, params)
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        det = np.where(np.abs(det) < 1e-300, 1e-300, det)
        step = np.stack(
            [
                (jac[:, 1, 1] * res[:, 0] - jac[:, 0, 1] * res[:, 1]) / det,
                (jac[:, 0, 0] * res[:, 1] - jac[:, 1, 0] * res[:, 0]) / det,
            ],
            axis=-1,
        )
        scale = np.ones(idx.size)
        for _ in range(30):
            trial = cur - scale[:, None] * step
            trial_err = np.linalg.norm(distort(trial, params) - tgt, axis=-1)
            worse = ~(trial_err < err[idx])
            if not worse.any():
                break
            scale[worse] *= 0.5
        keep = trial_err < err[idx]
        ab[idx[keep]] = trial[keep]
        err[idx[keep]] = trial_err[keep]
        if not keep.any():
            break  # no step improves anything left: those points do not converge
    ok = (err <= tolerance) & (np.linalg.norm(ab, axis=-1) <= valid_radius(params))
    return ab.reshape(shape), ok.reshape(shape[:-1])


# ------------------------------------------------------------------------------------------ fisheyes


def fisheye_radius(theta: np.ndarray, lens: Lens) -> np.ndarray:
    """Normalized image radius r of rays at angle θ from the optical axis."""
    t = np.asarray(theta, dtype=np.float64)
    if lens.model == "OPENCV_FISHEYE":
        k1, k2, k3, k4 = lens.params
        t2 = t * t
        return t * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
    if lens.model == "FISHEYE_EQUISOLID":
        return 2.0 * np.sin(0.5 * t)
    if lens.model == "FISHEYE_POLYNOMIAL":
        return _invert(
            lambda r: fisheye_angle(r, lens), t, np.asarray((t + lens.params[0]) / -lens.params[1])
        )
    raise ValueError(f"{lens.model} is not a fisheye")


def polynomial_valid_radius(params: tuple[float, ...]) -> float:
    """The image radius (millimetres) up to which FISHEYE_POLYNOMIAL's angle θ(r) = -(k0 + k1 r + ... + k4 r⁴)
    still grows with r (inf when it always does): beyond it the model folds back and is not invertible."""
    _, k1, k2, k3, k4 = params
    # dθ/dr = -(k1 + 2 k2 r + 3 k3 r² + 4 k4 r³)
    coeffs = np.trim_zeros(np.array([4.0 * k4, 3.0 * k3, 2.0 * k2, k1]), "f")
    if coeffs.size == 0 or k1 >= 0:
        return 0.0
    roots = np.roots(coeffs) if coeffs.size > 1 else np.array([])
    positive = [r.real for r in np.atleast_1d(roots) if abs(r.imag) < 1e-12 and r.real > 0]
    return min(positive) if positive else math.inf


def fisheye_angle(r: np.ndarray, lens: Lens) -> np.ndarray:
    """Angle θ from the optical axis of the ray at normalized image radius r (`fisheye_radius` inverted)."""
    rr = np.asarray(r, dtype=np.float64)
    if lens.model == "OPENCV_FISHEYE":
        return _invert(lambda t: fisheye_radius(t, lens), rr, rr.copy())
    if lens.model == "FISHEYE_EQUISOLID":
        return 2.0 * np.arcsin(np.clip(0.5 * rr, -1.0, 1.0))
    if lens.model == "FISHEYE_POLYNOMIAL":
        k0, k1, k2, k3, k4 = lens.params
        return -(k0 + rr * (k1 + rr * (k2 + rr * (k3 + rr * k4))))
    raise ValueError(f"{lens.model} is not a fisheye")


def _invert(f: Any, y: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """x with f(x) = y, by secant-free Newton steps with a numerical derivative (f smooth, monotonic)."""
    x = np.array(x0, dtype=np.float64)
    for _ in range(_NEWTON_STEPS):
        fx = f(x) - y
        if np.all(np.abs(fx) <= 1e-15 * np.maximum(1.0, np.abs(y))):
            break
        h = 1e-7 * np.maximum(1.0, np.abs(x))
        d = (f(x + h) - f(x - h)) / (2.0 * h)
        x = x - fx / np.where(np.abs(d) < 1e-300, 1e-300, d)
    return x


# ------------------------------------------------------------------------------------ project / unproject


def project(points: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (..., 2) of camera-frame points (..., 3) and whether each has an image: in front of the camera
    and inside the model's valid radius (OPENCV), or within the fisheye's field of view."""
    p = np.asarray(points, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], -p[..., 2]  # z: distance in front of the camera
    lens = camera.lens
    if lens.is_fisheye:
        rho = np.hypot(x, y)
        theta = np.arctan2(rho, z)
        r = fisheye_radius(theta, lens)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos_psi = np.where(rho > 0, x / rho, 1.0)
            sin_psi = np.where(rho > 0, -y / rho, 0.0)
        ab = np.stack([r * cos_psi, r * sin_psi], axis=-1)
        assert lens.fov is not None
        valid = (theta <= 0.5 * lens.fov + 1e-12) & np.isfinite(ab).all(-1)
        if lens.model == "FISHEYE_POLYNOMIAL":  # the one radius on the model's increasing part, reproducing θ
            with np.errstate(invalid="ignore"):
                valid &= (r >= 0) & (r <= polynomial_valid_radius(lens.params))
                valid &= np.abs(fisheye_angle(r, lens) - theta) <= 1e-12
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            ab0 = np.stack([x / z, -y / z], axis=-1)
        ab = distort(ab0, lens.params)
        valid = (z > 0) & (np.linalg.norm(ab0, axis=-1) <= valid_radius(lens.params))
    uv = np.stack([camera.fl_x * ab[..., 0] + camera.cx, camera.fl_y * ab[..., 1] + camera.cy], axis=-1)
    return uv, valid & np.isfinite(uv).all(-1)


def unproject(uv: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame rays (..., 3) through pixels (..., 2), and whether each pixel has one.

    OPENCV rays have z = -1 (a planar depth scales them to the surface point); fisheye rays have unit
    length (a radial depth does). OPENCV undistorts to UNDISTORT_TOLERANCE_PX."""
    q = np.asarray(uv, dtype=np.float64)
    ab_d = np.stack([(q[..., 0] - camera.cx) / camera.fl_x, (q[..., 1] - camera.cy) / camera.fl_y], axis=-1)
    lens = camera.lens
    if lens.is_fisheye:
        r = np.linalg.norm(ab_d, axis=-1)
        theta = fisheye_angle(r, lens)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos_psi = np.where(r > 0, ab_d[..., 0] / r, 1.0)
            sin_psi = np.where(r > 0, ab_d[..., 1] / r, 0.0)
        s = np.sin(theta)
        rays = np.stack([s * cos_psi, -s * sin_psi, -np.cos(theta)], axis=-1)
        assert lens.fov is not None
        valid = (theta >= 0) & (theta <= 0.5 * lens.fov + 1e-12)
        if lens.model == "FISHEYE_EQUISOLID":
            valid &= r <= 2.0
        if lens.model == "FISHEYE_POLYNOMIAL":  # beyond the increasing part a ray is seen at two radii
            valid &= r <= polynomial_valid_radius(lens.params)
        back = fisheye_radius(theta, lens)  # the radius is reproduced (monotonic part of the model)
        valid &= np.abs(back - r) * max(camera.fl_x, camera.fl_y) <= 1e-6
        return rays, valid & np.isfinite(rays).all(-1)
    tolerance = UNDISTORT_TOLERANCE_PX / max(abs(camera.fl_x), abs(camera.fl_y))
    ab, ok = undistort(ab_d, lens.params, tolerance)
    rays = np.stack([ab[..., 0], -ab[..., 1], -np.ones(ab.shape[:-1])], axis=-1)
    return rays, ok


def pixel_rays(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 3) rays of every pixel centre and (h, w) whether each has one (see `unproject`)."""
    return unproject(camera.pixel_centres(), camera)


def points_from_depth(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """(h, w, 3) camera-frame points of a depth map in this lens's convention (planar z for OPENCV, the
    distance along the ray for fisheyes); NaN where the pixel has no ray or the depth is not finite."""
    rays, ok = pixel_rays(camera)
    d = np.asarray(depth, dtype=np.float64)
    pts = rays * d[..., None]
    pts[~(ok & np.isfinite(d))] = np.nan
    return pts


def equisolid_as_kannala_brandt(fov: float) -> tuple[tuple[float, float, float, float], float]:
    """OPENCV_FISHEYE coefficients k1..k4 that approximate FISHEYE_EQUISOLID (2 sin(θ/2) = θ - θ³/24 + ...,
    its Taylor series to θ⁹), and the largest radius error of the approximation within fov / 2, in units of
    the focal length (multiply by fl_x for pixels). Not exact: the series' next term remains."""
    ks = (-1.0 / 24.0, 1.0 / 1920.0, -1.0 / 322560.0, 1.0 / 92897280.0)
    theta = np.linspace(0.0, 0.5 * fov, 2001)
    approx = fisheye_radius(theta, Lens("OPENCV_FISHEYE", ks, fov))
    return ks, float(np.abs(approx - 2.0 * np.sin(0.5 * theta)).max())
