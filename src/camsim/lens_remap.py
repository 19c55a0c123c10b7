"""Resample a frame rendered through a pinhole window into the distorted frame, and finish fisheye frames.

Distortion (`Remap`): every distorted pixel centre d has an undistorted position p in the window's pinhole
image (lens_render.undistorted_positions). Colours (the RGB frame, linear light) are sampled bilinearly at p;
every other ground truth (depth, normals, segmentation, scene flow, ...) is copied from the one pinhole pixel
whose centre is nearest to p, so depths and ids are never blends; optical flow is recomputed for the distorted
camera: distort(p + f) - d, f the nearest pixel's pinhole flow, p + f taken through the other frame's
distortion. Where the nearest sample saw no surface the flow is exact at d: the ray of d, turned by the camera
rotation, through the other frame's lens (0 for a direction behind the other camera). A flow whose other
position lies beyond the lens model's valid radius (where OpenCV's model folds back) is 0.

Fisheyes (`finish_fisheye`): Cycles renders them directly; the world background's flow (Cycles gives it none)
is the flow of points at infinity through the fisheye, and pixels outside the image circle (no ray) hold no
surface: depth +inf, id 0, normal 0, flow 0.

Pure numpy on arrays; `FrameLens` carries what a frame needs (built per frame by render.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from camsim.errors import SceneError
from camsim.lens_render import (
    RenderWindow,
    camera,
    lens_settings,
    polynomial_flow_problem,
    polynomial_frame_problem,
    render_window,
    undistorted_positions,
)
from camsim.lenses import Camera, Lens, distort_components, project, unproject, valid_radius
from camsim.passes import DEPTH, FLOW, FRAME, LINEAR, Pass

if TYPE_CHECKING:
    from camsim.config import RenderSettings

BILINEAR = (FRAME.name, LINEAR.name)
"""Kinds resampled bilinearly (colours); every other kind but flow takes the nearest pinhole sample."""


@dataclass(frozen=True)
class Remap:
    """Where each pixel of a distorted frame samples its window's pinhole image."""

    window: RenderWindow
    position: np.ndarray
    """(h, w, 2) undistorted position of each distorted pixel centre, in window pixels (x right, y down)."""
    nearest: np.ndarray
    """(h, w) flat index of the window pixel whose centre is nearest to `position`."""
    corners: np.ndarray
    """(h, w, 4) flat indices of the bilinear sample's four window pixels."""
    weights: np.ndarray
    """(h, w, 4) their bilinear weights (float64, summing to 1)."""
    rays: np.ndarray
    """(h, w, 3) camera-frame rays (z = -1) of the distorted pixel centres."""


def remap_plan(cam: Camera, window: RenderWindow) -> Remap:
    """The remap of a distorted camera (its lens OPENCV) from `window`."""
    p = undistorted_positions(cam) - np.array([window.left, window.top], dtype=np.float64)
    col = np.floor(p[..., 0]).astype(np.int64)
    row = np.floor(p[..., 1]).astype(np.int64)
    if col.min() < 0 or row.min() < 0 or col.max() >= window.width or row.max() >= window.height:
        raise ValueError("the render window does not hold every distorted pixel's nearest sample")
    nearest = row * window.width + col
    x0, y0 = np.floor(p[..., 0] - 0.5), np.floor(p[..., 1] - 0.5)
    fx, fy = p[..., 0] - 0.5 - x0, p[..., 1] - 0.5 - y0
    x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)
    if x0i.min() < 0 or y0i.min() < 0 or x0i.max() + 1 >= window.width or y0i.max() + 1 >= window.height:
        raise ValueError("the render window does not hold every distorted pixel's bilinear sample")
    corners = np.stack(
        [y0i * window.width + x0i, y0i * window.width + x0i + 1, (y0i + 1) * window.width + x0i,
         (y0i + 1) * window.width + x0i + 1], -1,
    )  # fmt: skip
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    a = (p[..., 0] + window.left - cam.cx) / cam.fl_x
    b = (p[..., 1] + window.top - cam.cy) / cam.fl_y
    rays = np.stack([a, -b, -np.ones(a.shape)], -1)
    return Remap(window, p, nearest, corners, weights, rays)


