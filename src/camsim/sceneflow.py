"""Scene flow: the 3-D motion of the surface point seen at each pixel, to the next and from the previous frame.

Pure functions of arrays and matrices. A pixel's point is its centre unprojected with the planar depth (the
camera sample the depth and segmentation come from); it moves with the world motion of the object its id
names, M(g) M(f)⁻¹ for an object whose surface moves only with its object-to-world matrix M (objects.json
`rigid`; a static one: identity), and is NaN on every other id (deforming, instanced) and where the pixel
centre hit no surface. The motion is written in the current frame's camera axes (OpenGL), metres, so that

    X + s, moved into the other frame's camera and projected with its intrinsics, is the pixel + optical flow

with X the camera-frame point (`flow_from_scene_flow` is that sentence). `frame_scene_flow` is the
converter the render uses (groundtruth.CONVERTERS); `object_matrices` reads the rigid objects' matrices out
of the worker's `cameras` reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CHANNELS = ("forward.X", "forward.Y", "forward.Z", "backward.X", "backward.Y", "backward.Z")
"""EXR channels of a scene-flow file, in the order of the array's last axis: the motion to the next frame,
then to the previous frame, each (X, Y, Z) in the current frame's camera axes, metres."""


@dataclass(frozen=True)
class FrameObjects:
    """Object-to-world matrices (4x4, translation in metres) at a frame and its two neighbours, of the objects
    whose surface moves only with their matrix (objects.json `rigid`); no other id has one."""

    current: Mapping[int, np.ndarray]
    previous: Mapping[int, np.ndarray]
    next: Mapping[int, np.ndarray]


def camera_points(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(H,W,3) float64 camera-frame points (OpenGL axes: x right, y up, the camera looks along -z) of the
    pixel centres at planar `depth`; inf where depth is."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    z = np.asarray(depth, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        x = (u - K[0, 2]) / K[0, 0] * z
        y = -(v - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, -z], axis=-1)


