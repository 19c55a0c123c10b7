"""Per-object annotations and category ids against closed-form truth (issue 16, items 1 and 2).

One tiny render of tests/scenes/annotated.py: a box with keyframed translation and rotation (its pose in
closed form; marker spheres rendered at its bound-box corners are the oracle for its projected 3-D box), a
square half hidden by an occluder whose edge projects onto the square's centre column (visibility 0.5), an
occluder reaching past the frame (truncated), a shape-keyed square (deforming), categories from a custom
property on an object and on its data, from a collection, and the default.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST
from scipy.spatial.transform import Rotation

from camsim import transforms
from camsim.fileio import read_exr
from camsim.loader import Dataset
from camsim.resume import Reuse
from camsim.validate import validate_dataset

pytestmark = pytest.mark.blender

SCENE = Path(__file__).parent / "scenes" / "annotated.py"
CONFIG = FAST.replace(width=96, height=72, semantics=True)
BOX_START, BOX_VELOCITY = (0.45, 0.15, -2.5), (0.01, -0.005, 0.0)  # as in scenes/annotated.py
BOX_ROTATION, BOX_SPIN = (0.4, 0.6, 0.2), (0.05, 0.03, 0.02)
BLOB_START, BLOB_SIZE, BLOB_SLIDE = (0.0, -0.55, -3.0), 0.4, 0.3
FRAMES = (1, 3)


@dataclass(frozen=True)
class Rendered:
    blend: Path
    out: Path
    meta: dict
    objects: dict
    """objects.json"""
    ids: dict[str, int]
    """segmentation id by object name"""


@pytest.fixture(scope="module")
def rendered(build_scene, render) -> Rendered:
    blend = build_scene("annotated", script=SCENE)
    out = render(blend, "annotated", config=CONFIG, frame_start=FRAMES[0], frame_end=FRAMES[1])
    meta = transforms.read(out)
    objects = json.loads((out / "objects.json").read_text())
    return Rendered(blend, out, meta, objects, {name: int(i) for i, name in meta["segmentation_ids"].items()})


def _frames(r: Rendered):
    """Per frame: its transforms.json entry, its annotations (by id) and its segmentation."""
    for fr, ob in zip(r.meta["frames"], r.objects["frames"], strict=True):
        seg = read_exr(r.out / fr["segmentation_file_path"])
        yield fr, ob["annotations"], seg


def _project(points: np.ndarray, meta: dict) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    return np.stack(
        [
            meta["fl_x"] * p[:, 0] / -p[:, 2] + meta["cx"],
            meta["cy"] - meta["fl_y"] * p[:, 1] / -p[:, 2],
        ],
        1,
    )


def test_pose_of_a_keyframed_object_is_its_closed_form_to_1e_6(rendered):
    for fr, ann, _ in _frames(rendered):
        t = fr["frame_number"] - 1
        truth = np.eye(4)
        truth[:3, :3] = Rotation.from_euler("xyz", np.add(BOX_ROTATION, np.multiply(BOX_SPIN, t))).as_matrix()
        truth[:3, 3] = np.add(BOX_START, np.multiply(BOX_VELOCITY, t))
        pose = np.asarray(ann[str(rendered.ids["Boxed"])]["pose_camera"])
        assert np.abs(pose - truth).max() < 1e-6, (t, np.abs(pose - truth).max())


def test_3d_box_corners_project_onto_the_rendered_corner_markers(rendered):
    for fr, ann, seg in _frames(rendered):
        box = ann[str(rendered.ids["Boxed"])]["box_3d"]
        corners = _project(np.asarray(box["camera"]), rendered.meta)
        for k, (u, v) in enumerate(corners):
            rows, cols = np.nonzero(seg == rendered.ids[f"Marker{k}"])
            assert len(rows) >= 8, f"marker {k} hardly visible"
            centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
            assert np.hypot(*(centre - (u, v))) < 0.5, (k, centre, (u, v))
        c2w = np.asarray(fr["transform_matrix"])  # the world corners seen from the frame's camera
        cam = (np.asarray(box["world"]) - c2w[:3, 3]) @ c2w[:3, :3]
        np.testing.assert_allclose(cam, box["camera"], atol=1e-6)


def test_2d_visible_box_and_count_are_the_segmentations(rendered):
    for _, ann, seg in _frames(rendered):
        for i in rendered.ids.values():
            rows, cols = np.nonzero(seg == i)
            a = ann[str(i)]
            assert a["visible_pixels"] == len(rows)
            expected = (
                [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
                if len(rows)
                else None
            )
            assert a["bbox_visible"] == expected


def test_unoccluded_objects_project_onto_exactly_their_rendered_pixels(rendered):
    """The host's rasterisation of each object's evaluated triangles at pixel centres against Cycles' own
    pixel-centre sample, for every object nothing hides: the marker spheres, the occluder, the shape-keyed
    square and a cube subdivided for the render only and hidden in the viewport only."""
    for _, ann, seg in _frames(rendered):
        for name in [f"Marker{k}" for k in range(8)] + ["Occluder", "Blob", "Smooth"]:
            a = ann[str(rendered.ids[name])]
            assert a["instances"] == 1 and a["visible_pixels"] > 8, (name, a)
            assert a["projected_pixels"] == a["visible_pixels"], (name, a)
            rows, cols = np.nonzero(seg == rendered.ids[name])
            x0, y0, x1, y1 = a["bbox_amodal"]
            assert x0 <= cols.min() and y0 <= rows.min() and x1 >= cols.max() + 1 and y1 >= rows.max() + 1


def test_half_occluded_square_has_visibility_one_half(rendered):
    for _, ann, _ in _frames(rendered):
        a = ann[str(rendered.ids["Square"])]
        assert abs(a["visibility"] - 0.5) <= 0.01, a
        assert a["visible_pixels"] == pytest.approx(
            a["projected_pixels"] / 2, abs=0.01 * a["projected_pixels"]
        )
        assert a["bbox_amodal"][0] < a["bbox_visible"][0] and a["bbox_amodal"][2] == a["bbox_visible"][2]
        assert a["truncated"] is False


def test_an_object_reaching_past_the_frame_is_truncated(rendered):
    for _, ann, _ in _frames(rendered):
        occluder = ann[str(rendered.ids["Occluder"])]
        assert occluder["truncated"] is True and occluder["bbox_amodal"][0] == 0
        assert all(ann[str(rendered.ids[f"Marker{k}"])]["truncated"] is False for k in range(8))
        assert all(ann[str(rendered.ids[f"Marker{k}"])]["instances"] == 1 for k in range(8))
        boxed = ann[str(rendered.ids["Boxed"])]  # hidden from camera rays: pose and box, nothing projected
        assert (
            boxed["projected_pixels"] is None and boxed["visibility"] is None and boxed["truncated"] is None
        )


def test_categories_from_a_property_on_the_object_or_its_data_a_collection_or_the_default(rendered):
    names = {
        "1": "Markers",
        "2": "Posts",
        "3": "chair",
        "4": "object",
        "5": "table",
    }  # sorted: capitals first
    assert rendered.meta["categories"] == names
    assert rendered.objects["format"] == "camsim-objects/2"
    by_name = {o["name"]: o for o in rendered.objects["objects"].values()}
    expected = {
        "Square": "chair",
        "Occluder": "table",
        "Marker0": "Markers",
        "Boxed": "object",
        "Blob": "object",
        "Post": "Posts",
    }
    for name, category in expected.items():
        assert by_name[name]["category"] == category
        assert rendered.meta["categories"][str(by_name[name]["category_id"])] == category


def test_semantic_map_is_the_segmentation_through_the_category_of_each_id(rendered):
    lookup = np.zeros(max(int(i) for i in rendered.objects["objects"]) + 1, np.uint32)
    for i, o in rendered.objects["objects"].items():
        lookup[int(i)] = o["category_id"]
    for fr in rendered.meta["frames"]:
        seg = read_exr(rendered.out / fr["segmentation_file_path"])
        sem = read_exr(rendered.out / fr["semantic_file_path"])
        assert sem.dtype == np.uint32
        np.testing.assert_array_equal(sem, lookup[seg])
        assert set(np.unique(sem)) == {0, 1, 2, 3, 4, 5}
    item = Dataset.from_path(rendered.out, ["semantic", "segmentation"])[0]  # the loader's modality
    np.testing.assert_array_equal(item["semantic"], lookup[item["segmentation"]])
    assert validate_dataset(rendered.out).ok


def test_a_shape_keyed_object_is_deforming_and_its_box_follows_its_evaluated_geometry(rendered):
    by_name = {o["name"]: o for o in rendered.objects["objects"].values()}
    assert by_name["Blob"]["deforming"] is True and by_name["Blob"]["rigid"] is False
    assert by_name["Square"]["deforming"] is False and by_name["Boxed"]["deforming"] is False
    for fr, ann, _ in _frames(rendered):
        slide = BLOB_SLIDE * (fr["frame_number"] - 1) / 10
        cam = np.asarray(ann[str(rendered.ids["Blob"])]["box_3d"]["camera"])
        half = BLOB_SIZE / 2
        lo = np.add(BLOB_START, (-half + slide, -half, 0.0))
        hi = np.add(BLOB_START, (half + slide, half, 0.0))
        np.testing.assert_allclose(cam.min(axis=0), lo, atol=1e-5)
        np.testing.assert_allclose(cam.max(axis=0), hi, atol=1e-5)


def test_frames_kept_by_a_resume_are_annotated_as_when_rendered(rendered, worker, tmp_path):
    from camsim.jobs import SequenceJob
    from camsim.render import render_sequence

    again = tmp_path / "again"
    shutil.copytree(rendered.out, again)
    (again / "transforms.json").unlink()
    (again / "objects.json").unlink()
    (
        again / rendered.meta["frames"][1]["file_path"]
    ).unlink()  # frame 2 is rendered again, frames 1 and 3 kept
    job = SequenceJob(scene=rendered.blend, output=again, settings=CONFIG.settings, frame_start=FRAMES[0],
                      frame_end=FRAMES[1], reuse=Reuse(resume=True))  # fmt: skip
    result = render_sequence(worker, job)
    assert result.frames_skipped == 2 and result.frames_rendered == 1
    assert json.loads((again / "objects.json").read_text()) == rendered.objects


def test_an_object_drawn_twice_has_its_visible_pixels_but_no_single_pose_or_projection(rendered):
    for _, ann, seg in _frames(rendered):
        post = ann[str(rendered.ids["Post"])]
        assert post["instances"] == 2 and post["visible_pixels"] == (seg == rendered.ids["Post"]).sum() > 8
        single = ("pose_camera", "box_3d", "bbox_amodal", "projected_pixels", "visibility", "truncated")
        assert all(post[k] is None for k in single)


# ------------------------------------------------------------------------------ through a lens distortion

BARREL = (-0.06, 0.0, 0.0, 0.0, 0.0)
"""Mild barrel distortion (about 1.5 px at the corners of a 96x72 frame): the Square's two halves, 0.16 and 0.36
focal lengths off axis, shrink alike to within 0.01 of their area."""


def _render_distorted(build_scene, render, name: str, **changes) -> Rendered:
    blend = build_scene("annotated", script=SCENE)
    config = CONFIG.replace(distortion=BARREL, semantics=False, **changes)
    out = render(blend, name, config=config, frame_start=FRAMES[0], frame_end=FRAMES[1])
    meta = transforms.read(out)
    objects = json.loads((out / "objects.json").read_text())
    return Rendered(blend, out, meta, objects, {name: int(i) for i, name in meta["segmentation_ids"].items()})


@pytest.fixture(scope="module")
def distorted(build_scene, render) -> Rendered:
    return _render_distorted(build_scene, render, "annotated-barrel", amodal_masks=True)


def test_through_a_distortion_unoccluded_objects_project_onto_exactly_their_rendered_pixels(distorted):
    """Each distorted pixel takes its coverage from its nearest pinhole sample, as the segmentation does."""
    assert distorted.meta["camera_model"] == "OPENCV" and distorted.meta["k1"] == BARREL[0]
    for _, ann, seg in _frames(distorted):
        for name in [f"Marker{k}" for k in range(8)] + ["Occluder", "Blob", "Smooth"]:
            a = ann[str(distorted.ids[name])]
            assert a["visible_pixels"] > 8 and a["projected_pixels"] == a["visible_pixels"], (name, a)
            rows, cols = np.nonzero(seg == distorted.ids[name])
            assert a["bbox_amodal"] == [
                int(cols.min()),
                int(rows.min()),
                int(cols.max()) + 1,
                int(rows.max()) + 1,
            ]
        occluder = ann[str(distorted.ids["Occluder"])]
        assert occluder["truncated"] is True and occluder["bbox_amodal"][0] == 0
        assert all(ann[str(distorted.ids[f"Marker{k}"])]["truncated"] is False for k in range(8))


def test_through_a_distortion_the_half_occluded_square_has_visibility_one_half(distorted):
    for _, ann, _ in _frames(distorted):
        a = ann[str(distorted.ids["Square"])]
        assert abs(a["visibility"] - 0.5) <= 0.01, a
        assert a["bbox_amodal"][0] < a["bbox_visible"][0] and a["bbox_amodal"][2] == a["bbox_visible"][2]
        assert a["truncated"] is False


def test_through_a_distortion_visible_boxes_are_the_segmentations(distorted):
    for _, ann, seg in _frames(distorted):
        for i in distorted.ids.values():
            rows, cols = np.nonzero(seg == i)
            a = ann[str(i)]
            assert a["visible_pixels"] == len(rows)
            expected = (
                [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
                if len(rows)
                else None
            )
            assert a["bbox_visible"] == expected


def test_through_a_distortion_3d_box_corners_project_through_the_lens_onto_the_corner_markers(distorted):
    """The markers' pixels take their ids from the nearest pinhole sample, which lies up to half a pixel from
    the pixel's own ray, by an offset that varies slowly over the frame: a marker's centroid moves by its
    pixels' mean offset (up to 0.5 px), which is added back before the comparison."""
    from camsim.lens_render import undistorted_positions

    camera = transforms.camera_of(distorted.meta)
    at = undistorted_positions(camera)  # each pixel's ray in the undistorted image
    snap = np.floor(at) + 0.5 - at  # to the pinhole pixel centre it takes its sample from
    for fr, ann, seg in _frames(distorted):
        box_3d = ann[str(distorted.ids["Boxed"])]["box_3d"]
        box = np.asarray(box_3d["camera"])
        uv, _, ok = transforms.project_points(np.asarray(box_3d["world"]), fr["transform_matrix"], camera)
        assert ok.all()
        pinhole = _project(box, distorted.meta)
        assert np.hypot(*(uv - pinhole).T).max() > 0.2  # the lens moves them (up to 0.3 px here)
        for k, (u, v) in enumerate(uv):
            rows, cols = np.nonzero(seg == distorted.ids[f"Marker{k}"])
            assert len(rows) >= 8, f"marker {k} hardly visible"
            centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5]) + snap[rows, cols].mean(axis=0)
            assert np.hypot(*(centre - (u, v))) < 0.5, (fr["frame_number"], k, centre, (u, v))


def test_amodal_masks_hold_the_visible_pixels_and_count_the_projected_ones(distorted):
    from camsim import amodal

    h, w = distorted.meta["h"], distorted.meta["w"]
    for fr, ob in zip(distorted.meta["frames"], distorted.objects["frames"], strict=True):
        assert ob["amodal_file_path"] == amodal.relpath(fr["frame_number"])
        assert ob["amodal_file_path"] in distorted.meta["checksums"]
        masks = amodal.read_masks(distorted.out / ob["amodal_file_path"], h, w)
        seg = read_exr(distorted.out / fr["segmentation_file_path"])
        for key, a in ob["annotations"].items():
            i = int(key)
            if not a["projected_pixels"]:
                assert i not in masks
                continue
            mask = masks[i]
            assert int(mask.sum()) == a["projected_pixels"]
            rows, cols = np.nonzero(mask)
            assert a["bbox_amodal"] == [
                int(cols.min()),
                int(rows.min()),
                int(cols.max()) + 1,
                int(rows.max()) + 1,
            ]
            assert not ((seg == i) & ~mask).any(), key
        square = masks[distorted.ids["Square"]]
        assert square.sum() > 1.9 * (seg == distorted.ids["Square"]).sum()
    assert validate_dataset(distorted.out).ok
