"""Analytic test sequences with exact flow, depth and segmentation (for tests and benchmarks).

Fronto-parallel textured layers slide across the image at constant pixel velocities in front of a
world background that is a smooth function of direction; the camera may yaw at a constant rate.
Rendering any real-valued time gives the ground truth an interpolated frame must match.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from camsim import srgb, transforms
from camsim.fileio import write_exr, write_image


@dataclass(frozen=True)
class Layer:
    """A fronto-parallel layer at fixed depth, moving `velocity` pixels per frame (only with a still camera)."""

    depth: float
    velocity: tuple[float, float]
    rect: tuple[float, float, float, float] | None = None
    """(x0, y0, x1, y1) at time 0 in pixels; None covers the whole image."""
    seg_id: int = 1
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Scene:
    w: int = 48
    h: int = 40
    focal: float = 50.0
    layers: tuple[Layer, ...] = field(default_factory=tuple)
    yaw_rate: float = 0.0
    """Camera rotation about the world +Y axis, radians per frame."""
    fps: float = 10.0


TWO_LAYERS = Scene(
    w=24,
    h=20,
    focal=25.0,
    layers=(Layer(5.0, (2.0, 0.0)), Layer(2.0, (-2.0, 1.0), rect=(6, 4, 14, 12), seg_id=2)),
)
"""A background plane and a nearer rectangle moving the other way: occlusions, disocclusions, two ids."""


def texture(x: np.ndarray, y: np.ndarray, tint: tuple[float, float, float]) -> np.ndarray:
    """Smooth linear-light texture in layer pixel coordinates (HxWx3)."""
    base = (
        0.45
        + 0.3 * np.sin(2 * np.pi * x / 17.0) * np.cos(2 * np.pi * y / 13.0)
        + 0.1 * np.sin(2 * np.pi * (x + y) / 29.0)
    )
    return np.stack([base * t for t in tint], axis=-1)


def camera(scene: Scene, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(c2w, K) at frame time t."""
    a = scene.yaw_rate * t
    c2w = np.eye(4)
    c2w[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
    K = np.array([[scene.focal, 0, scene.w / 2], [0, scene.focal, scene.h / 2], [0, 0, 1.0]])
    return c2w, K


def render(scene: Scene, t: float) -> dict[str, np.ndarray]:
    """Linear rgb, depth, flow (one frame step), segmentation and normals at frame time t."""
    h, w = scene.h, scene.w
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    c2w, K = camera(scene, t)
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], -(v - K[1, 2]) / K[1, 1], -np.ones_like(u)], -1)
    d = d_cam @ c2w[:3, :3].T
    az, el = np.arctan2(d[..., 0], -d[..., 2]), np.arctan2(d[..., 1], np.hypot(d[..., 0], d[..., 2]))
    g = 0.4 + 0.25 * np.sin(9 * az) * np.cos(7 * el) + 0.15 * np.cos(5 * az + 3 * el)
    rgb = np.stack([g, 0.8 * g, 0.6 + 0.3 * np.sin(4 * az)], -1)
    depth = np.full((h, w), np.inf)
    flow = np.zeros((h, w, 4))
    seg = np.zeros((h, w), np.uint32)
    normals = np.zeros((h, w, 3))
    for layer in sorted(scene.layers, key=lambda la: -la.depth):
        vx, vy = layer.velocity
        lx, ly = u - vx * t, v - vy * t
        if layer.rect is None:
            cover = np.ones((h, w), bool)
        else:
            x0, y0, x1, y1 = layer.rect
            cover = (lx >= x0) & (lx < x1) & (ly >= y0) & (ly < y1)
        rgb[cover] = texture(lx, ly, layer.tint)[cover]
        depth[cover] = layer.depth
        flow[cover] = (vx, vy, -vx, -vy)
        seg[cover] = layer.seg_id
        normals[cover] = (0.0, 0.0, 1.0)
    return {"rgb": rgb, "depth": depth, "flow": flow, "seg": seg, "normals": normals}


def write_sequence(
    folder: str | os.PathLike[str],
    scene: Scene,
    n_frames: int,
    *,
    first_number: int = 1,
    bit_depth: int = 8,
    linear: bool = False,
) -> dict:
    """Write an IMG-format sequence (frame numbers first_number.., times (number - first)/fps)."""
    folder = Path(folder)
    for sub in ("frames", "depths", "flows", "segmentations", "normals", "linear"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    _, K = camera(scene, 0)
    frames = []
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    for i in range(n_frames):
        r = render(scene, float(i))
        num = first_number + i
        fr = {
            "file_path": f"frames/frame_{num:06d}.png",
            "depth_file_path": f"depths/depth_{num:06d}.exr",
            "flow_file_path": f"flows/flow_{num:06d}.exr",
            "segmentation_file_path": f"segmentations/segmentation_{num:06d}.exr",
            "normal_file_path": f"normals/normal_{num:06d}.exr",
            "transform_matrix": camera(scene, float(i))[0].tolist(),
            "frame_number": num,
            "time": i / scene.fps,
        }
        write_image(folder / fr["file_path"], srgb.encode(r["rgb"], dtype))
        write_exr(folder / fr["depth_file_path"], {"Y": r["depth"].astype(np.float32)})
        write_exr(
            folder / fr["flow_file_path"],
            {c: r["flow"][..., j].astype(np.float32) for j, c in enumerate("RGBA")},
        )
        write_exr(folder / fr["segmentation_file_path"], {"Y": r["seg"]})
        write_exr(
            folder / fr["normal_file_path"],
            {c: r["normals"][..., j].astype(np.float32) for j, c in enumerate("RGB")},
        )
        if linear:
            fr["linear_file_path"] = f"linear/linear_{num:06d}.exr"
            write_exr(
                folder / fr["linear_file_path"],
                {c: r["rgb"][..., j].astype(np.float32) for j, c in enumerate("RGB")},
            )
        frames.append(fr)
    meta = {
        "format": transforms.FORMAT_VERSION,
        "camera_model": "OPENCV",
        "fl_x": K[0, 0],
        "fl_y": K[1, 1],
        "cx": K[0, 2],
        "cy": K[1, 2],
        "w": scene.w,
        "h": scene.h,
        "fps": scene.fps,
        "keyframe_multiplier": 1,
        "conventions": transforms.CONVENTIONS,
        "segmentation_ids": {str(la.seg_id): f"layer{la.seg_id}" for la in scene.layers},
        "frames": frames,
    }
    transforms.write(folder / "transforms.json", meta)
    return meta
