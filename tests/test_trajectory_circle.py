"""camsim.trajectory against closed forms: a camera on a circle (positions, velocities, accelerations,
body angular rate), keys reproduced, and linear + slerp between two known poses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synthetic_sensors import circle_poses

from camsim.trajectory import Spline, linear_pose, linear_values, spline_poses

RADIUS, OMEGA, HEIGHT = 2.0, 2 * np.pi / 4.0, 1.0  # one turn in 4 s


def _circle():
    keys = np.arange(0.0, 8.0 + 1e-9, 1 / 30)
    spline = Spline(keys, circle_poses(keys, RADIUS, OMEGA, HEIGHT))
    t = np.linspace(1.0, 7.0, 500)  # away from the not-a-knot ends, between keys as well as on them
    return keys, spline, t


def test_spline_on_a_circle_gives_the_closed_form_position_velocity_and_acceleration():
    _, spline, t = _circle()
    c, s = np.cos(OMEGA * t), np.sin(OMEGA * t)
    want_p = np.stack([RADIUS * c, RADIUS * s, np.full_like(t, HEIGHT)], axis=1)
    want_v = RADIUS * OMEGA * np.stack([-s, c, 0 * t], axis=1)
    want_a = -(OMEGA**2) * RADIUS * np.stack([c, s, 0 * t], axis=1)
    assert np.max(np.linalg.norm(spline.positions(t) - want_p, axis=1)) < 1e-6 * RADIUS
    assert np.max(np.linalg.norm(spline.velocities(t) - want_v, axis=1)) < 1e-5 * RADIUS * OMEGA
    assert np.max(np.linalg.norm(spline.accelerations(t) - want_a, axis=1)) < 1e-3 * RADIUS * OMEGA**2


def test_spline_on_a_circle_turns_at_the_closed_form_rate_about_the_camera_up_axis():
    _, spline, t = _circle()
    # the camera yaws with the motion: R(t) = Rz(omega t) R0, so its body rate is omega about camera +Y (up)
    assert np.allclose(spline.angular_rates(t), [0.0, OMEGA, 0.0], atol=1e-6 * OMEGA)
    r0 = Rotation.from_euler("x", 90, degrees=True)
    want = (Rotation.from_euler("z", OMEGA * t[:, None]) * r0).as_matrix()
    assert np.allclose(spline.rotations(t).as_matrix(), want, atol=1e-9)
    poses = spline.poses(t)
    assert poses.shape == (len(t), 4, 4) and np.allclose(poses[:, 3], [0, 0, 0, 1])
    assert np.allclose(poses[:, :3, :3], want, atol=1e-9)


def test_spline_reproduces_its_keys():
    keys, spline, _ = _circle()
    assert np.allclose(spline.poses(keys), circle_poses(keys, RADIUS, OMEGA, HEIGHT), atol=1e-12)
    assert (spline.t0, spline.t1) == (keys[0], keys[-1])


def test_linear_pose_halfway_between_two_known_poses_is_the_analytic_midpoint():
    a, b = np.eye(4), np.eye(4)
    b[:3, :3] = Rotation.from_rotvec([0, 0, np.pi / 2]).as_matrix()
    b[:3, 3] = [2, 4, -6]
    want = np.eye(4)
    want[:3, :3] = Rotation.from_rotvec([0, 0, np.pi / 4]).as_matrix()
    want[:3, 3] = [1, 2, -3]
    poses = np.stack([a, b])
    assert np.allclose(linear_pose(poses, 0.5), want, atol=1e-12)
    # clamped to the keys, and a single key is every pose
    assert np.array_equal(linear_pose(poses, -3.0), a) and np.allclose(linear_pose(poses, 9.0), b, atol=1e-12)
    assert np.array_equal(linear_pose(poses[:1], 0.7), a)
    # with two keys the spline is the same straight line and slerp
    assert np.allclose(spline_poses([0.0, 2.0], poses, [0.5])[0], linear_pose(poses, 0.25), atol=1e-12)


def test_linear_values_interpolate_each_entry_over_time():
    ks = np.array([[[10.0, 0, 4], [0, 10, 3], [0, 0, 1]], [[20.0, 0, 6], [0, 30, 3], [0, 0, 1]]])
    out = linear_values(np.array([0.0, 2.0]), ks, np.array([0.0, 0.5, 2.0]))
    assert out.shape == (3, 3, 3)
    assert np.allclose(out[1], [[12.5, 0, 4.5], [0, 15, 3], [0, 0, 1]]) and np.array_equal(out[[0, 2]], ks)


def test_spline_needs_increasing_times():
    with pytest.raises(ValueError):
        Spline([0.0, 1.0, 1.0], circle_poses(np.zeros(3), RADIUS, OMEGA))
