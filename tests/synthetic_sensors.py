"""Write small analytic sequence folders (constant fields, ramps, known trajectories).

Used by tests and benchmarks, and handy for checking a sensor model on a known input without Blender.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from camsim import transforms
from camsim.emulate.light import linear_to_srgb
from camsim.fileio import write_exr, write_image


def write_sequence(
    folder: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    times: np.ndarray,
    poses: np.ndarray | None = None,
    linear: bool = True,
    png: bool = True,
    png_bits: int = 8,
) -> Path:
    """Write linear HxWx3 frames as a rendered sequence (PNG and/or linear EXR) with transforms.json.

    `poses` are camera-to-world 4x4 matrices (identity when omitted); `times` in seconds.
    """
    root = Path(folder)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    if linear:
        (root / "linear").mkdir(exist_ok=True)
    metas = []
    h = w = 0
    for i, lin in enumerate(frames):
        lin = np.asarray(lin, dtype=np.float32)
        h, w = lin.shape[:2]
        fr = {
            "transform_matrix": (np.eye(4) if poses is None else np.asarray(poses[i])).tolist(),
            "time": float(times[i]),
            "frame_number": i,
        }
        if png:
            scale = 65535 if png_bits == 16 else 255
            enc = np.rint(linear_to_srgb(lin) * scale).astype(np.uint16 if png_bits == 16 else np.uint8)
            fr["file_path"] = f"frames/frame_{i:06d}.png"
            write_image(root / fr["file_path"], enc)
        if linear:
            fr["linear_file_path"] = f"linear/linear_{i:06d}.exr"
            write_exr(root / fr["linear_file_path"], {c: lin[..., j] for j, c in enumerate("RGB")})
        metas.append(fr)
    dt = np.diff(times)
    meta = {
        "format": transforms.FORMAT_VERSION,
        "camera_model": "OPENCV",
        "fl_x": float(w),
        "fl_y": float(w),
        "cx": w / 2,
        "cy": h / 2,
        "w": int(w),
        "h": int(h),
        "fps": float(1.0 / np.mean(dt)) if len(dt) else 1.0,
        "conventions": transforms.CONVENTIONS,
        "frames": metas,
    }
    transforms.write(root / "transforms.json", meta)
    return root


def constant_frames(value: np.ndarray | float, h: int, w: int, n: int) -> list[np.ndarray]:
    """n identical frames of a constant (or HxW / HxWx3) linear value."""
    v = np.broadcast_to(np.asarray(value, np.float32), (h, w, 3) if np.ndim(value) != 2 else (h, w))
    img = np.repeat(v[..., None], 3, axis=2) if v.ndim == 2 else v
    return [np.ascontiguousarray(img, dtype=np.float32)] * n


def circle_poses(times: np.ndarray, radius: float, omega: float, height: float = 1.0) -> np.ndarray:
    """Camera-to-world poses on a horizontal circle, yawing with the motion (camera looks horizontally)."""
    from scipy.spatial.transform import Rotation

    r0 = Rotation.from_euler("x", 90, degrees=True)  # OpenGL camera looking along world +Y, +Y up = world +Z
    poses = np.tile(np.eye(4), (len(times), 1, 1))
    for i, t in enumerate(times):
        poses[i, :3, :3] = (Rotation.from_euler("z", omega * t) * r0).as_matrix()
        poses[i, :3, 3] = [radius * np.cos(omega * t), radius * np.sin(omega * t), height]
    return poses
