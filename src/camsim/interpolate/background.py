"""Motion of world-background pixels (depth +inf), which Blender's vector pass leaves at zero.

Points at infinity move only with the camera's rotation, so their image motion is the homography
K_t · D · R_t^T · R_s · D · K_s^-1, where D = diag(1, -1, -1) maps OpenGL camera axes (y up, looking
along -Z) to the y-down, +z-forward pixel ray convention of K.
"""

from __future__ import annotations

import numpy as np

_D = np.diag([1.0, -1.0, -1.0])


def rotation_homography(
    c2w_src: np.ndarray, K_src: np.ndarray, c2w_dst: np.ndarray, K_dst: np.ndarray
) -> np.ndarray:
    """3x3 map of homogeneous pixel coordinates (top-left-corner origin) of directions at infinity."""
    R_rel = c2w_dst[:3, :3].T @ c2w_src[:3, :3]
    fx, fy, cx, cy = K_src[0, 0], K_src[1, 1], K_src[0, 2], K_src[1, 2]
    K_inv = np.array([[1 / fx, 0.0, -cx / fx], [0.0, 1 / fy, -cy / fy], [0.0, 0.0, 1.0]])  # pinhole, no skew
    return K_dst @ _D @ R_rel @ _D @ K_inv


def map_points(H: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply H to pixel coordinates; returns (x', y', valid) where valid means in front of the camera."""
    hx = H[0, 0] * x + H[0, 1] * y + H[0, 2]
    hy = H[1, 0] * x + H[1, 1] * y + H[1, 2]
    hw = H[2, 0] * x + H[2, 1] * y + H[2, 2]
    valid = hw > 1e-9
    safe = np.where(valid, hw, 1.0)
    return hx / safe, hy / safe, valid


def background_flow(
    c2w_src: np.ndarray, K_src: np.ndarray, c2w_dst: np.ndarray, K_dst: np.ndarray, h: int, w: int
) -> np.ndarray:
    """HxWx2 flow (dx, dy in pixels) of every pixel's direction at infinity from the source to the target camera.

    NaN where the direction falls behind the target camera.
    """
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x2, y2, valid = map_points(rotation_homography(c2w_src, K_src, c2w_dst, K_dst), u, v)
    flow = np.stack([x2 - u, y2 - v], axis=-1)
    flow[~valid] = np.nan
    return flow
