"""Scene flow (issue 16, item 6): the 3-D motion of the surface point at each pixel, against the closed form of
an analytic scene (tests/scenes/sceneflow.py: a moving, turning camera; a moving, turning rigid square in
front of a static back plane; a shape-key "Flag" and a once-instanced "Crate" that get none), against the
rendered optical flow (scene flow, depth and poses reproject onto it), at the first and last frame of a
sequence, through interpolation (dropped) and conversion (carried)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clirun import run_ok
from conftest import FAST, TESTS
from scipy.ndimage import binary_erosion
from scipy.spatial.transform import Rotation

from camsim import transforms
from camsim.config import RenderConfig
from camsim.consistency import reprojection_flow
from camsim.errors import ConfigError
from camsim.fileio import read_exr, read_exr_parts
from camsim.loader import Dataset
from camsim.passes import SCENE_FLOW
from camsim.render import worker_settings
from camsim.sceneflow import CHANNELS, flow_from_scene_flow, scene_flow, world_motions
from camsim.validate import validate_dataset

SCRIPT = TESTS / "scenes" / "sceneflow.py"
W, H = 96, 64
CAM_V, CAM_SPIN = (0.04, -0.02, 0.03), (0.01, -0.015, 0.02)  # per frame, in the rig's frame
OBJ_V, OBJ_SPIN = (0.05, 0.03, -0.04), (0.06, -0.05, 0.1)
DEPTH, OBJ_DEPTH = 6.0, 3.0
SCENE = dict(width=W, height=H, rig_rotation=(0.3, -0.2, 0.5), rig_location=(1.0, 2.0, 3.0),
             camera_velocity=CAM_V, camera_spin=CAM_SPIN, object_velocity=OBJ_V, object_spin=OBJ_SPIN,
             depth=DEPTH, object_depth=OBJ_DEPTH, frames=(1, 4))  # fmt: skip
CONFIG = FAST.replace(width=W, height=H, scene_flows=True, debug=False)

SCENE_FLOW_M = 1e-4  # metres: rendered vs closed form
REPROJECTION_PX = 0.05  # scene flow reprojected vs the rendered optical flow


# ------------------------------------------------------------------------------ closed-form truth


def rotation(per_frame: tuple[float, ...], t: float) -> np.ndarray:
    """Blender's XYZ Euler rotation of angles per_frame x t (scipy's extrinsic "xyz")."""
    return Rotation.from_euler("xyz", np.multiply(per_frame, t)).as_matrix()


def camera_rays(k: np.ndarray) -> np.ndarray:
    """Camera-frame rays (z = -1) through every pixel centre."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    return np.stack([(u - k[0, 2]) / k[0, 0], -(v - k[1, 2]) / k[1, 1], -np.ones_like(u)], axis=-1)


def mover_pose(t: float) -> tuple[np.ndarray, np.ndarray]:
    """The mover's centre and rotation in the rig's frame (scene time t: frames since frame 1)."""
    return np.array([0.0, 0.0, -OBJ_DEPTH]) + np.multiply(OBJ_V, t), rotation(OBJ_SPIN, t)


