"""Rendered-like sequences for active sensors, written without Blender (a test helper module): per frame the
linear RGB, planar depth (+inf background), albedo and camera-frame normals, each given in closed form.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from camsim import transforms
from camsim.emulate.light import linear_to_srgb
from camsim.fileio import write_exr, write_image
from camsim.passes import ALBEDO, DEPTH, FRAME, LINEAR, NORMAL

Frame = dict[str, np.ndarray]
"""`depth` HxW planar z (m, inf: background), `albedo` HxWx3, `linear` HxWx3, `normal` HxWx3 (optional)."""


def write_active_sequence(
    root: Path,
    frame: Callable[[int], Frame],
    n: int,
    h: int,
    w: int,
    fps: float = 30.0,
    focal: float | None = None,
    lens: dict[str, Any] | None = None,
    albedo: bool = True,
) -> Path:
    """Write n frames `frame(i)` as a sequence folder (frame numbers 0..n-1, times i / fps, identity poses,
    intrinsics focal (default w) at the image centre; `lens` adds camera_model keys)."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        f = frame(i)
        lin = np.asarray(f["linear"], np.float32)
        rec: dict[str, Any] = {"transform_matrix": np.eye(4).tolist(), "time": i / fps, "frame_number": i}
        rec[FRAME.key] = FRAME.relpath(i)
        (root / FRAME.folder).mkdir(exist_ok=True)
        write_image(root / rec[FRAME.key], np.rint(linear_to_srgb(lin) * 255).astype(np.uint8))
        parts = [(LINEAR, lin), (DEPTH, np.where(np.isfinite(f["depth"]), f["depth"], 1e10))]
        if albedo:
            parts.append((ALBEDO, f["albedo"]))
        if "normal" in f:
            parts.append((NORMAL, f["normal"]))
        for kind, arr in parts:
            a = np.asarray(arr, np.float32)
            rec[kind.key] = kind.relpath(i)
            (root / kind.folder).mkdir(exist_ok=True)
            chans = {c: (a if a.ndim == 2 else a[..., j]) for j, c in enumerate(kind.channels)}
            write_exr(root / rec[kind.key], chans)
        records.append(rec)
    fl = float(focal if focal is not None else w)
    meta = {"format": transforms.FORMAT_VERSION, "camera_model": "OPENCV", "fl_x": fl, "fl_y": fl, "cx": w / 2,
            "cy": h / 2, "w": w, "h": h, "fps": fps, "conventions": transforms.CONVENTIONS, **(lens or {}),
            "frames": records}  # fmt: skip
    transforms.write(root / "transforms.json", meta)
    return root


def plane_frame(h: int, w: int, z: float | np.ndarray, rho: float = 0.5, lum: float = 0.2) -> Frame:
    """A fronto-parallel plane at planar depth z (scalar or HxW), albedo rho, ambient luminance lum."""
    depth = np.broadcast_to(np.asarray(z, np.float32), (h, w)).copy()
    normal = np.zeros((h, w, 3), np.float32)
    normal[..., 2] = 1.0
    return {"depth": depth, "albedo": np.full((h, w, 3), rho, np.float32),
            "linear": np.full((h, w, 3), lum, np.float32), "normal": normal}  # fmt: skip


def pinhole_radial(h: int, w: int, z: float, focal: float | None = None) -> np.ndarray:
    """Radial distance of each pixel centre's ray to a fronto-parallel plane at planar depth z (pinhole at the
    image centre), written out here (not with camsim) so tests check the library independently."""
    f = float(focal if focal is not None else w)
    u = (np.arange(w) + 0.5 - w / 2) / f
    v = (np.arange(h) + 0.5 - h / 2) / f
    return z * np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)
