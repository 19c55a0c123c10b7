"""Closed-form helpers for renders through a lens (tests/test_render_lenses.py, tests/test_render_conventions.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from camsim import lenses
from camsim.lenses import Camera


def sample_rays(meta: dict[str, Any], cam: Camera) -> np.ndarray:
    """(h, w, 3) camera-frame rays of the one sample each pixel's depth and id come from: for a distortion the
    ray of the pinhole pixel of `render_window` whose centre is nearest the pixel's undistorted position
    (z = -1), else the pixel's own ray (NaN where it has none)."""
    rays, ok = lenses.pixel_rays(cam)
    if "render_window" not in meta:
        return np.where(ok[..., None], rays, np.nan)
    win = meta["render_window"]
    u = cam.fl_x * rays[..., 0] + cam.cx - win["left"]  # the undistorted position in window pixels
    v = -cam.fl_y * rays[..., 1] + cam.cy - win["top"]
    cu, cv = np.floor(u) + 0.5 + win["left"], np.floor(v) + 0.5 + win["top"]  # its nearest pinhole centre
    return np.stack([(cu - cam.cx) / cam.fl_x, -(cv - cam.cy) / cam.fl_y, -np.ones(u.shape)], -1)
