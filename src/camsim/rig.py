"""Multi-camera rigs (--render-config.cameras): the cameras' extrinsics, stereo pairs and rig.json (pure).

A rig's render writes one ordinary sequence per camera into SEQUENCE/CAMERA/ (the same frames, numbers and
times) and SEQUENCE/rig.json last. The extrinsics are camera-to-reference matrices (reference = the first
camera), in the OpenGL camera axes of `transform_matrix`, translations in metres: x_reference = M x_camera.

A stereo pair is two cameras of the rig with one common parent object (and no other rig camera on it). It is
rectified when, at every frame, the two have the same intrinsics and resolution, the same orientation, and
the right camera lies on the left one's +x axis, within the tolerances below; then the left camera's folder
gets disparity (camsim.groundtruth.disparity_from_depth) and the pair's per-frame baseline is put on the
left camera's states (groundtruth.BASELINE_KEY). Tolerances are what Blender's float32 object matrices
resolve: a pair inside them has epipolar lines within fl_x * (ROTATION_TOL + offset / depth) pixels of the
rows, well under 0.01 px for any real camera.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim.resume import OUTPUT_FILES, OUTPUT_FOLDERS, RIG_FILE

RIG_FORMAT = "camsim-rig/1"

INTRINSICS_TOL = 1e-6
"""Pixels: fl_x, fl_y, cx, cy of a rectified pair's cameras agree to this (they come from the same lens data)."""
ROTATION_TOL = 2e-6
"""Radians: the angle between a rectified pair's orientations (float32 rotations agree to about 5e-7)."""
BASELINE_TOL = 1e-6
"""Of the baseline's length: how far off the left camera's x axis (y and z) the right camera may be, plus
POSITION_TOL."""
POSITION_TOL = 2.0**-21
"""Of the cameras' distance from the world origin (at least 1 m): 4 float32 units in the last place of a
position, what Blender's matrices resolve there."""
RIGID_TOL = 1e-6
"""A rig is rigid when every camera-to-reference matrix stays within this (rotation entries; translations
relative to the baseline, plus POSITION_TOL) of the first frame's over the sequence."""


def folder_problem(name: str) -> str | None:
    """Why camera `name` cannot name its folder in a rig's sequence folder, or None."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        return "a camera's folder is its name: it must be a plain file name (no /, \\, empty, . or ..)"
    if name.startswith("."):
        return "a camera's folder is its name: names starting with '.' are hidden and temporary files"
    if name in OUTPUT_FILES or name in OUTPUT_FOLDERS:
        return f"{name} is a file or folder of camsim's own in a sequence folder"
    return None


def check_names(names: Sequence[str]) -> str | None:
    """Why these cameras cannot each have a folder (a bad name, or two names one case-insensitive disk mixes)."""
    for name in names:
        why = folder_problem(name)
        if why:
            return f"camera {name!r}: {why}"
    lower = [n.lower() for n in names]
    clash = sorted({n for n in names if lower.count(n.lower()) > 1})
    return f"cameras {', '.join(clash)} differ only in case (one folder on some disks)" if clash else None


# ------------------------------------------------------------------------------------------- geometry


def relative_pose(reference: Any, camera: Any) -> np.ndarray:
    """4x4 camera-to-reference from two camera-to-world matrices (OpenGL camera axes)."""
    return np.linalg.inv(np.asarray(reference, dtype=np.float64)) @ np.asarray(camera, dtype=np.float64)


def rotation_angle(r: np.ndarray) -> float:
    """Radians of the rotation `r` (3x3), accurate for small angles too."""
    r = np.asarray(r, dtype=np.float64)
    s = np.linalg.norm([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    c = (np.trace(r) - 1.0) / 2.0
    return float(math.atan2(s, c))


def _position_tol(*states: Mapping[str, Any]) -> float:
    far = max([1.0, *(float(np.linalg.norm(np.asarray(s["transform_matrix"])[:3, 3])) for s in states)])
    return POSITION_TOL * far


def rectification_problem(left: Mapping[str, Any], right: Mapping[str, Any]) -> str | None:
    """Why two camera states (intrinsics, camera-to-world in metres) are not a rectified stereo pair with
    `right` on `left`'s +x axis, or None."""
    if (left["w"], left["h"]) != (right["w"], right["h"]):
        return f"resolutions differ ({left['w']}x{left['h']}, {right['w']}x{right['h']})"
    for k in ("fl_x", "fl_y", "cx", "cy"):
        if abs(float(left[k]) - float(right[k])) > INTRINSICS_TOL:
            return f"intrinsics differ ({k} {float(left[k]):.6f} and {float(right[k]):.6f} px)"
    rel = relative_pose(left["transform_matrix"], right["transform_matrix"])
    angle = rotation_angle(rel[:3, :3])
    if angle > ROTATION_TOL:
        return f"orientations differ by {math.degrees(angle):.4g} degrees"
    t = rel[:3, 3]
    off = BASELINE_TOL * float(np.linalg.norm(t)) + _position_tol(left, right)
    if t[0] <= off or abs(t[1]) > off or abs(t[2]) > off:
        return f"the baseline ({t[0]:.6g}, {t[1]:.6g}, {t[2]:.6g}) m (left camera's axes) is not along x"
    return None


