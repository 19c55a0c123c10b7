"""Pose interpolation: analytic midpoints, keys reproduced, smooth constant-rate motion."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from camsim.interpolate.background import background_flow
from camsim.interpolate.sequence import plan
from camsim.trajectory import spline_poses


def _pose(rotvec, position):
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    m[:3, 3] = position
    return m


def test_two_known_poses_give_the_analytic_midpoint():
    a = _pose([0, 0, 0], [0, 0, 0])
    b = _pose([0, 0, np.pi / 2], [2, 4, -6])
    mid = spline_poses(np.array([0.0, 1.0]), np.stack([a, b]), np.array([0.5]))[0]
    assert np.allclose(mid, _pose([0, 0, np.pi / 4], [1, 2, -3]), atol=1e-12)


def test_keys_are_reproduced_and_constant_motion_stays_constant():
    times = np.arange(5) * 0.1
    keys = np.stack([_pose([0, 0.2 * i, 0], [np.cos(i), np.sin(i), 0.5 * i]) for i in range(5)])
    out = spline_poses(times, keys, times)
    assert np.allclose(out, keys, atol=1e-9)
    mids = spline_poses(times, keys, times[:-1] + 0.05)
    angles = Rotation.from_matrix(mids[:, :3, :3]).as_rotvec()
    assert np.allclose(angles, [[0, 0.2 * i + 0.1, 0] for i in range(4)], atol=1e-9)


def test_planned_frames_carry_interpolated_poses():
    a, b = _pose([0, 0, 0], [0, 0, 0]), _pose([np.pi / 3, 0, 0], [3, 0, 0])
    meta = {
        "fl_x": 10.0, "fl_y": 10.0, "cx": 5.0, "cy": 5.0, "fps": 2.0,
        "frames": [
            {"transform_matrix": a.tolist(), "time": 0.0, "frame_number": 1},
            {"transform_matrix": b.tolist(), "time": 0.5, "frame_number": 2},
        ],
    }  # fmt: skip
    records, c2ws, _, _ = plan(meta, 3)
    assert [r["frame_number"] for r in records] == [3, 4, 5, 6]
    assert np.allclose(records[1]["transform_matrix"], _pose([np.pi / 9, 0, 0], [1, 0, 0]))
    assert np.allclose(c2ws[3], b)


def test_background_flow_of_a_pure_yaw_matches_the_pinhole_formula():
    K = np.array([[50.0, 0, 20], [0, 50.0, 15.5], [0, 0, 1]])  # row 15 is the horizon
    a = np.eye(4)
    b = _pose([0, 0.05, 0], [1, 2, 3])  # yaw left by 0.05 rad; translation must not matter at infinity
    flow = background_flow(a, K, b, K, 30, 40)
    u = np.arange(40) + 0.5
    expect_x = 50.0 * np.tan(np.arctan((u - 20) / 50.0) + 0.05) + 20 - u
    assert np.allclose(flow[15, :, 0], expect_x, atol=1e-9)
    assert np.allclose(flow[15, :, 1], 0, atol=1e-9)
