"""World normals to the camera frame: the closed form R^T n / |n|, and the same bits as the whole-array formula."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from camsim.groundtruth import normals_to_camera


def _formula(n_world, c2w):
    r = np.asarray(c2w, dtype=np.float32)[:3, :3]
    n = np.asarray(n_world, dtype=np.float32) @ r
    length = np.sqrt(np.einsum("...i,...i->...", n, n))[..., None]
    valid = length > 1e-6
    np.divide(n, length, out=n, where=valid)
    n[~valid[..., 0]] = 0.0
    return n


@pytest.mark.parametrize("seed", range(3))
def test_camera_normals_are_the_inverse_rotation_of_world_normals_renormalised(seed):
    g = np.random.default_rng(seed)
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    c2w[:3, 3] = g.normal(size=3)
    n = g.normal(size=(40, 50, 3)).astype(np.float32) * g.uniform(0.5, 1.5, (40, 50, 1)).astype(np.float32)
    n[:4] = 0.0  # background
    n[5, :3] = 1e-8  # shorter than 1e-6: no surface
    got = normals_to_camera(n, c2w)
    want = n.astype(np.float64) @ c2w[:3, :3]
    with np.errstate(invalid="ignore"):  # the background's 0 / 0, set below
        want /= np.linalg.norm(want, axis=-1, keepdims=True)
    want[:4] = 0.0
    want[5, :3] = 0.0
    assert np.abs(got - want).max() < 2e-6
    assert got.dtype == np.float32


@pytest.mark.parametrize("seed", range(3))
def test_camera_normals_keep_the_bits_of_the_whole_array_formula(seed):
    g = np.random.default_rng(seed)
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    n = g.normal(size=(64, 80, 3)).astype(np.float32) * g.uniform(0.2, 2, (64, 80, 1)).astype(np.float32)
    n[:6] = 0.0
    n[7, :9] = 1e-7
    n[8, :3] = np.nan
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(normals_to_camera(n, c2w), _formula(n, c2w))
