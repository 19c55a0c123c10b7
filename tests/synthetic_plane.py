"""Analytic sequences written without Blender, with exactly known ground truth (a test helper module).

Import the `plane_sequence` fixture into a test module: `from synthetic_plane import plane_sequence`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from camsim import transforms
from camsim.fileio import write_exr, write_image

FX, FY = 20.0, 20.0
HEIGHT0 = 5.0
STEP = np.array([0.12, -0.05, 0.08])  # camera translation per frame (world x, y, z)


def camera_position(i: float) -> np.ndarray:
    return np.array([0.0, 0.0, HEIGHT0]) + STEP * i


def plane_flow(u: np.ndarray, v: np.ndarray, i: int, j: int, cx: float, cy: float) -> np.ndarray:
    """Flow (dx, dy) of pixel (u, v) of frame i to frame j: camera looks straight down at the plane z=0.

    Written out by hand (not with camsim.transforms) so the tests check the library independently.
    """
    ci, cj = camera_position(i), camera_position(j)
    d = ci[2]
    x = (u - cx) / FX * d  # camera-frame X == world x offset from the camera
    y = -(v - cy) / FY * d  # camera-frame Y == world y offset
    wx, wy = ci[0] + x, ci[1] + y
    dj = cj[2]
    uj = cx + FX * (wx - cj[0]) / dj
    vj = cy - FY * (wy - cj[1]) / dj
    return np.stack([uj - u, vj - v], axis=-1)


def texture(wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    r = 127.5 + 127.5 * np.sin(3.1 * wx)
    g = 127.5 + 127.5 * np.cos(2.3 * wy)
    b = 127.5 + 127.5 * np.sin(1.7 * (wx + wy))
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


def write_plane_sequence(
    root: Path, n: int = 5, w: int = 16, h: int = 12, binary: bool = False, albedo: bool = False
) -> Path:
    """A camera translating above a textured plane: every ground truth known in closed form (`albedo`: with an
    albedo pass, the texture's code values / 255)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("frames", "depths", "normals", "flows", "segmentations", *(("albedo",) if albedo else ())):
        (root / sub).mkdir(exist_ok=True)
    cx, cy = w / 2.0, h / 2.0
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    frames = []
    for i in range(n):
        num = 10 + i
        c = camera_position(i)
        wx = c[0] + (u - cx) / FX * c[2]
        wy = c[1] - (v - cy) / FY * c[2]
        rgb = texture(wx, wy)
        if binary:
            rgb = (rgb[..., 0] > 127).astype(np.uint8)
        write_image(root / f"frames/frame_{num:06d}.png", rgb)
        write_exr(root / f"depths/depth_{num:06d}.exr", {"Y": np.full((h, w), c[2], np.float32)})
        nrm = np.zeros((h, w, 3), np.float32)
        nrm[..., 2] = 1.0
        write_exr(root / f"normals/normal_{num:06d}.exr", {k: nrm[..., j] for j, k in enumerate("RGB")})
        fwd = plane_flow(u, v, i, i + 1, cx, cy).astype(np.float32)
        bwd = plane_flow(u, v, i, i - 1, cx, cy).astype(np.float32)
        write_exr(
            root / f"flows/flow_{num:06d}.exr",
            {"R": fwd[..., 0], "G": fwd[..., 1], "B": bwd[..., 0], "A": bwd[..., 1]},
        )
        write_exr(root / f"segmentations/segmentation_{num:06d}.exr", {"Y": np.ones((h, w), np.uint32)})
        if albedo:
            alb = (texture(wx, wy) / 255.0).astype(np.float32)
            write_exr(root / f"albedo/albedo_{num:06d}.exr", {k: alb[..., j] for j, k in enumerate("RGB")})
        m = np.eye(4)
        m[:3, 3] = c
        frames.append(
            {
                "file_path": f"frames/frame_{num:06d}.png",
                "depth_file_path": f"depths/depth_{num:06d}.exr",
                "normal_file_path": f"normals/normal_{num:06d}.exr",
                "flow_file_path": f"flows/flow_{num:06d}.exr",
                "segmentation_file_path": f"segmentations/segmentation_{num:06d}.exr",
                **({"albedo_file_path": f"albedo/albedo_{num:06d}.exr"} if albedo else {}),
                "transform_matrix": m.tolist(),
                "frame_number": num,
                "time": i / 24.0,
            }
        )
    meta = {
        "format": transforms.FORMAT_VERSION,
        "camera_model": "OPENCV",
        "fl_x": FX,
        "fl_y": FY,
        "cx": cx,
        "cy": cy,
        "w": w,
        "h": h,
        "fps": 24.0,
        "conventions": transforms.CONVENTIONS,
        "segmentation_ids": {"1": "Plane"},
        "frames": frames,
    }
    transforms.write(root / "transforms.json", meta)
    return root


@pytest.fixture
def plane_sequence(tmp_path: Path) -> Callable[..., Path]:
    """Factory: plane_sequence(name="seq", **kwargs) writes an analytic sequence under tmp_path."""

    def make(name: str = "seq", **kwargs) -> Path:
        return write_plane_sequence(tmp_path / name, **kwargs)

    return make