def _flat(arr: np.ndarray, remap: Remap) -> np.ndarray:
    a = np.asarray(arr)
    if a.shape[:2] != (remap.window.height, remap.window.width):
        raise ValueError(
            f"an array of shape {a.shape} is not the {remap.window.width}x{remap.window.height} window"
        )
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def remap_nearest(arr: np.ndarray, remap: Remap) -> np.ndarray:
    """The window array's value at the nearest pinhole pixel of every distorted pixel (dtype kept)."""
    return _flat(arr, remap)[remap.nearest]


def remap_bilinear(arr: np.ndarray, remap: Remap) -> np.ndarray:
    """Bilinear samples of a window image at every distorted pixel's undistorted position. Integer images are
    rounded to the nearest code value; float images stay float32."""
    flat = _flat(arr, remap)
    out = None
    for k in range(4):  # one corner at a time: a frame-sized buffer, not four
        w = remap.weights[..., k] if flat.ndim == 1 else remap.weights[..., k, None]
        term = flat[remap.corners[..., k]] * w
        out = term if out is None else out + term
    assert out is not None
    dtype = np.asarray(arr).dtype
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------- flow


@dataclass(frozen=True)
class FrameLens:
    """What a frame's conversion needs of its lens: the distorted (or fisheye) cameras of the frame and its
    neighbours, their camera-to-world matrices, and the remap from the pinhole window (None: a fisheye)."""

    current: Camera
    previous: Camera
    next: Camera
    current_pose: np.ndarray
    previous_pose: np.ndarray
    next_pose: np.ndarray
    remap: Remap | None = None

    @classmethod
    def of(
        cls,
        lens: Lens,
        current: Mapping[str, Any],
        previous: Mapping[str, Any],
        nxt: Mapping[str, Any],
        remap: Remap | None = None,
    ) -> FrameLens:
        """From the worker's camera states (fl_x, fl_y, cx, cy, w, h, transform_matrix) of the frame and its
        neighbours."""

        def pose(s: Mapping[str, Any]) -> np.ndarray:
            return np.asarray(s["transform_matrix"], dtype=np.float64)

        return cls(
            camera(current, lens), camera(previous, lens), camera(nxt, lens),
            pose(current), pose(previous), pose(nxt), remap,
        )  # fmt: skip


def ray_flow(
    rays: np.ndarray, uv: np.ndarray, c2w: np.ndarray, other: Camera, other_c2w: np.ndarray
) -> np.ndarray:
    """(..., 2) flow of points at infinity along camera-frame `rays` (seen at pixels `uv`) to `other` (the
    camera rotation and the lenses only); 0 where the direction has no image in `other`."""
    r = np.asarray(rays, dtype=np.float64) @ (np.asarray(other_c2w)[:3, :3].T @ np.asarray(c2w)[:3, :3]).T
    uv_other, ok = project(r, other)
    flow = uv_other - uv
    flow[~ok] = 0.0
    return flow


def _distorted_flow(
    pinhole_pos: np.ndarray, flow: np.ndarray, centres: np.ndarray, other: Camera
) -> np.ndarray:
    """distort(p + f) - d: the distorted flow of pixels at distorted centres d whose pinhole position p (in the
    frame's undistorted pixels) moves by pinhole flow f into `other`'s undistorted pixels (0 beyond the
    lens's valid radius)."""
    a = (pinhole_pos[..., 0] + flow[..., 0] - other.cx) / other.fl_x
    b = (pinhole_pos[..., 1] + flow[..., 1] - other.cy) / other.fl_y
    ad, bd = distort_components(a, b, other.lens.params)
    out = np.empty((*a.shape, 2))
    out[..., 0] = other.fl_x * ad + other.cx - centres[..., 0]
    out[..., 1] = other.fl_y * bd + other.cy - centres[..., 1]
    out[~(a * a + b * b <= valid_radius(other.lens.params) ** 2)] = 0.0
    return out


