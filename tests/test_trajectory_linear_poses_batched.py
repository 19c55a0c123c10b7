"""`trajectory.linear_poses` (one vectorised call) gives `linear_pose`'s numbers bit for bit, and
`common.blockwise` serves a batch function's items in any order: the emulators' transforms.json poses did not
change when they moved to them (issue 18 speed work)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from camsim.emulate.common import blockwise
from camsim.trajectory import linear_pose, linear_poses


def _poses(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = Rotation.random(n, random_state=seed).as_matrix()
    poses[:, :3, 3] = rng.normal(size=(n, 3)) * 5
    return poses


def test_linear_poses_equal_linear_pose_bit_for_bit():
    rng = np.random.default_rng(0)
    compared = 0
    for n in (1, 2, 3, 17):
        poses = _poses(n, n)
        xs = np.concatenate(
            [rng.uniform(-2, n + 1, 200), np.arange(n, dtype=float), np.arange(2 * n) / 2, [n - 1.0]]
        )
        got = linear_poses(poses, xs)
        assert got.shape == (len(xs), 4, 4)
        for x, pose in zip(xs, got, strict=True):
            assert np.array_equal(pose, linear_pose(poses, float(x))), (n, x)
            compared += 1
    assert compared > 800
    assert linear_poses(_poses(4, 1), []).shape == (0, 4, 4)


def test_linear_poses_halfway_is_the_analytic_midpoint():
    poses = np.tile(np.eye(4), (2, 1, 1))
    poses[1, :3, :3] = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    poses[1, :3, 3] = [2.0, 0.0, -4.0]
    mid = linear_poses(poses, [0.5])[0]
    assert np.allclose(mid[:3, :3], Rotation.from_euler("z", 45, degrees=True).as_matrix(), atol=1e-12)
    assert np.allclose(mid[:3, 3], [1.0, 0.0, -2.0], atol=1e-12)


def test_blockwise_serves_every_item_in_any_order():
    calls = []

    def batch(idx: np.ndarray) -> np.ndarray:
        calls.append((int(idx[0]), int(idx[-1])))
        return idx * 10

    n = 23
    get = blockwise(batch, n, size=5)
    order = [*range(n), *reversed(range(n)), 7, 0, 22, 13]
    assert [get(i) for i in order] == [10 * i for i in order]
    assert calls[:5] == [(0, 4), (5, 9), (10, 14), (15, 19), (20, 22)]  # one call per block going forward