def true_scene_flow(t: float, t2: float, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mover's scene flow from t to t2 in the camera axes at t, the pixels whose centre ray meets the mover,
    the planar depth there), by intersecting the rays with the square and moving its point with the square.

    The rig (camera's parent) does not move: the camera axes at t are the rig's turned by the camera's spin,
    and a displacement in the rig's frame d is R_cam(t)^T d in them (units are metres)."""
    r_cam, origin = rotation(CAM_SPIN, t), np.multiply(CAM_V, t)
    rays = camera_rays(k)
    dirs = rays @ r_cam.T
    centre, r_obj = mover_pose(t)
    n = r_obj[:, 2]
    s = ((centre - origin) @ n) / (dirs @ n)
    hit = origin + s[..., None] * dirs
    local = (hit - centre) @ r_obj
    inside = (s > 0) & (np.abs(local[..., 0]) <= 0.5) & (np.abs(local[..., 1]) <= 0.5)
    centre2, r_obj2 = mover_pose(t2)
    moved = centre2 + local @ r_obj2.T
    return (moved - hit) @ r_cam, inside, s


# ------------------------------------------------------------------------------------- renders


@pytest.fixture(scope="module")
def blend(build_scene):
    return build_scene("sceneflow", script=SCRIPT, **SCENE)


def _ids(meta: dict) -> dict[str, int]:
    return {name: int(i) for i, name in meta["segmentation_ids"].items()}


def _interior(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    return binary_erosion(mask, iterations=margin, border_value=0)


def _frame(out, meta, i):
    fr = meta["frames"][i]
    sf = read_exr(transforms.resolve_path(out, fr[SCENE_FLOW.key]), CHANNELS)
    depth = read_exr(transforms.resolve_path(out, fr["depth_file_path"]), ("Y",))
    seg = read_exr(transforms.resolve_path(out, fr["segmentation_file_path"]), ("Y",))
    flow = read_exr(transforms.resolve_path(out, fr["flow_file_path"]), ("R", "G", "B", "A"))
    return sf, depth, seg, flow


@pytest.fixture(scope="module")
def whole(blend, render):
    """The scene's whole range, frames 1..4: the first and last frames' neighbours (0 and 5) lie outside it."""
    out = render(blend, "sceneflow-whole", config=CONFIG, frame_start=1, frame_end=4)
    return out, transforms.read(out)


@pytest.mark.blender
@pytest.mark.parametrize("multiplier", [1.0, 2.0])
def test_scene_flow_of_a_turning_moving_square_is_the_closed_form(blend, render, multiplier):
    """Rigid motion (translation and rotation of the square) seen by a moving, turning camera, forward and
    backward, also at keyframe multiplier 2 (the neighbours are half a scene frame away); the static back
    plane does not move at all."""
    first = 2 if multiplier == 1.0 else 3
    out = render(blend, f"sceneflow-x{multiplier:g}", config=CONFIG.replace(keyframe_multiplier=multiplier),
                 frame_start=first, frame_end=first + 1)  # fmt: skip
    meta = transforms.read(out)
    ids = _ids(meta)
    for i, fr in enumerate(meta["frames"]):
        t = fr["frame_number"] / multiplier - 1.0
        sf, depth, seg, _ = _frame(out, meta, i)
        k = transforms.intrinsics(meta, i)
        for channels, t2 in ((slice(0, 3), t + 1 / multiplier), (slice(3, 6), t - 1 / multiplier)):
            truth, inside, s = true_scene_flow(t, t2, k)
            mover = _interior(seg == ids["Mover"]) & inside
            assert mover.sum() > 200
            np.testing.assert_allclose(depth[mover], s[mover], rtol=1e-4)  # the same surface point
            err = np.abs(sf[..., channels][mover] - truth[mover]).max()
            assert err < SCENE_FLOW_M, (fr["frame_number"], channels, err)
            assert np.linalg.norm(truth[mover], axis=-1).min() > 0.01 / multiplier  # it moves (cm)
            back = seg == ids["Back"]
            assert back.sum() > 1000 and np.abs(sf[..., channels][back]).max() < 1e-9


@pytest.mark.blender
def test_scene_flow_alone_turns_the_scenes_motion_blur_off(build_scene, render):
    """Scene flow needs no other ground truth (depth and ids come with it), and its depth and ids must be the
    frame's instant: a scene saved with motion blur on renders it without (optical flow, which would turn it
    off anyway, is not asked for), says so, and stays the closed form."""
    blend = build_scene("sceneflow-blur", script=SCRIPT, **SCENE, motion_blur=True)
    alone = CONFIG.replace(depths=False, normals=False, flows=False, segmentations=False)
    assert "Object Index" in worker_settings(alone, 1).passes  # the ids; Depth is always rendered
    out = render(blend, "sceneflow-blur", config=alone, frame_start=2, frame_end=2)
    meta = transforms.read(out)
    assert "motion blur turned off" in meta["adjustments"]
    fr = meta["frames"][0]
    assert [k for k in fr if k.endswith("file_path")] == ["file_path", SCENE_FLOW.key]
    sf = read_exr(transforms.resolve_path(out, fr[SCENE_FLOW.key]), CHANNELS)
    truth, inside, _ = true_scene_flow(1.0, 2.0, transforms.intrinsics(meta, 0))
    mover = _interior(inside)  # the square is in front of everything else
    assert mover.sum() > 200 and np.abs(sf[..., :3][mover] - truth[mover]).max() < SCENE_FLOW_M


@pytest.mark.blender
def test_scene_flow_reprojects_onto_the_rendered_optical_flow(whole):
    """X + s, moved into the neighbour's camera and projected with its intrinsics, lands on pixel + optical
    flow, on the square's interior (its own rigid motion) and on the static back plane (camera motion only)."""
    out, meta = whole
    ids = _ids(meta)
    n = len(meta["frames"])
    checked = 0
    for i in range(n):
        sf, depth, seg, flow = _frame(out, meta, i)
        c2w, k = transforms.pose(meta, i), transforms.intrinsics(meta, i)
        for j, s3, f2 in ((i + 1, slice(0, 3), slice(0, 2)), (i - 1, slice(3, 6), slice(2, 4))):
            if not 0 <= j < n:
                continue
            pred = flow_from_scene_flow(depth, sf[..., s3], c2w, k, transforms.pose(meta, j),
                                        transforms.intrinsics(meta, j))  # fmt: skip
            for name in ("Mover", "Back"):
                mask = _interior(seg == ids[name], margin=3)
                assert mask.sum() > 200, name
                epe = np.linalg.norm(pred[mask] - flow[..., f2][mask], axis=-1)
                assert epe.max() < REPROJECTION_PX, (i, j, name, epe.max(), epe.mean())
                checked += 1
    assert checked == 2 * 2 * (n - 1)


@pytest.mark.blender
def test_deforming_and_instanced_objects_and_the_sky_are_nan_and_named(whole):
    out, meta = whole
    ids = _ids(meta)
    assert set(ids) == {"Back", "Crate", "Flag", "Mover"}
    objects = json.loads((out / meta["objects_file_path"]).read_text())["objects"]
    assert {objects[str(ids[n])]["rigid"] for n in ("Crate", "Flag")} == {False}
    assert {objects[str(ids[n])]["rigid"] for n in ("Back", "Mover")} == {True}
    warning = [w for w in meta["warnings"] if w.startswith("scene flow")]
    assert len(warning) == 1
    assert f"{ids['Crate']} 'Crate'" in warning[0] and f"{ids['Flag']} 'Flag'" in warning[0]
    assert "Mover" not in warning[0] and "Back" not in warning[0]
    for i in range(len(meta["frames"])):
        sf, depth, seg, _ = _frame(out, meta, i)
        for name in ("Crate", "Flag"):
            pixels = seg == ids[name]
            assert pixels.sum() > 20, name
            assert np.isnan(sf[pixels]).all(), name
        sky = ~np.isfinite(depth)
        assert sky.sum() > 0 and np.isnan(sf[sky]).all()
        covered = np.isin(seg, [ids["Back"], ids["Mover"]])
        assert np.isfinite(sf[covered]).all()
        assert np.array_equal(np.isnan(sf).any(-1), ~covered)


@pytest.mark.blender
def test_objects_whose_surface_moves_without_their_matrix_are_not_rigid(build_scene, render):
    """Lattice parenting, an animated modifier setting, a modifier following another object, a metaball and a
    bevel object each move a surface its matrix does not: no scene flow for them (objects.json rigid false,
    named in the warning), while the rigid square and back plane keep theirs, and so do a text and a bevelled
    curve (Blender draws their meshes as instances of themselves)."""
    blend = build_scene("sceneflow-not-rigid", script=SCRIPT, **SCENE, not_rigid=True)
    out = render(blend, "sceneflow-not-rigid", config=CONFIG, frame_start=2, frame_end=2)
    meta = transforms.read(out)
    ids = _ids(meta)
    objects = json.loads((out / meta["objects_file_path"]).read_text())["objects"]
    rigid = {name: objects[str(i)]["rigid"] for name, i in ids.items()}
    not_rigid = ("Bent", "Counted", "Mirrored", "Blob", "Bevelled", "Crate", "Flag")
    rigid_ones = ("Back", "Mover", "Label", "Rope")
    assert {name: rigid[name] for name in (*not_rigid, *rigid_ones)} == {
        **dict.fromkeys(not_rigid, False),
        **dict.fromkeys(rigid_ones, True),
    }
    warning = next(w for w in meta["warnings"] if w.startswith("scene flow"))
    assert all(f"{ids[name]} '{name}'" in warning for name in not_rigid)


@pytest.mark.blender
def test_first_and_last_frame_have_both_directions(whole):
    """The neighbours one frame outside the sequence (and outside the scene's range: 0 and 5) give the first
    frame's backward and the last frame's forward scene flow, as the flow does."""
    out, meta = whole
    assert (meta["frames"][0]["frame_number"], meta["frames"][-1]["frame_number"]) == (1, 4)
    assert meta["scene_frame_range"] == [1, 4]
    ids = _ids(meta)
    for i in (0, len(meta["frames"]) - 1):
        sf, _, seg, _ = _frame(out, meta, i)
        t = meta["frames"][i]["frame_number"] - 1.0
        k = transforms.intrinsics(meta, i)
        for channels, t2 in ((slice(0, 3), t + 1), (slice(3, 6), t - 1)):
            truth, inside, _ = true_scene_flow(t, t2, k)
            mover = _interior(seg == ids["Mover"]) & inside
            assert mover.sum() > 200
            assert np.abs(sf[..., channels][mover] - truth[mover]).max() < SCENE_FLOW_M


@pytest.mark.blender
def test_channels_loader_validation_and_conversions(whole, tmp_path):
    """Six named float32 channels; the loader's `scene_flow`; validate accepts its NaNs; img<->npy carries it
    bit for bit; interpolation drops it with its convention."""
    out, meta = whole
    path = transforms.resolve_path(out, meta["frames"][0][SCENE_FLOW.key])
    assert meta["frames"][0][SCENE_FLOW.key] == "scene_flows/scene_flow_000001.exr"
    assert {n: a.dtype for n, a in read_exr_parts(path).items()} == {
        c: np.dtype(np.float32) for c in CHANNELS
    }
    assert meta["conventions"]["scene_flow"] == transforms.CONVENTIONS["scene_flow"]
    assert validate_dataset(out).ok
    img = Dataset.from_path(out, modalities=["scene_flow"])
    first = img[0]["scene_flow"]
    assert first.shape == (H, W, 6) and first.dtype == np.float32 and np.isnan(first).any()

    run_ok("convert", "img-to-npy", out, tmp_path / "npy")
    npy = Dataset.from_path(tmp_path / "npy", modalities=["scene_flow"])
    assert np.load(tmp_path / "npy" / "scene_flows.npy", mmap_mode="r").shape == (4, H, W, 6)
    run_ok("convert", "npy-to-img", tmp_path / "npy", tmp_path / "img")
    back = Dataset.from_path(tmp_path / "img", modalities=["scene_flow"])
    for i in range(len(img)):
        np.testing.assert_array_equal(npy[i]["scene_flow"], img[i]["scene_flow"])
        np.testing.assert_array_equal(back[i]["scene_flow"], img[i]["scene_flow"])
    assert validate_dataset(tmp_path / "npy").ok and validate_dataset(tmp_path / "img").ok

    run_ok("interpolate", out, tmp_path / "interpolated", "--factor", "2", "--workers", "1")
    inter = transforms.read(tmp_path / "interpolated")
    assert not any(SCENE_FLOW.key in fr for fr in inter["frames"])
    assert "scene_flow" not in inter["conventions"] and "flow" in inter["conventions"]
    assert not (tmp_path / "interpolated" / SCENE_FLOW.folder).exists()


# ------------------------------------------------------------------------------ without Blender


def test_scene_flow_needs_motion_blur_off():
    with pytest.raises(ConfigError, match="scene flows need motion blur off"):
        RenderConfig(scene_flows=True, flows=False, use_motion_blur=True).validate()
    RenderConfig(scene_flows=True, use_motion_blur=False).validate()


def test_scene_flow_reprojection_agrees_with_the_consistency_check_reprojection():
    """Two writings of one motion: depth + scene flow + the other camera (camsim.sceneflow) and depth + object
    motion + the other camera (camsim.consistency) give the same optical flow; a static id gets exactly 0."""
    rng = np.random.default_rng(3)
    h, w = 20, 30
    k = np.array([[40.0, 0.0, 15.2], [0.0, 41.0, 9.7], [0.0, 0.0, 1.0]])
    k2 = np.array([[43.0, 0.0, 14.8], [0.0, 44.0, 10.1], [0.0, 0.0, 1.0]])

    def pose(angles, t):
        m = np.eye(4)
        m[:3, :3] = Rotation.from_euler("xyz", angles).as_matrix()
        m[:3, 3] = t
        return m

    c2w, c2w2 = pose([0.3, -0.2, 0.5], [1.0, 2.0, 3.0]), pose([0.32, -0.19, 0.48], [1.1, 1.9, 3.05])
    depth = rng.uniform(2.0, 5.0, (h, w))
    depth[0, :4] = np.inf
    ids = np.where(np.arange(w)[None, :] < w // 2, 1, 2).repeat(h, 0).astype(np.uint32)
    m1 = {1: pose([0.1, 0.2, 0.3], [0.5, 0.0, -1.0]), 2: pose([0.0, 0.0, 1.0], [2.0, 1.0, 0.0])}
    m2 = {1: pose([0.15, 0.18, 0.36], [0.55, 0.02, -1.03]), 2: m1[2]}
    motions = world_motions(m1, m2)
    sf = scene_flow(depth, ids, c2w, k, motions)
    assert np.isnan(sf[0, :4]).all() and np.isfinite(sf[1:]).all()
    assert (sf[ids == 2] == 0).all()
    assert np.linalg.norm(sf[1:][ids[1:] == 1], axis=-1).min() > 0.01
    ours = flow_from_scene_flow(depth, sf, c2w, k, c2w2, k2)
    theirs, front = reprojection_flow(depth, c2w, k, c2w2, k2, ids, motions)
    ok = np.isfinite(depth) & front
    np.testing.assert_allclose(ours[ok], theirs[ok], atol=1e-5)  # scene flow is float32
    only_one = scene_flow(depth, ids, c2w, k, {1: motions[1]})  # id 2 without a motion: NaN
    assert np.isnan(only_one[ids == 2]).all() and np.array_equal(
        only_one[ids == 1], sf[ids == 1], equal_nan=True
    )
