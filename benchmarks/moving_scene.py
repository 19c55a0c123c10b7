"""An in-memory scene for active sensors: the drifting grating of moving_pattern.py plus what iToF and LiDAR
emulators read (planar depth, albedo, camera-frame normals), computed per frame, nothing on disk."""

from __future__ import annotations

import numpy as np
from moving_pattern import MovingPattern


class MovingScene(MovingPattern):
    """Planar depth 1.5..3.5 m (a ramp across the columns, sliding back and forth), a grating albedo, one
    constant tilted normal (a cost model, not a consistent surface); `linear` is MovingPattern's grating."""

    def __init__(self, n: int, h: int, w: int, fps: float = 30.0) -> None:
        super().__init__(n, h, w, fps)
        xx = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / w
        self._tilt = np.broadcast_to(xx[None, :], (h, w)).astype(np.float32)
        normal = np.array([0.5, 0.0, 1.0], np.float32)
        self._normal = np.broadcast_to(normal / np.linalg.norm(normal), (h, w, 3)).astype(np.float32)

    def has_pass(self, key: str) -> bool:
        return True

    def intrinsics(self, i: int) -> np.ndarray:
        m = self.meta
        return np.array([[m["fl_x"], 0.0, m["cx"]], [0.0, m["fl_y"], m["cy"]], [0.0, 0.0, 1.0]])

    def depth(self, i: int) -> np.ndarray:
        return (2.5 + 0.5 * np.sin(0.05 * i) + self._tilt).astype(np.float32)

    def albedo(self, i: int) -> np.ndarray:
        v = 0.4 + 0.35 * np.sin(self._phase + np.float32(0.05 * i))
        return np.broadcast_to(v[..., None], (*v.shape, 3))

    def normal(self, i: int) -> np.ndarray:
        return self._normal