# ---------------------------------------------------------------------------------------------- rig


@dataclass(frozen=True)
class CameraView:
    """One rig camera's part of the render: its name (and folder), its states of frames start-1..end+1
    (camera-to-world in metres; the left camera of a rectified pair carries groundtruth.BASELINE_KEY) and the
    rigid objects' motion (render.sequence_cameras)."""

    name: str
    cams: dict[int, dict[str, Any]]
    motion: dict[str, Any]
    stereo: bool = False
    """The left camera of a rectified stereo pair: its folder gets disparity."""


@dataclass(frozen=True)
class StereoPair:
    left: str
    right: str
    parent: str
    baselines: dict[int, float]
    """Per frame, metres: the right camera's x in the left camera's axes."""
    problem: str | None
    """Why the pair is not rectified, None when it is."""


def _pair_of(
    parent: str, a: str, b: str, views: Mapping[str, Mapping[int, Any]], frames: list[int]
) -> StereoPair:
    first = frames[0]
    x = relative_pose(views[a][first]["transform_matrix"], views[b][first]["transform_matrix"])[0, 3]
    left, right = (a, b) if x >= 0 else (b, a)
    baselines, problem = {}, None
    for f in frames:
        rel = relative_pose(views[left][f]["transform_matrix"], views[right][f]["transform_matrix"])
        baselines[f] = float(rel[0, 3])
        why = rectification_problem(views[left][f], views[right][f])
        if why and problem is None:
            problem = why if len(frames) == 1 else f"{why} at frame {f}"
    return StereoPair(left, right, parent, baselines, problem)


def stereo_pairs(
    rig: Sequence[Mapping[str, Any]], views: Mapping[str, Mapping[int, Any]], frames: list[int]
) -> tuple[list[StereoPair], list[str]]:
    """The stereo pairs of a rig (`rig`: the cameras' {name, parent} in render order; `views`: each camera's
    states per frame): every parent holding exactly two of the rig's cameras. Also what to warn of: parents
    with more than two (no pair is made of them)."""
    children: dict[str, list[str]] = {}
    for cam in rig:
        if cam.get("parent"):
            children.setdefault(str(cam["parent"]), []).append(str(cam["name"]))
    pairs, notes = [], []
    for parent, names in sorted(children.items()):
        if len(names) == 2:
            pairs.append(_pair_of(parent, *sorted(names), views, frames))
        elif len(names) > 2:
            notes.append(
                f"cameras {', '.join(sorted(names))} share the parent {parent}: a stereo pair is two cameras on "
                "one parent, so none of them is paired (no disparity)"
            )
    return pairs, notes


def _matrix(m: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in m]