def remap_flow(flow: np.ndarray, depth: np.ndarray, lens: FrameLens) -> np.ndarray:
    """(h, w, 4) float32 forward and backward flow of the distorted frame from the window's pinhole flow
    (Hw, Ww, 4) and depth (Hw, Ww; +inf where no surface): see the module docstring."""
    remap = lens.remap
    assert remap is not None
    cam = lens.current
    centres = cam.pixel_centres()
    pinhole = remap.position + np.array([remap.window.left, remap.window.top], dtype=np.float64)
    sampled = remap_nearest(flow, remap).astype(np.float64)
    sky = ~np.isfinite(remap_nearest(depth, remap))
    rays = remap.rays[sky] if sky.any() else None  # the distorted pixels' own rays
    out = []
    for f, other, other_pose in (
        (sampled[..., :2], lens.next, lens.next_pose),
        (sampled[..., 2:], lens.previous, lens.previous_pose),
    ):
        got = _distorted_flow(pinhole, f, centres, other)
        if rays is not None:
            got[sky] = ray_flow(rays, centres[sky], lens.current_pose, other, other_pose)
        out.append(got)
    return np.concatenate(out, axis=-1).astype(np.float32)


def remap_frame(
    arrays: Mapping[Pass, np.ndarray], depth: np.ndarray | None, lens: FrameLens
) -> dict[Pass, np.ndarray]:
    """Every converted window array resampled into the distorted frame: colours bilinearly, flow recomputed,
    everything else from the nearest pinhole sample. `depth`: the window's depth (+inf: no surface)."""
    remap = lens.remap
    assert remap is not None
    out: dict[Pass, np.ndarray] = {}
    for kind, arr in arrays.items():
        if kind.name in BILINEAR:
            out[kind] = remap_bilinear(arr, remap)
        elif kind is FLOW:
            if depth is None:
                raise ValueError("distorted flow needs the window's depth (its background mask)")
            out[kind] = remap_flow(arr, depth, lens)
        else:
            out[kind] = remap_nearest(arr, remap)
    return out


def finish_fisheye(
    arrays: Mapping[Pass, np.ndarray], depth: np.ndarray | None, lens: FrameLens
) -> dict[Pass, np.ndarray]:
    """A fisheye frame as Cycles rendered it, with the world background's flow through the fisheye and nothing
    outside the image circle (see the module docstring)."""
    cam = lens.current
    rays, inside = unproject(cam.pixel_centres(), cam)
    out = dict(arrays)
    if FLOW in out:
        flow = np.array(out[FLOW], dtype=np.float32)
        sky = ~np.isfinite(depth) if depth is not None else np.zeros(inside.shape, bool)
        sky &= inside
        if sky.any():
            uv = cam.pixel_centres()[sky]
            flow[..., :2][sky] = ray_flow(rays[sky], uv, lens.current_pose, lens.next, lens.next_pose)
            flow[..., 2:][sky] = ray_flow(rays[sky], uv, lens.current_pose, lens.previous, lens.previous_pose)
        flow[~inside] = 0.0
        out[FLOW] = flow
    for kind in list(out):
        if kind is FLOW:
            continue
        arr = np.array(out[kind])
        if kind is DEPTH:
            arr[~inside] = np.inf
        elif kind.name not in BILINEAR:
            arr[~inside] = 0
        out[kind] = arr
    return out


