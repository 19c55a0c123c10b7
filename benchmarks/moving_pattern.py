"""An in-memory drifting grating: a sensor source whose cost is only the emulator's (no decoding)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from camsim.emulate.light import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the analytic test sequences
from synthetic_sensors import circle_poses


class MovingPattern(Sequence):
    """An in-memory sequence (nothing on disk): a drifting sinusoidal grating, computed per frame.

    Lets benchmarks run thousands of frames without writing them; memory is one frame at a time.
    """

    def __init__(self, n: int, h: int, w: int, fps: float = 30.0) -> None:
        times = np.arange(n) / fps
        poses = circle_poses(times, 1.0, 0.5)
        meta = {
            "w": w,
            "h": h,
            "fl_x": float(w),
            "fl_y": float(w),
            "cx": w / 2,
            "cy": h / 2,
            "fps": fps,
            "frames": [],
        }
        super().__init__(root=Path("."), meta=meta, times=times, poses=poses, fps=fps, light="linear")
        self._n = n
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._phase = (xx * 0.05 + yy * 0.03).astype(np.float32)

    @property
    def n(self) -> int:
        return self._n

    def uses_linear(self, i: int) -> bool:
        return True

    def linear(self, i: int) -> np.ndarray:
        v = 0.5 + 0.45 * np.sin(self._phase + np.float32(0.05 * i))
        return np.repeat(v[..., None], 3, axis=2)