def world_motions(
    current: Mapping[int, np.ndarray], other: Mapping[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """World-space motion M_other @ inv(M_current) of every id with a matrix at both frames (an object scaled
    to nothing, whose matrix has no inverse, gets none)."""
    out = {}
    for i in sorted(current.keys() & other.keys()):
        a = np.asarray(current[i], dtype=np.float64)
        if abs(np.linalg.det(a[:3, :3])) < 1e-12:
            continue
        b = np.asarray(other[i], dtype=np.float64)
        out[int(i)] = np.eye(4) if np.array_equal(a, b) else b @ np.linalg.inv(a)  # static: exactly still
    return out


def camera_motion(c2w: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, c): a world motion T (4x4) as the displacement of camera-frame points, s = B X + c, written in the
    camera's axes (camera-to-world `c2w`, rotation R, position p): B = R^T (T_R - I) R, c = R^T ((T_R - I) p + T_t).
    Zero for T = identity, exactly."""
    rot, pos = c2w[:3, :3], c2w[:3, 3]
    d = motion[:3, :3] - np.eye(3)
    return rot.T @ d @ rot, rot.T @ (d @ pos + motion[:3, 3])


def scene_flows(
    depth: np.ndarray,
    ids: np.ndarray,
    c2w: np.ndarray,
    K: np.ndarray,
    motion_sets: Sequence[Mapping[int, np.ndarray]],
) -> np.ndarray:
    """(H,W,3n) float32, for each of the n `motion_sets` ({id: 4x4 world motion T of its object}) the world
    displacement T X_w - X_w of each pixel's point, written in the camera axes of `c2w` (camera-to-world,
    metres); NaN where the depth is not finite or the pixel's id has no motion in that set."""
    c2w = np.asarray(c2w, dtype=np.float64)
    n = len(motion_sets)
    out = np.full((*depth.shape, 3 * n), np.nan, dtype=np.float32)
    flat_ids = np.asarray(ids).reshape(-1)
    z = np.asarray(depth).reshape(-1)
    known = sorted(set().union(*motion_sets))
    candidates = np.flatnonzero(np.isfinite(z) & np.isin(flat_ids, known))
    if candidates.size == 0:
        return out
    order = candidates[np.argsort(flat_ids[candidates], kind="stable")]  # pixels grouped by id
    labels, starts = np.unique(flat_ids[order], return_index=True)
    w = depth.shape[1]
    pts = np.empty((order.size, 3))  # camera_points of those pixels
    pts[:, 2] = -z[order]
    pts[:, 0] = ((order % w) + 0.5 - K[0, 2]) / K[0, 0] * -pts[:, 2]
    pts[:, 1] = ((order // w) + 0.5 - K[1, 2]) / K[1, 1] * pts[:, 2]
    values = np.full((order.size, 3 * n), np.nan, dtype=np.float32)
    bounds = [*starts.tolist(), order.size]
    for k, lab in enumerate(labels.tolist()):
        a, b = bounds[k], bounds[k + 1]
        for j, motions in enumerate(motion_sets):
            if lab in motions:
                rot, shift = camera_motion(c2w, np.asarray(motions[lab], dtype=np.float64))
                values[a:b, 3 * j : 3 * j + 3] = pts[a:b] @ rot.T + shift
    out.reshape(-1, 3 * n)[order] = values
    return out


def scene_flow(
    depth: np.ndarray, ids: np.ndarray, c2w: np.ndarray, K: np.ndarray, motions: Mapping[int, np.ndarray]
) -> np.ndarray:
    """(H,W,3) float32: the world displacement T X_w - X_w of each pixel's point X_w, written in the camera
    axes of `c2w` (camera-to-world, metres), T = motions[id] (4x4 world motion of its object); NaN where the
    depth is not finite or the id has no motion."""
    return scene_flows(depth, ids, c2w, K, [motions])


def frame_scene_flow(
    depth: np.ndarray,
    ids: np.ndarray,
    current: Mapping[str, Any],
    objects: FrameObjects | None,
) -> np.ndarray:
    """(H,W,6) float32 scene flow of a rendered frame (channels CHANNELS): forward to the next frame, then
    backward to the previous one, in the camera axes of `current` (a camera state: `transform_matrix`,
    intrinsics); NaN off the `objects` that have matrices at both frames, and where no surface was hit."""
    c2w = np.asarray(current["transform_matrix"], dtype=np.float64)
    K = np.array([[current["fl_x"], 0.0, current["cx"]], [0.0, current["fl_y"], current["cy"]], [0, 0, 1.0]])
    if objects is None:
        return np.full((*depth.shape, 6), np.nan, dtype=np.float32)
    forward = world_motions(objects.current, objects.next)
    backward = world_motions(objects.current, objects.previous)
    return scene_flows(depth, ids, c2w, K, [forward, backward])


def flow_from_scene_flow(
    depth: np.ndarray,
    flow3d: np.ndarray,
    c2w: np.ndarray,
    K: np.ndarray,
    c2w_other: np.ndarray,
    K_other: np.ndarray,
) -> np.ndarray:
    """(H,W,2) optical flow (px, x right, y down) that scene flow `flow3d` (H,W,3, this frame's camera axes)
    implies: X + s moved into the other camera (camera-to-world `c2w_other`) and projected with `K_other`,
    minus the pixel centre. NaN where the scene flow is; points behind the other camera give NaN too."""
    h, w = depth.shape
    pts = camera_points(depth, K) + np.asarray(flow3d, dtype=np.float64)
    world = pts @ np.asarray(c2w, dtype=np.float64)[:3, :3].T + np.asarray(c2w, dtype=np.float64)[:3, 3]
    w2c = np.linalg.inv(np.asarray(c2w_other, dtype=np.float64))
    pc = world @ w2c[:3, :3].T + w2c[:3, 3]
    z = -pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uu = np.where(z > 1e-9, K_other[0, 0] * pc[..., 0] / z + K_other[0, 2], np.nan)
        vv = np.where(z > 1e-9, -K_other[1, 1] * pc[..., 1] / z + K_other[1, 2], np.nan)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.stack([uu - u, vv - v], axis=-1)


def object_matrices(motion: Mapping[str, Any], scale: float) -> dict[int, dict[int, np.ndarray]]:
    """Per frame, {id: 4x4 object-to-world (translation in metres)} of the rigid objects, from the worker's
    `cameras` reply (`{"static": {id: M}, "moving": {id: [M per frame]}, "frames": [...]}`, Blender units
    times `scale`)."""

    def metres(m: Any) -> np.ndarray:
        out = np.array(m, dtype=np.float64)
        out[:3, 3] *= scale
        return out

    static = {int(i): metres(m) for i, m in motion.get("static", {}).items()}
    moving = {int(i): [metres(m) for m in ms] for i, ms in motion.get("moving", {}).items()}
    return {
        int(f): {**static, **{i: ms[k] for i, ms in moving.items()}} for k, f in enumerate(motion["frames"])
    }


def uncovered_objects(segmentation_objects: Mapping[str, Mapping[str, Any]]) -> list[tuple[int, str]]:
    """(id, name) of the objects whose scene flow is NaN: those the worker does not find rigid (deforming,
    drawn through an instance, or not drawn at the first frame), in id order."""
    return sorted(
        (int(i), str(o.get("name", i))) for i, o in segmentation_objects.items() if not o.get("rigid")
    )


def coverage_warning(segmentation_objects: Mapping[str, Mapping[str, Any]], shown: int = 20) -> str | None:
    """The warning a render with scene flow records when some objects get none (None when every one does)."""
    missing = uncovered_objects(segmentation_objects)
    if not missing:
        return None
    listed = ", ".join(f"{i} '{name}'" for i, name in missing[:shown])
    more = f" and {len(missing) - shown} more" if len(missing) > shown else ""
    return (
        f"scene flow is NaN on {len(missing)} object{'s' if len(missing) > 1 else ''} without a rigid motion of "
        f"their own (deforming, instanced or not drawn; objects.json rigid: false): ids "
        f"{listed}{more}"
    )