def finish_lens(
    arrays: Mapping[Pass, np.ndarray], depth: np.ndarray | None, lens: FrameLens
) -> dict[Pass, np.ndarray]:
    """The converted passes of a frame in its lens: resampled from the pinhole window (distortion) or finished
    (fisheye). `depth`: the rendered depth in metres (+inf: no surface), before any resampling."""
    return remap_frame(arrays, depth, lens) if lens.remap is not None else finish_fisheye(arrays, depth, lens)


# ---------------------------------------------------------------------------------------- a sequence


def polynomial_problems(lens: Lens, cams: Mapping[int, Mapping[str, Any]], flows: bool) -> None:
    """SceneError when a polynomial fisheye folds back within a frame of `cams`, or (with flows) when Cycles'
    motion vectors cannot invert it exactly (lens_render.polynomial_frame_problem, polynomial_flow_problem)."""
    keys = ("fl_x", "fl_y", "cx", "cy", "w", "h")
    for key in sorted({tuple(float(s[k]) for k in keys) for s in cams.values()}):
        cam = Camera(*key[:4], int(key[4]), int(key[5]), lens)
        problem = polynomial_frame_problem(cam) or (polynomial_flow_problem(cam) if flows else None)
        if problem:
            raise SceneError(problem)


@dataclass
class SequenceLens:
    """A sequence's lens (not the pinhole): the window Cycles renders for a distortion and the remap of each
    frame's camera (cached by intrinsics), or a fisheye Cycles renders directly."""

    lens: Lens
    window: RenderWindow | None
    _plans: dict[tuple[float, ...], Remap] = field(default_factory=dict)

    @classmethod
    def plan(
        cls, settings: RenderSettings, cams: Mapping[int, Mapping[str, Any]], frames: list[int]
    ) -> SequenceLens | None:
        """The lens of a render of `frames` with `settings` (camera states of frames-1..frames+1 in `cams`);
        None for the pinhole. SceneError when the lens cannot be rendered exactly: a distortion that folds
        back in the frame or needs too large a window, a fisheye whose lens changes over a sequence with flow
        (Cycles' motion vectors of panoramic cameras use the frame's own lens for the neighbours)."""
        lens = lens_settings(settings)
        if lens.is_pinhole:
            return None
        if lens.is_fisheye:
            keys = ("fl_x", "fl_y", "cx", "cy", "w", "h")
            first = cams[frames[0]]
            if settings.flows and any(any(abs(s[k] - first[k]) > 1e-9 for k in keys) for s in cams.values()):
                raise SceneError(
                    "a fisheye's flow needs a lens that does not change over the sequence (and its neighbour "
                    "frames): the camera's shift, sensor or resolution is animated; pass --render-config.no-flows"
                )
            if lens.model == "FISHEYE_POLYNOMIAL":
                polynomial_problems(lens, cams, settings.flows)
            return cls(lens, None)
        return cls(lens, render_window([cams[f] for f in frames], lens))

    @property
    def window_list(self) -> list[int] | None:
        """What the worker's render_frame takes: [left, top, width, height], or None (a fisheye)."""
        return None if self.window is None else self.window.as_list()

    def states(self, cams: Mapping[int, Mapping[str, Any]], f: int) -> tuple[Mapping[str, Any], ...]:
        """The camera states of frame f and its neighbours as Cycles renders them (the window's, for a
        distortion), in FrameCameras order: current, previous, next."""
        picked = (cams[f], cams[f - 1], cams[f + 1])
        return picked if self.window is None else tuple(self.window.state(s) for s in picked)

    def frame(self, cams: Mapping[int, Mapping[str, Any]], f: int) -> FrameLens:
        """What frame f's conversion needs (groundtruth.FrameCameras.lens)."""
        remap = None
        if self.window is not None:
            key = tuple(float(cams[f][k]) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h"))
            if key not in self._plans:
                self._plans[key] = remap_plan(camera(cams[f], self.lens), self.window)
            remap = self._plans[key]
        return FrameLens.of(self.lens, cams[f], cams[f - 1], cams[f + 1], remap)
