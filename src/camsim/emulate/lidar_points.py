"""LiDAR points: ranges along pixel rays into the camera frame (OpenGL axes) and the world frame.

The point cloud of a frame is organised (one record per pixel, H x W, in the structured dtype POINT_DTYPE):
a pixel without an estimate is `valid` False with NaN coordinates. Camera coordinates are in the camera of the
source frame the point saw (its acquisition time's nearest frame); world coordinates use that frame's pose.
"""

from __future__ import annotations

import numpy as np

POINT_DTYPE = np.dtype(
    [
        ("valid", "?"),
        ("t", "<f8"),
        ("range", "<f4"),
        ("range_true", "<f4"),
        ("x_cam", "<f4"),
        ("y_cam", "<f4"),
        ("z_cam", "<f4"),
        ("x", "<f8"),
        ("y", "<f8"),
        ("z", "<f8"),
        ("detections", "<u4"),
        ("source_frame_number", "<f8"),
    ]
)
"""One point: validity, time (s, source clock), estimated and rendered radial range (m), camera-frame and
world-frame coordinates (m), detections in its histogram, and the source frame it saw."""


def camera_points(ranges: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Points (..., 3) at `ranges` (...) along unit `rays` (..., 3)."""
    return np.asarray(ranges, np.float64)[..., None] * rays


def world_points(cam: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """Camera-frame points (N, 3) in the world through a camera-to-world pose (4, 4)."""
    return cam @ c2w[:3, :3].T + c2w[:3, 3]
