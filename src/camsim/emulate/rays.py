"""Per-pixel ray geometry of a sequence for active sensors: the radial distance along each pixel's ray from the
depth pass, through any lens (camsim.lenses: planar z for the pinhole and OpenCV distortion, already radial for
fisheyes), and unit rays for the angle at which the camera-side source meets a surface.
"""

from __future__ import annotations

import numpy as np

from camsim import lenses
from camsim.emulate.light import Sequence, radial_depth
from camsim.errors import DatasetError
from camsim.passes import ALBEDO, DEPTH, NORMAL, Pass


class RayGeometry:
    """Per-pixel ray lengths (radial distance per unit of the depth pass) and unit rays, per camera (cached)."""

    def __init__(self, seq: Sequence) -> None:
        self.seq = seq
        self.lens = lenses.lens_of(seq.meta)
        self._cache: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(scale HxW: radial = depth * scale, +inf where a pixel has no ray; unit rays HxWx3, camera frame), float32."""
        K = self.seq.intrinsics(i)
        key = tuple(K.ravel().tolist())
        if key not in self._cache:
            h, w = self.seq.h, self.seq.w
            if self.lens.is_pinhole:
                scale = radial_depth(np.ones((h, w), np.float32), K)
                u = (np.arange(w) + 0.5 - K[0, 2]) / K[0, 0]
                v = (np.arange(h) + 0.5 - K[1, 2]) / K[1, 1]
                rays = np.stack(np.broadcast_arrays(u[None, :], -v[:, None], -np.ones((h, 1))), axis=-1)
                ok = np.ones((h, w), bool)
            else:  # OPENCV rays have z = -1 (planar depth), fisheye rays unit length (radial depth)
                cam = lenses.Camera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], w, h, self.lens)
                rays, ok = lenses.pixel_rays(cam)
                scale = np.linalg.norm(rays, axis=-1)
            length = np.linalg.norm(rays, axis=-1, keepdims=True)
            unit = np.where(ok[..., None], rays / np.where(length > 0, length, 1.0), 0.0)
            self._cache[key] = (np.where(ok, scale, np.inf).astype(np.float32), unit.astype(np.float32))
        return self._cache[key]


def incidence_cosine(normals: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """|n . r|: the cosine between unit surface normals and unit rays (HxWx3 each, camera frame); 0 where the
    normal is 0 (background)."""
    dot = normals[..., 0] * rays[..., 0]
    dot += normals[..., 1] * rays[..., 1]
    dot += normals[..., 2] * rays[..., 2]
    return np.abs(dot, out=dot)


def needed_passes(incidence: bool) -> tuple[Pass, ...]:
    """The passes an active sensor reads: albedo and depth, and normals when it uses the incidence cosine."""
    return (ALBEDO, DEPTH, NORMAL) if incidence else (ALBEDO, DEPTH)


def require_passes(seq: Sequence, sensor: str, incidence: bool) -> None:
    """DatasetError (one line, naming the flag to change) when `seq` cannot feed an active sensor: frames
    interpolated on the fly (its rays need each frame's passes as written), or a pass it reads missing
    (`needed_passes`). `sensor` names the sensor in the message."""
    if seq.source_interpolation is not None:
        raise DatasetError(
            f"{seq.source}: {sensor} cannot read frames interpolated on the fly yet: write the interpolated "
            "sequence (camsim interpolate, or create-datasets without --no-keep-interpolated) and emulate that"
        )
    for kind in needed_passes(incidence):
        if seq.has_pass(kind.key):
            continue
        if kind is NORMAL:
            raise DatasetError(
                f"{seq.source}: {sensor} needs the normal pass for the incidence cosine: render with "
                f"--render-config.{NORMAL.flag}, or pass --no-incidence"
            )
        raise DatasetError(
            f"{seq.source}: {sensor} needs the {kind.name} pass: render with --render-config.{kind.flag}"
        )
