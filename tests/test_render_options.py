"""Render options that change the scene: frozen animations, an unbound camera, linear light, 16-bit frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAST

from camsim import transforms
from camsim.fileio import read_exr, read_image

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def moving(build_scene):
    return build_scene(
        "options", kind="flow", camera_velocity=(0.05, 0.0, 0.0), object_velocity=(0.1, 0.0, 0.0)
    )


def _mover_flow(out, meta, index=1):
    fr = meta["frames"][index]
    flow = read_exr(out / fr["flow_file_path"], ("R", "G", "B", "A"))
    seg = read_exr(out / fr["segmentation_file_path"])
    mover = {v: int(k) for k, v in meta["segmentation_ids"].items()}["Mover"]
    return float(np.median(flow[seg == mover][:, 0]))


def test_frozen_animations_keep_objects_still_but_move_the_camera(moving, render):
    live = render(moving, "live", frame_start=2, frame_end=4)
    frozen = render(moving, "frozen", config=FAST.replace(use_animations=False), frame_start=2, frame_end=4)
    m_live, m_frozen = transforms.read(live), transforms.read(frozen)
    fx = m_live["fl_x"]
    assert _mover_flow(live, m_live) == pytest.approx(fx * (0.1 - 0.05) / 3.0, abs=0.05)
    assert _mover_flow(frozen, m_frozen) == pytest.approx(fx * (0.0 - 0.05) / 3.0, abs=0.05)
    assert m_frozen["frames"][0]["transform_matrix"] != m_frozen["frames"][-1]["transform_matrix"]


def test_unbound_camera_stays_at_its_first_pose(moving, render):
    out = render(moving, "unbound", config=FAST.replace(unbind_camera=True), frame_start=2, frame_end=4)
    meta = transforms.read(out)
    first = np.asarray(meta["frames"][0]["transform_matrix"])
    for fr in meta["frames"]:
        np.testing.assert_allclose(fr["transform_matrix"], first, atol=1e-9)


def test_linear_exr_and_16_bit_frames(moving, render):
    out = render(
        moving, "linear16", config=FAST.replace(linear=True, bit_depth=16), frame_start=2, frame_end=2
    )
    meta = transforms.read(out)
    fr = meta["frames"][0]
    rgb16 = read_image(out / fr["file_path"])
    linear = read_exr(out / fr["linear_file_path"], ("R", "G", "B"))
    assert rgb16.dtype == np.uint16 and rgb16.shape == linear.shape
    assert linear.dtype == np.float32 and np.isfinite(linear).all() and (linear >= 0).all()
