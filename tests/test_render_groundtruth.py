"""Analytic ground-truth tests: scenes whose depth, normals, flow, projection and ids are known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import FAST
from scipy.spatial.transform import Rotation

from camsim import transforms
from camsim.fileio import read_exr, read_image

pytestmark = pytest.mark.blender  # renders with the shared Blender worker

RIG_ROT = (0.3, -0.2, 0.5)
RIG_LOC = (1.0, 2.0, 3.0)


def _interior(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """Pixels at least `margin` away from anything outside `mask` (edges mix neighbouring surfaces)."""
    from scipy.ndimage import binary_erosion

    return binary_erosion(mask, iterations=margin, border_value=0)


def _ids(out, meta, name):
    inv = {v: int(k) for k, v in meta["segmentation_ids"].items()}
    return inv[name]


@pytest.fixture(scope="module")
def planes(build_scene, render):
    tilts = [(0.0, 0.0, -0.9, 0.5), (math.radians(30), 0.0, 0.0, 0.5), (0.0, math.radians(-45), 0.9, 0.5),
             (math.radians(20), math.radians(25), 0.0, -0.6)]  # fmt: skip
    blend = build_scene("planes", kind="planes", depth=5.0, tilts=tilts, width=96, height=64)
    out = render(blend, "planes", config=FAST.replace(width=96, height=64), frame_start=1, frame_end=2)
    return out, transforms.read(out), tilts


def test_depth_of_fronto_parallel_plane_is_its_distance(planes):
    out, meta, _ = planes
    depth = read_exr(out / meta["frames"][0]["depth_file_path"])
    seg = read_exr(out / meta["frames"][0]["segmentation_file_path"])
    back = _interior(seg == _ids(out, meta, "Back"))
    assert back.sum() > 1000
    rel = np.abs(depth[back] - 5.0) / 5.0
    assert rel.max() < 1e-4


def test_depth_of_tilted_planes_is_exact_at_pixel_centres(planes):
    """Planar depth of each tilted plane, intersected analytically through every pixel centre."""
    out, meta, tilts = planes
    depth = read_exr(out / meta["frames"][0]["depth_file_path"])
    seg = read_exr(out / meta["frames"][0]["segmentation_file_path"])
    K = transforms.intrinsics(meta, 0)
    for i, (tx, ty, x, y) in enumerate(tilts):
        normal = Rotation.from_euler("xyz", [tx, ty, 0.0]).apply([0.0, 0.0, 1.0])
        centre = np.array([x, y, -5.0 + 1.0])
        rows, cols = np.nonzero(_interior(seg == _ids(out, meta, f"Tilt{i}")))
        rays = np.stack(
            [(cols + 0.5 - K[0, 2]) / K[0, 0], -(rows + 0.5 - K[1, 2]) / K[1, 1], -np.ones(len(rows))], 1
        )
        truth = (normal @ centre) / (rays @ normal)  # planar depth: the ray's z component is -1
        rel = np.abs(depth[rows, cols] - truth) / truth
        assert rel.max() < 1e-4, (f"Tilt{i}", rel.max())


def test_normals_of_tilted_planes_in_camera_frame(planes):
    out, meta, tilts = planes
    normals = read_exr(out / meta["frames"][0]["normal_file_path"], ("R", "G", "B"))
    seg = read_exr(out / meta["frames"][0]["segmentation_file_path"])
    checked = 0
    for i, (tx, ty, _, _) in enumerate(tilts):
        truth = Rotation.from_euler("xyz", [tx, ty, 0.0]).apply([0.0, 0.0, 1.0])
        mask = _interior(seg == _ids(out, meta, f"Tilt{i}"))
        assert mask.sum() > 4, f"Tilt{i} not visible"
        cosang = np.clip(normals[mask] @ truth, -1, 1)
        assert np.degrees(np.arccos(cosang)).max() < 0.5
        checked += 1
    assert checked == len(tilts)


def test_background_depth_is_inf_and_normals_zero(build_scene, render):
    blend = build_scene("sky", kind="point", point=(0.0, 0.0, -6.0))
    out = render(blend, "sky", frame_start=1, frame_end=1)
    meta = transforms.read(out)
    depth = read_exr(out / meta["frames"][0]["depth_file_path"])
    normals = read_exr(out / meta["frames"][0]["normal_file_path"], ("R", "G", "B"))
    seg = read_exr(out / meta["frames"][0]["segmentation_file_path"])
    sky = seg == 0
    assert sky.mean() > 0.5
    assert np.isinf(depth[sky]).all() and (depth[sky] > 0).all()
    assert (normals[sky] == 0).all()


@pytest.mark.parametrize(
    ("cam_v", "obj_v"),
    [
        ((0.05, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.03, -0.02, 0.0)),
        ((-0.04, 0.02, 0.0), (0.05, 0.03, 0.0)),
    ],
)
def test_forward_and_backward_flow_of_translations(build_scene, render, cam_v, obj_v):
    depth, obj_depth = 6.0, 3.0
    blend = build_scene(f"flow_{cam_v}_{obj_v}", kind="flow", depth=depth, object_depth=obj_depth,
                        camera_velocity=cam_v, object_velocity=obj_v, frames=(1, 11))  # fmt: skip
    out = render(blend, "flow", frame_start=4, frame_end=6)
    meta = transforms.read(out)
    fx, fy = meta["fl_x"], meta["fl_y"]
    for fr in meta["frames"]:
        flow = read_exr(out / fr["flow_file_path"], ("R", "G", "B", "A"))
        seg = read_exr(out / fr["segmentation_file_path"])
        for name, z, v_obj in (("Back", depth, (0, 0, 0)), ("Mover", obj_depth, obj_v)):
            rel = np.subtract(v_obj, cam_v)
            truth = np.array([fx * rel[0] / z, -fy * rel[1] / z])  # image y points down
            mask = _interior(seg == _ids(out, meta, name), margin=3)
            assert mask.sum() > 20
            fwd_err = np.linalg.norm(flow[mask][:, :2] - truth, axis=1)
            bwd_err = np.linalg.norm(flow[mask][:, 2:] + truth, axis=1)
            assert fwd_err.mean() < 0.05 and np.percentile(fwd_err, 99) < 0.05, (name, fwd_err.max())
            assert bwd_err.mean() < 0.05 and np.percentile(bwd_err, 99) < 0.05, (name, bwd_err.max())


@pytest.mark.parametrize(
    ("width", "height", "fit", "shift"),
    [(80, 48, "AUTO", (0.1, -0.05)), (48, 80, "AUTO", (-0.08, 0.12)), (80, 48, "VERTICAL", (0.05, 0.1)),
     (64, 40, "HORIZONTAL", (0.0, 0.15))],
)  # fmt: skip
def test_known_point_projects_through_intrinsics_and_pose(build_scene, render, width, height, fit, shift):
    point_cam = (0.25, -0.15, -4.0)
    blend = build_scene(f"point_{width}_{height}_{fit}", kind="point", width=width, height=height, sensor_fit=fit,
                        shift_x=shift[0], shift_y=shift[1], point=point_cam, rig_rotation=RIG_ROT,
                        rig_location=RIG_LOC)  # fmt: skip
    cfg = FAST.replace(width=width, height=height, max_samples=16)
    out = render(blend, "point", config=cfg, frame_start=1, frame_end=1)
    meta = transforms.read(out)
    assert (meta["w"], meta["h"]) == (width, height)
    # World position from the rig's transform, computed independently of Blender.
    world = Rotation.from_euler("xyz", RIG_ROT).apply(point_cam) + np.array(RIG_LOC)
    uv, z = transforms.project(world[None], transforms.pose(meta, 0), transforms.intrinsics(meta, 0))
    assert z[0] == pytest.approx(4.0, rel=1e-6)
    seg = read_exr(out / meta["frames"][0]["segmentation_file_path"])
    ys, xs = np.nonzero(seg == _ids(out, meta, "Marker"))
    assert len(xs) >= 3
    centroid = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    assert np.linalg.norm(centroid - uv[0]) < 0.5


def test_segmentation_ids_stable_across_frames_and_named(build_scene, render):
    blend = build_scene(
        "ids", kind="flow", camera_velocity=(0.02, 0.0, 0.0), object_velocity=(0.05, 0.0, 0.0)
    )
    a = render(blend, "ids_a", frame_start=2, frame_end=4)
    b = render(blend, "ids_b", frame_start=7, frame_end=8)
    meta_a, meta_b = transforms.read(a), transforms.read(b)
    assert meta_a["segmentation_ids"] == meta_b["segmentation_ids"] == {"1": "Back", "2": "Mover"}
    for out, meta in ((a, meta_a), (b, meta_b)):
        for fr in meta["frames"]:
            seg = read_exr(out / fr["segmentation_file_path"])
            assert seg.dtype == np.uint32
            assert set(np.unique(seg)) <= {0, 1, 2}
            assert (seg == 2).sum() > 20


def test_animated_focal_length_gives_per_frame_intrinsics(build_scene, render):
    blend = build_scene("zoom", kind="point", animate_lens=True, frames=(1, 5))
    out = render(blend, "zoom", frame_start=1, frame_end=5)
    meta = transforms.read(out)
    fls = [fr["fl_x"] for fr in meta["frames"]]
    assert fls[0] == pytest.approx(meta["fl_x"])
    assert fls[-1] == pytest.approx(1.5 * fls[0])
    assert all(b > a for a, b in itertools.pairwise(fls))


def test_keyframe_multiplier_stretches_time(build_scene, render):
    blend = build_scene("stretch", kind="flow", depth=6.0, camera_velocity=(0.1, 0.0, 0.0), frames=(1, 11))
    plain = transforms.read(render(blend, "m1", frame_start=1, frame_end=11))
    cfg = FAST.replace(keyframe_multiplier=2.5, depths=False, normals=False, segmentations=False, debug=False)
    out = render(blend, "m25", config=cfg)
    meta = transforms.read(out)
    assert (meta["frame_start"], meta["frame_end"]) == (3, 27)  # ceil(1*2.5) .. floor(11*2.5)
    assert meta["fps"] == pytest.approx(25 * 2.5)
    by_frame = {fr["frame_number"]: fr for fr in meta["frames"]}
    for f in (2, 4, 10):  # frame f*2.5 shows the scene at original frame f
        np.testing.assert_allclose(by_frame[round(f * 2.5)]["transform_matrix"],
                                   plain["frames"][f - 1]["transform_matrix"], atol=1e-6)  # fmt: skip
    # Flow per frame is 1/2.5 of the unscaled flow.
    flow = read_exr(out / by_frame[10]["flow_file_path"], ("R", "G", "B", "A"))
    truth_px = -meta["fl_x"] * 0.1 / 6.0 / 2.5  # the back plane, 6 units away
    back = np.abs(flow[..., 0] - truth_px) < 0.05
    assert back.mean() > 0.5


def test_keyframe_multiplier_stretches_shape_key_animation(build_scene, render):
    """Mesh-data animation (a shape key, not an object action) is stretched like everything else."""
    blend = build_scene("shapekey", kind="shapekey", frames=(1, 11))
    cfg = FAST.replace(normals=False, flows=False, debug=False)
    plain = render(blend, "sk1", config=cfg, frame_start=5, frame_end=5)
    slow = render(blend, "sk2", config=cfg.replace(keyframe_multiplier=2.0), frame_start=10, frame_end=10)
    seg1 = read_exr(plain / transforms.read(plain)["frames"][0]["segmentation_file_path"])
    seg2 = read_exr(slow / transforms.read(slow)["frames"][0]["segmentation_file_path"])
    square = {v: int(k) for k, v in transforms.read(plain)["segmentation_ids"].items()}["Square"]
    assert (seg1 == square).sum() > 20
    np.testing.assert_array_equal(seg1 == square, seg2 == square)
    start = render(blend, "sk0", config=cfg, frame_start=1, frame_end=1)
    seg0 = read_exr(start / transforms.read(start)["frames"][0]["segmentation_file_path"])
    assert ((seg0 == square) != (seg1 == square)).sum() > 20  # it did move by frame 5


def test_rgb_frame_and_ground_truth_share_resolution(planes):
    out, meta, _ = planes
    fr = meta["frames"][0]
    rgb = read_image(out / fr["file_path"])
    assert rgb.shape == (64, 96, 3) and rgb.dtype == np.uint8
    for key, shape in (("depth_file_path", (64, 96)), ("normal_file_path", (64, 96)),
                       ("segmentation_file_path", (64, 96))):  # fmt: skip
        assert read_exr(out / fr[key]).shape[:2] == shape
    assert (out / "debug" / "depths" / "depth_000001.png").is_file()
