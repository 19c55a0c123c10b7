"""Turn Cycles' render passes into ground truth in camsim's conventions (see transforms.CONVENTIONS).

Pure functions of arrays and camera states; `convert_passes` at the bottom reads Blender's multilayer
EXR of a frame (the only I/O) and converts each asked-for kind (camsim.passes) with its converter. Each
pass function documents its shape, dtype, units and frame. Writing the files is `layout.SequenceLayout`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim.annotations import semantic_map
from camsim.fileio import read_exr_parts
from camsim.lens_remap import FrameLens, finish_lens
from camsim.passes import (
    ALBEDO,
    DEPTH,
    DISPARITY,
    FLOW,
    LINEAR,
    NORMAL,
    SCENE_FLOW,
    SEGMENTATION,
    SEMANTIC,
    Pass,
)
from camsim.sceneflow import FrameObjects, frame_scene_flow

BACKGROUND_DEPTH = 1.0e9
"""Cycles writes 1e10 where a ray hits nothing; anything beyond this is background."""

# ------------------------------------------------------------------------------------ pure passes


def depth_from_pass(z: np.ndarray) -> np.ndarray:
    """(H,W) float32 planar z-depth in scene units, +inf where no surface was hit.

    Cycles' Depth pass is already planar (camera z), taken from the first sample of each pixel.
    """
    d = np.asarray(z, dtype=np.float32).copy()
    d[~(d < BACKGROUND_DEPTH)] = np.inf
    return d


def normals_to_camera(n_world: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """(H,W,3) float32 unit normals in the camera frame (+X right, +Y up, +Z toward the viewer).

    Cycles' Normal pass is in world space and averaged over the pixel's samples; rotate it by the
    inverse camera rotation and renormalise. Pixels with no surface stay 0.
    """
    r = np.asarray(c2w, dtype=np.float32)[:3, :3]
    n = np.asarray(n_world, dtype=np.float32) @ r  # == (R^T n) for row vectors; float32 as the pass is
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    length = x * x  # the length by channel planes (a 3-wide inner axis is slow to broadcast over)
    length += y * y
    length += z * z
    np.sqrt(length, out=length)
    none = ~(length > 1e-6)  # no surface
    length[none] = 1.0
    for c in range(3):
        n[..., c] /= length
    n[none] = 0.0
    return n


def flow_from_vector(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flow, each (H,W,2) float32 pixels, x right, y down.

    Cycles' Vector pass (X, Y, Z, W), in bottom-up pixel coordinates, holds the motion to the
    previous frame in XY and the negated motion to the next frame in ZW.
    """
    v = np.asarray(vector, dtype=np.float32)
    flow = flow_from_channels(v[..., 0], v[..., 1], v[..., 2], v[..., 3])
    return flow[..., :2], flow[..., 2:]


def flow_from_channels(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    w: np.ndarray,
    forward_shift: np.ndarray | None = None,
    backward_shift: np.ndarray | None = None,
) -> np.ndarray:
    """(H,W,4) float32 forward (dx, dy) and backward (dx, dy) flow from the Vector pass's X, Y, Z, W channels
    (`flow_from_vector`), plus a constant (2,) shift of each (`principal_point_shift`), in one output array."""
    out = np.empty((*np.shape(x), 4), np.float32)
    zero = np.zeros(2, np.float32)
    fx, fy = zero if forward_shift is None else np.asarray(forward_shift, np.float32)
    bx, by = zero if backward_shift is None else np.asarray(backward_shift, np.float32)
    np.subtract(fx, z, out=out[..., 0])
    np.add(w, fy, out=out[..., 1])
    np.add(x, bx, out=out[..., 2])
    np.subtract(by, y, out=out[..., 3])
    return out


def principal_point_shift(cam: Mapping[str, Any], other: Mapping[str, Any]) -> np.ndarray:
    """(2,) pixels to add to Cycles' motion vectors from `cam` to `other` when the lens shift is animated.

    Cycles projects a surface point at the neighbouring frame with that frame's focal length (it models
    zoom as a change of field of view) but with the current frame's principal point, so an animated lens
    shift moves every surface by exactly the change of principal point and the Vector pass misses it
    (measured: a static scene under an animated shift_y has zero motion vectors).
    """
    return np.array([other["cx"] - cam["cx"], other["cy"] - cam["cy"]], dtype=np.float32)


def _k(cam: Mapping[str, Any]) -> np.ndarray:
    return np.array([[cam["fl_x"], 0.0, cam["cx"]], [0.0, cam["fl_y"], cam["cy"]], [0.0, 0.0, 1.0]])


