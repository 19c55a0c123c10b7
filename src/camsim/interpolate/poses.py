"""Smooth camera trajectories between rendered frames: cubic spline positions, rotation-spline orientations."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation, RotationSpline


def interpolate_poses(times: np.ndarray, c2ws: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Camera-to-world 4x4 matrices at `new_times` from keyed poses (N, 4, 4) at increasing `times` (N,).

    Positions follow a not-a-knot cubic spline (a straight line for two keys); orientations follow
    scipy's RotationSpline (C2-continuous angular rate; with two keys it is exactly slerp). The
    original times reproduce the original poses (up to re-orthonormalisation of the rotation).
    """
    times = np.asarray(times, dtype=np.float64)
    c2ws = np.asarray(c2ws, dtype=np.float64)
    new_times = np.asarray(new_times, dtype=np.float64)
    positions = CubicSpline(times, c2ws[:, :3, 3], axis=0)(new_times)
    rotations = RotationSpline(times, Rotation.from_matrix(c2ws[:, :3, :3]))(new_times).as_matrix()
    out = np.tile(np.eye(4), (len(new_times), 1, 1))
    out[:, :3, :3] = rotations
    out[:, :3, 3] = positions
    return out


def interpolate_linear(times: np.ndarray, values: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of per-frame scalars/vectors (N, ...) such as animated intrinsics."""
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    cols = [np.interp(new_times, times, flat[:, j]) for j in range(flat.shape[1])]
    return np.stack(cols, axis=1).reshape((len(new_times), *values.shape[1:]))