def rig_record(
    rig: Sequence[Mapping[str, Any]],
    views: Mapping[str, Mapping[int, Any]],
    frames: list[int],
    pairs: Sequence[StereoPair],
    notes: Sequence[str],
    record: Mapping[str, Any],
    disparities: bool,
) -> dict[str, Any]:
    """rig.json (pure): the cameras in render order with their camera-to-reference extrinsics (per frame too
    when the rig is not rigid), the stereo pairs, and the render record (scene file, frames, settings hash).
    `disparities`: the render asked for disparity (--render-config.disparities)."""
    names = [str(c["name"]) for c in rig]
    ref = names[0]
    rel = {n: [relative_pose(views[ref][f]["transform_matrix"], views[n][f]["transform_matrix"]) for f in frames]
           for n in names}  # fmt: skip
    rigid_each = {}
    for n in names:
        m0 = rel[n][0]
        tol = RIGID_TOL * max(1.0, float(np.linalg.norm(m0[:3, 3]))) + _position_tol(
            *(views[k][f] for k in (ref, n) for f in frames)
        )
        rigid_each[n] = all(
            np.abs(m[:3, :3] - m0[:3, :3]).max() <= RIGID_TOL and np.abs(m[:3, 3] - m0[:3, 3]).max() <= tol
            for m in rel[n]
        )
    rigid = all(rigid_each.values())
    warnings = list(notes)
    if not rigid:
        moving = [n for n in names if not rigid_each[n]]
        warnings.append(
            f"the rig is not rigid: {', '.join(moving)} move relative to {ref} (camera_to_reference_per_frame)"
        )
    cameras = []
    for c in rig:
        n = str(c["name"])
        entry: dict[str, Any] = {"name": n, "folder": n, "parent": c.get("parent"),
                                 "camera_to_reference": _matrix(rel[n][0])}  # fmt: skip
        if not rigid:
            entry["camera_to_reference_per_frame"] = [_matrix(m) for m in rel[n]]
        cameras.append(entry)
    stereo = []
    for p in pairs:
        entry = {"left": p.left, "right": p.right, "parent": p.parent, "baseline_m": p.baselines[frames[0]],
                 "rectified": p.problem is None, "reason": p.problem,
                 "disparity": p.problem is None and disparities}  # fmt: skip
        if not rigid:
            entry["baseline_m_per_frame"] = [p.baselines[f] for f in frames]
        if p.problem is not None:
            warnings.append(
                f"stereo pair {p.left}/{p.right} is not rectified: {p.problem}; no disparity written"
            )
        stereo.append(entry)
    return {
        "format": RIG_FORMAT,
        "reference": ref,
        "cameras": cameras,
        "frame_numbers": list(frames),
        "rigid": rigid,
        "stereo": stereo,
        "tolerances": {
            "intrinsics_px": INTRINSICS_TOL,
            "rotation_rad": ROTATION_TOL,
            "baseline_off_axis": BASELINE_TOL,
            "position": POSITION_TOL,
            "rigid": RIGID_TOL,
        },
        "warnings": warnings,
        **{k: record[k] for k in ("scene_file", "frame_start", "frame_end", "settings_hash")},
    }


def read_rig(folder: str | Path) -> dict[str, Any] | None:
    """The rig.json in `folder` when it is one (an object with the rig format and a list of cameras), else None."""
    try:
        data = json.loads((Path(folder) / RIG_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != RIG_FORMAT
        or not isinstance(data.get("cameras"), list)
    ):
        return None
    if not all(isinstance(c, dict) and isinstance(c.get("folder"), str) and not folder_problem(c["folder"])
               for c in data["cameras"]):  # fmt: skip
        return None
    return data


def frame_count(folder: str | Path) -> int:
    """Frames of a complete rig in `folder`: its cameras' together, from their transforms.json (0 unreadable)."""
    total = 0
    for sub, _ in camera_folders(folder):
        try:
            frames = json.loads((sub / "transforms.json").read_bytes())["frames"]
        except (OSError, ValueError, RecursionError, KeyError, TypeError):
            continue
        total += len(frames) if isinstance(frames, list) else 0
    return total


def camera_folders(folder: str | Path) -> list[tuple[Path, str]]:
    """(folder, name) of each camera of the rig in `folder` (from its rig.json), in render order; empty when
    `folder` holds no complete rig."""
    rig = read_rig(folder)
    return [(Path(folder) / c["folder"], str(c["name"])) for c in rig["cameras"]] if rig else []