def background_flow(cam: Mapping[str, Any], other: Mapping[str, Any]) -> np.ndarray:
    """(H,W,2) flow of points at infinity from `cam` to `other`: only rotation and zoom move them.

    Blender gives the world background no motion vectors; the exact flow there is the homography
    K' R'^T R K^-1 applied to each pixel centre.
    """
    u, v = np.meshgrid(np.arange(int(cam["w"])) + 0.5, np.arange(int(cam["h"])) + 0.5)
    return background_flow_at(cam, other, u, v)


def background_flow_at(
    cam: Mapping[str, Any], other: Mapping[str, Any], u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """`background_flow` at the pixel centres (u, v) only (any shape S): (*S, 2) float32."""
    k0, k1 = _k(cam), _k(other)
    r0 = np.asarray(cam["transform_matrix"], dtype=np.float64)[:3, :3]
    r1 = np.asarray(other["transform_matrix"], dtype=np.float64)[:3, :3]
    # pixel -> camera ray (OpenGL axes: y up, looking down -z)
    rays = np.stack([(u - k0[0, 2]) / k0[0, 0], -(v - k0[1, 2]) / k0[1, 1], -np.ones_like(u)], axis=-1)
    rays1 = rays @ (r1.T @ r0).T
    z = -rays1[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u1 = k1[0, 0] * rays1[..., 0] / z + k1[0, 2]
        v1 = -k1[1, 1] * rays1[..., 1] / z + k1[1, 2]
    flow = np.stack([u1 - u, v1 - v], axis=-1)
    flow[~(z > 1e-9)] = 0.0  # directions behind the other camera have no image there
    return flow.astype(np.float32)


def disparity_from_depth(depth: np.ndarray, fl_x: float, baseline_m: float) -> np.ndarray:
    """(H,W) float32 disparity in pixels of the left camera of a rectified stereo pair: fl_x * baseline / depth
    (planar depth and baseline in metres); 0 where depth is +inf (points at infinity have no disparity).

    Rectified (camsim.rig): same intrinsics, same orientation, the right camera at (baseline, 0, 0) in the
    left one's axes. A surface point at planar depth Z then projects into the right image at
    u - fl_x * baseline / Z, with the same v: exact, as the depth is."""
    d = np.asarray(depth, dtype=np.float64)
    near = np.isfinite(d) & (d > 0)
    out = np.zeros(d.shape, dtype=np.float64)
    out[near] = float(fl_x) * float(baseline_m) / d[near]
    return out.astype(np.float32)


def segmentation_from_index(index: np.ndarray) -> np.ndarray:
    """(H,W) uint32 object ids, 0 = background (Cycles' Object Index pass, first sample per pixel)."""
    ids = np.rint(np.asarray(index, dtype=np.float32))  # exact: Cycles' ids are float32 integers
    return ids.clip(0, 2**32 - 256, out=ids).astype(np.uint32)  # the largest float32 below 2^32


# ------------------------------------------------------------------------------------------ writer


@dataclass(frozen=True)
class FrameCameras:
    """Camera states (as reported by the worker) for a frame and its neighbours."""

    current: Mapping[str, Any]
    previous: Mapping[str, Any]
    next: Mapping[str, Any]
    metres_per_unit: float = 1.0
    """Blender units to metres (the scene's unit scale): depth is written in metres."""
    objects: FrameObjects | None = None
    """The rigid objects' matrices at the three frames (metres), for scene flow; None: every pixel NaN."""
    categories: tuple[int, ...] = ()
    """Category id per segmentation id (index = id, annotations.category_lookup), for semantic maps."""
    lens: FrameLens | None = None
    """A lens other than the pinhole (camsim.lens_remap): with distortion `current`..`next` are the states of the
    pinhole window Cycles rendered and the converted passes are resampled into the distorted frame; a fisheye's
    background flow and image circle are finished. None: the pinhole, as rendered."""


BASELINE_KEY = "stereo_baseline_m"
"""Key of a camera state (FrameCameras.current) holding, for the left camera of a rectified stereo pair, the
frame's baseline in metres (camsim.rig); the disparity pass reads it."""

PASS_ALIASES = {"Object Index": ("Object Index", "IndexOB"), "Diffuse Color": ("Diffuse Color", "DiffCol")}
"""Pass names in the multilayer EXR by Blender version (Blender before 4.x writes IndexOB)."""


def _channel(chans: Mapping[str, np.ndarray], layer: str, kind: Pass) -> np.ndarray:
    """The channels `kind.blender_channels` of its Cycles pass, HxW for one, else HxWxC."""
    pass_name, names = str(kind.blender_pass), kind.blender_channels
    for alias in PASS_ALIASES.get(pass_name, (pass_name,)):
        if f"{layer}.{alias}.{names[0]}" in chans:
            pass_name = alias
            break
    arrays = [chans[f"{layer}.{pass_name}.{c}"] for c in names]
    return arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=-1)


def _depth(chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray) -> np.ndarray:
    return depth


def _normal(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    n = normals_to_camera(_channel(chans, layer, NORMAL), cams.current["transform_matrix"])
    if depth is not None:  # one background mask for every pass: where the depth sample saw sky
        n[~np.isfinite(depth)] = 0.0
    return n


def _flow(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    x, y, z, w = (chans[f"{layer}.{FLOW.blender_pass}.{c}"] for c in FLOW.blender_channels)
    to_next = principal_point_shift(cams.current, cams.next)
    to_previous = principal_point_shift(cams.current, cams.previous)
    out = flow_from_channels(x, y, z, w, to_next, to_previous)  # R, G = forward; B, A = backward
    if depth is not None:
        rows, cols = np.nonzero(~np.isfinite(depth))  # the sky: its exact flow, at those pixels only
        if rows.size:
            u, v = cols + 0.5, rows + 0.5
            out[rows, cols, :2] = background_flow_at(cams.current, cams.next, u, v)
            out[rows, cols, 2:] = background_flow_at(cams.current, cams.previous, u, v)
    return out


def _segmentation(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    return segmentation_from_index(_channel(chans, layer, SEGMENTATION))


def _scene_flow(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    if depth is None:
        raise KeyError(f"{layer}.{DEPTH.blender_pass}.{DEPTH.blender_channels}")  # scene flow unprojects it
    ids = segmentation_from_index(_channel(chans, layer, SEGMENTATION))
    return frame_scene_flow(depth, ids, cams.current, cams.objects)


def _disparity(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    if depth is None:
        raise KeyError(f"{layer}.{DEPTH.blender_pass}.{DEPTH.blender_channels}")  # disparity is made from it
    return disparity_from_depth(depth, cams.current["fl_x"], cams.current[BASELINE_KEY])


def _linear(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    return _channel(chans, layer, LINEAR).astype(np.float32)


def _albedo(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    return _channel(chans, layer, ALBEDO).astype(np.float32)


def _semantic(
    chans: Mapping[str, np.ndarray], layer: str, cams: FrameCameras, depth: np.ndarray | None
) -> np.ndarray:
    return semantic_map(segmentation_from_index(_channel(chans, layer, SEMANTIC)), cams.categories)


CONVERTERS: dict[str, Callable[[Mapping[str, np.ndarray], str, FrameCameras, Any], np.ndarray]] = {
    DEPTH.name: _depth,
    NORMAL.name: _normal,
    FLOW.name: _flow,
    SEGMENTATION.name: _segmentation,
    SEMANTIC.name: _semantic,
    SCENE_FLOW.name: _scene_flow,
    DISPARITY.name: _disparity,
    LINEAR.name: _linear,
    ALBEDO.name: _albedo,
}
"""Per rendered kind (passes.RENDERED), its conversion from Cycles' passes (read with the record's
`blender_pass` and `blender_channels`) into camsim's conventions: f(channels, layer, cameras, depth)."""


def convert_passes(
    exr_path: Path, layer: str, kinds: tuple[Pass, ...], cams: FrameCameras
) -> dict[Pass, np.ndarray]:
    """Read one multilayer render EXR and convert each asked-for kind into the array its file holds.

    Depth (in metres) comes first: normals and flow take their background mask from it. A render without
    a Depth pass gets no depth file. Raises KeyError naming a channel the EXR lacks.
    """
    chans = read_exr_parts(exr_path)
    depth = None
    if f"{layer}.{DEPTH.blender_pass}.{DEPTH.blender_channels}" in chans:
        depth = depth_from_pass(_channel(chans, layer, DEPTH))
        if cams.metres_per_unit != 1.0:
            depth *= np.float32(cams.metres_per_unit)
    out: dict[Pass, np.ndarray] = {}
    for kind in kinds:
        if kind is DEPTH and depth is None:
            continue
        out[kind] = CONVERTERS[kind.name](chans, layer, cams, depth)
    return out if cams.lens is None else finish_lens(out, depth, cams.lens)
