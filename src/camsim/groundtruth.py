"""Turn Cycles' render passes into ground truth in camsim's conventions (see transforms.CONVENTIONS).

Pure functions of arrays and camera states; the writer at the bottom is the only I/O. Each pass
function documents its shape, dtype, units and frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim import colorize
from camsim.fileio import read_exr_parts, write_exr, write_image

BACKGROUND_DEPTH = 1.0e9
"""Cycles writes 1e10 where a ray hits nothing; anything beyond this is background."""

# kind -> (folder, file prefix, extension)
LAYOUT: dict[str, tuple[str, str, str]] = {
    "frames": ("frames", "frame", ""),
    "depths": ("depths", "depth", ".exr"),
    "normals": ("normals", "normal", ".exr"),
    "flows": ("flows", "flow", ".exr"),
    "segmentations": ("segmentations", "segmentation", ".exr"),
    "linear": ("linear", "linear", ".exr"),
}
JSON_KEYS = {
    "frames": "file_path",
    "depths": "depth_file_path",
    "normals": "normal_file_path",
    "flows": "flow_file_path",
    "segmentations": "segmentation_file_path",
    "linear": "linear_file_path",
}
DEBUG_KINDS = ("depths", "normals", "flows", "segmentations")


def relpath(kind: str, frame: int, frame_ext: str = ".png") -> str:
    """Path of one output file relative to the sequence folder, e.g. depths/depth_000012.exr."""
    folder, prefix, ext = LAYOUT[kind]
    return f"{folder}/{prefix}_{frame:06d}{ext or frame_ext}"


def debug_relpath(kind: str, frame: int) -> str:
    return f"debug/{LAYOUT[kind][0]}/{LAYOUT[kind][1]}_{frame:06d}.png"


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
    r = np.asarray(c2w, dtype=np.float64)[:3, :3]
    n = np.asarray(n_world, dtype=np.float64) @ r  # == (R^T n) for row vectors
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    valid = length > 1e-6
    out = np.where(valid, n / np.where(valid, length, 1.0), 0.0)
    return out.astype(np.float32)


def flow_from_vector(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flow, each (H,W,2) float32 pixels, x right, y down.

    Cycles' Vector pass (X, Y, Z, W), in bottom-up pixel coordinates, holds the motion to the
    previous frame in XY and the negated motion to the next frame in ZW.
    """
    v = np.asarray(vector, dtype=np.float32)
    forward = np.stack([-v[..., 2], v[..., 3]], axis=-1)
    backward = np.stack([v[..., 0], -v[..., 1]], axis=-1)
    return forward, backward


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
    w, h = int(cam["w"]), int(cam["h"])
    k0, k1 = _k(cam), _k(other)
    r0 = np.asarray(cam["transform_matrix"], dtype=np.float64)[:3, :3]
    r1 = np.asarray(other["transform_matrix"], dtype=np.float64)[:3, :3]
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
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


def segmentation_from_index(index: np.ndarray) -> np.ndarray:
    """(H,W) uint32 object ids, 0 = background (Cycles' Object Index pass, first sample per pixel)."""
    return np.rint(np.asarray(index, dtype=np.float64)).clip(0, 2**32 - 1).astype(np.uint32)


# ------------------------------------------------------------------------------------------ writer


@dataclass(frozen=True)
class FrameCameras:
    """Camera states (as reported by the worker) for a frame and its neighbours."""

    current: Mapping[str, Any]
    previous: Mapping[str, Any]
    next: Mapping[str, Any]
    metres_per_unit: float = 1.0
    """Blender units to metres (the scene's unit scale): depth is written in metres."""


PASS_ALIASES = {"Object Index": ("Object Index", "IndexOB")}
"""Pass names in the multilayer EXR by Blender version (Blender before 4.x writes IndexOB)."""


def _channel(chans: Mapping[str, np.ndarray], layer: str, pass_name: str, names: str) -> np.ndarray:
    for alias in PASS_ALIASES.get(pass_name, (pass_name,)):
        if f"{layer}.{alias}.{names[0]}" in chans:
            pass_name = alias
            break
    arrays = [chans[f"{layer}.{pass_name}.{c}"] for c in names]
    return arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=-1)


def write_ground_truth(
    exr_path: Path,
    layer: str,
    out_dir: Path,
    frame: int,
    kinds: tuple[str, ...],
    cams: FrameCameras,
    codec: str = "zip",
    debug: bool = True,
) -> None:
    """Read one multilayer render EXR and write each asked-for ground truth (and its debug PNG)."""
    chans = read_exr_parts(exr_path)
    c2w = np.asarray(cams.current["transform_matrix"], dtype=np.float64)
    depth = None
    if f"{layer}.Depth.Z" in chans:
        depth = depth_from_pass(_channel(chans, layer, "Depth", "Z"))
        if cams.metres_per_unit != 1.0:
            depth *= np.float32(cams.metres_per_unit)
    out: dict[str, dict[str, np.ndarray]] = {}
    previews: dict[str, np.ndarray] = {}
    if "depths" in kinds and depth is not None:
        out["depths"] = {"Y": depth}
        previews["depths"] = colorize.depth(depth)
    if "normals" in kinds:
        n = normals_to_camera(_channel(chans, layer, "Normal", "XYZ"), c2w)
        if depth is not None:  # one background mask for every pass: where the depth sample saw sky
            n[~np.isfinite(depth)] = 0.0
        out["normals"] = {"R": n[..., 0], "G": n[..., 1], "B": n[..., 2]}
        previews["normals"] = colorize.normals(n)
    if "flows" in kinds:
        fwd, bwd = flow_from_vector(_channel(chans, layer, "Vector", "XYZW"))
        fwd += principal_point_shift(cams.current, cams.next)
        bwd += principal_point_shift(cams.current, cams.previous)
        if depth is not None:
            sky = ~np.isfinite(depth)
            if sky.any():
                fwd[sky] = background_flow(cams.current, cams.next)[sky]
                bwd[sky] = background_flow(cams.current, cams.previous)[sky]
        out["flows"] = {"R": fwd[..., 0], "G": fwd[..., 1], "B": bwd[..., 0], "A": bwd[..., 1]}
        previews["flows"] = colorize.flow(fwd)
    if "segmentations" in kinds:
        ids = segmentation_from_index(_channel(chans, layer, "Object Index", "X"))
        out["segmentations"] = {"Y": ids}
        previews["segmentations"] = colorize.segmentation(ids)
    if "linear" in kinds:
        rgb = _channel(chans, layer, "Combined", "RGB").astype(np.float32)
        out["linear"] = {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]}
    for kind, channels in out.items():
        write_exr(out_dir / relpath(kind, frame), channels, codec)
    if debug:
        for kind, rgb8 in previews.items():
            write_image(out_dir / debug_relpath(kind, frame), rgb8)
