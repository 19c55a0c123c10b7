"""`camsim export bop`: the export read the way bop_toolkit reads a BOP-scenewise dataset agrees with the
closed-form truth of analytic card scenes (tests/synthetic_objects.py).

`read_like_bop_toolkit` follows bop_toolkit_lib (checked against the thodan/bop_toolkit repository:
inout.load_json(keys_to_int=True), load_scene_camera, load_scene_gt (cam_K, cam_R_* as 3x3, cam_t_* as
3x1), load_depth (16-bit PNG as float32), misc.project_pts (P = K [R | t], pixel centres at integer
coordinates, as OpenCV), misc.calc_2d_bbox ([x_min, y_min, x_max - x_min, y_max - y_min] over pixel
indices), depth x depth_scale = mm, masks IM_ID_GT_ID.png nonzero = object). Model points are the card's
local corners x its scale in mm. bop_toolkit_lib is not on PyPI (it installs from its repository): where it
is importable, `test_bop_toolkit_reads_the_export` runs its own loaders and checks on the export too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from clirun import run_ok
from synthetic_objects import CARDS_A, CARDS_B, Truth, write_objects_datasets, write_objects_sequence

from camsim import cli, transforms
from camsim.errors import DatasetError, UserInputError
from camsim.export.bop import choose_depth_scale, export_bop, model_to_camera, plan_bop

FORMAT = Path(__file__).parent.parent / "docs" / "FORMAT.md"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# ------------------------------------------------------------------------------ bop_toolkit's read path


def load_json(path: Path) -> Any:
    """inout.load_json(path, keys_to_int=True): object keys that are integers become ints."""
    return json.loads(
        path.read_text(),
        object_hook=lambda d: {int(k) if k.lstrip("-").isdigit() else k: v for k, v in d.items()},
    )


def read_like_bop_toolkit(scene: Path) -> dict[str, Any]:
    cams = load_json(scene / "scene_camera.json")
    for c in cams.values():
        c["cam_K"] = np.array(c["cam_K"], np.float64).reshape(3, 3)
        c["cam_R_w2c"] = np.array(c["cam_R_w2c"], np.float64).reshape(3, 3)
        c["cam_t_w2c"] = np.array(c["cam_t_w2c"], np.float64).reshape(3, 1)
    gts = load_json(scene / "scene_gt.json")
    for im in gts.values():
        for gt in im:
            gt["cam_R_m2c"] = np.array(gt["cam_R_m2c"], np.float64).reshape(3, 3)
            gt["cam_t_m2c"] = np.array(gt["cam_t_m2c"], np.float64).reshape(3, 1)
    depth = {}
    for im_id, cam in cams.items():
        raw = cv2.imread(str(scene / "depth" / f"{im_id:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert raw is not None and raw.dtype == np.uint16
        depth[im_id] = raw.astype(np.float32) * cam["depth_scale"]  # mm
    masks = {
        (im_id, gt_id): cv2.imread(
            str(scene / "mask_visib" / f"{im_id:06d}_{gt_id:06d}.png"), cv2.IMREAD_UNCHANGED
        )
        > 0
        for im_id, im in gts.items()
        for gt_id in range(len(im))
    }
    return {
        "camera": cams,
        "gt": gts,
        "info": load_json(scene / "scene_gt_info.json"),
        "depth": depth,
        "masks": masks,
    }


def read_mask(path: Path) -> np.ndarray:
    """A BOP mask PNG as bop_toolkit's inout.load_depth reads it, nonzero = the object."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw is not None, path
    return raw > 0


def project_pts(pts: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """misc.project_pts: P = K [R | t] applied to homogeneous points, divided by the third row."""
    P = K @ np.hstack((R, t.reshape(3, 1)))
    h = P @ np.hstack((pts, np.ones((len(pts), 1)))).T
    return (h[:2] / h[2]).T


def calc_2d_bbox(mask: np.ndarray) -> list[int]:
    ys, xs = mask.nonzero()
    if not len(xs):
        return [-1, -1, -1, -1]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min()), int(ys.max() - ys.min())]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def export(tmp_path: Path) -> tuple[Path, dict[str, Truth]]:
    truths = {
        "a": write_objects_sequence(tmp_path / "in" / "a", CARDS_A, n=3),
        "b": write_objects_sequence(tmp_path / "in" / "b", CARDS_B, n=2, first_number=7),
    }
    export_bop(plan_bop(tmp_path / "in", tmp_path / "bop"))
    return tmp_path / "bop", truths


def scenes_of(out: Path, truths: dict[str, Truth]) -> list[tuple[Path, Truth, dict[str, Any]]]:
    record = json.loads((out / "camsim_export.json").read_text())
    return [(out / folder, truths[s["sequence"]], s) for folder, s in record["scenes"].items()]


# ------------------------------------------------------------------------------ tests


def test_poses_project_model_points_onto_camsim_pixels(export):
    out, truths = export
    record = json.loads((out / "camsim_export.json").read_text())
    assert record["obj_ids"] == {"1": "box", "2": "mug", "3": "plate"}
    assert list(record["scenes"]) == ["train/000000", "train/000001"]
    worst = 0.0
    for scene, truth, entry in scenes_of(out, truths):
        bop = read_like_bop_toolkit(scene)
        assert sorted(bop["camera"]) == list(range(len(truth.c2w)))
        for im_id, gts in bop["gt"].items():
            cam, c2w = bop["camera"][im_id], truth.c2w[im_id]
            K = cam["cam_K"]
            in_view = [c for c in truth.cards if truth.projected[im_id][c.id].any()]
            assert [g["camsim_object_id"] for g in gts] == [c.id for c in in_view]
            for gt, card in zip(gts, in_view, strict=True):
                assert record["obj_ids"][str(gt["obj_id"])] == card.category
                R = gt["cam_R_m2c"]
                np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
                assert np.linalg.det(R) == pytest.approx(1.0)
                scale = np.array(entry["objects"][str(card.id)]["scale"])
                np.testing.assert_allclose(scale, card.scale, rtol=1e-12)
                local = card.corners_local()
                model_mm = local * scale * 1000.0
                world = local @ card.pose(im_id)[:3, :3].T + card.pose(im_id)[:3, 3]
                expect = (
                    transforms.project(
                        world,
                        c2w,
                        transforms.intrinsics(
                            json.loads((truth.folder / "transforms.json").read_text()), im_id
                        ),
                    )[0]
                    - 0.5
                )
                got = project_pts(model_mm, K, R, gt["cam_t_m2c"])
                worst = max(worst, float(np.abs(got - expect).max()))
                # The camera's world-to-camera pose places the same world points on the same pixels.
                via_world = project_pts(world * 1000.0, K, cam["cam_R_w2c"], cam["cam_t_w2c"])
                np.testing.assert_allclose(via_world, expect, atol=1e-6)
    assert worst < 1e-6, worst


def test_depth_is_planar_millimetres_times_depth_scale_and_unprojects_onto_the_objects(export):
    out, truths = export
    for scene, truth, entry in scenes_of(out, truths):
        bop = read_like_bop_toolkit(scene)
        for im_id, depth_mm in bop["depth"].items():
            cam = bop["camera"][im_id]
            scale = cam["depth_scale"]
            assert scale == entry["depth_scale"] == 0.1
            z = truth.depth[im_id]
            finite = np.isfinite(z)
            assert ((depth_mm > 0) == finite).all(), "0 exactly where there is no surface"
            assert np.abs(depth_mm[finite] - z[finite] * 1000.0).max() <= scale / 2 + 1e-3
            # BOP's unprojection (pixel centres at integer coordinates) of each visible pixel, mapped back
            # into the object's model frame, lies on the card.
            K = cam["cam_K"]
            ys, xs = np.mgrid[0 : z.shape[0], 0 : z.shape[1]]
            for gt_id, gt in enumerate(bop["gt"][im_id]):
                mask = bop["masks"][(im_id, gt_id)]
                if not mask.any():
                    continue
                d = depth_mm[mask]
                pts = np.stack(
                    [(xs[mask] - K[0, 2]) * d / K[0, 0], (ys[mask] - K[1, 2]) * d / K[1, 1], d], -1
                )
                model = (pts - gt["cam_t_m2c"].T) @ gt["cam_R_m2c"]  # R^T (p - t)
                card = next(c for c in truth.cards if c.id == gt["camsim_object_id"])
                local = model / (np.array(card.scale) * 1000.0)
                assert np.abs(local[:, 2]).max() < 1e-3  # on the card's plane (0.05 mm depth rounding)
                assert (np.abs(local[:, 0]) <= card.half[0] + 1e-3).all()
                assert (np.abs(local[:, 1]) <= card.half[1] + 1e-3).all()


def test_visible_masks_and_gt_info_match_the_closed_form(export):
    out, truths = export
    seen_hidden = False
    for scene, truth, _ in scenes_of(out, truths):
        bop = read_like_bop_toolkit(scene)
        for im_id, gts in bop["gt"].items():
            infos = bop["info"][im_id]
            assert len(infos) == len(gts)
            for gt_id, (gt, info) in enumerate(zip(gts, infos, strict=True)):
                k = gt["camsim_object_id"]
                visible, amodal = truth.seg[im_id] == k, truth.projected[im_id][k]
                np.testing.assert_array_equal(bop["masks"][(im_id, gt_id)], visible)
                assert info["px_count_visib"] == int(visible.sum())
                assert info["px_count_all"] == int(amodal.sum())
                assert info["px_count_valid"] == int((amodal & (bop["depth"][im_id] > 0)).sum())
                assert info["visib_fract"] == pytest.approx(visible.sum() / amodal.sum())
                assert info["bbox_visib"] == calc_2d_bbox(visible)
                assert info["bbox_obj"] == (calc_2d_bbox(amodal) if visible.any() else [-1, -1, -1, -1])
                seen_hidden |= not visible.any()
    assert seen_hidden, "the card right behind Box.A is listed (in view, fully occluded)"


def test_splits_scene_ids_and_split_type(tmp_path, capsys):
    write_objects_datasets(tmp_path / "DATASETS")
    code, out, err = run_cli(capsys, "bop", tmp_path / "DATASETS", tmp_path / "bop", "--split-type", "pbr")
    assert code == 0, err
    assert "3 scene(s), 6 images" in out and "obj_ids 1=box, 2=mug, 3=plate" in out
    record = json.loads((tmp_path / "bop" / "camsim_export.json").read_text())
    assert {k: v["sequence"] for k, v in record["scenes"].items()} == {
        "train_pbr/000000": "alpha/000001-000002-x1",
        "val_pbr/000000": "beta/000001-000002-x1",
        "train_pbr/000001": "gamma/000001-000002-x1",
    }
    code, _, err = run_cli(capsys, "bop", tmp_path / "DATASETS", tmp_path / "val", "--split", "val")
    assert code == 0, err
    record = json.loads((tmp_path / "val" / "camsim_export.json").read_text())
    assert list(record["scenes"]) == ["val/000000"]
    assert record["obj_ids"] == {"1": "box", "2": "mug", "3": "plate"}, (
        "other splits' categories keep their ids"
    )


def test_depth_scale_grows_with_the_farthest_depth_and_max_depth_drops(tmp_path):
    assert (
        choose_depth_scale(6.5) == 0.1 and choose_depth_scale(6.6) == 0.2 and choose_depth_scale(60.0) == 1.0
    )
    assert choose_depth_scale(0.0) == 0.1 and choose_depth_scale(float("inf")) == 0.1
    truth = write_objects_sequence(tmp_path / "seq", CARDS_B, n=1)
    result = export_bop(plan_bop(tmp_path / "seq", tmp_path / "far", max_depth=4.0))
    assert result.dropped_depths > 0 and result.depth_scales == {0.1}
    # The Crate (4.5 m) lost its depth, the Plate (3.5 m) in front of part of it kept it: px_count_valid
    # counts the Crate's amodal pixels that still have a depth (those behind the Plate).
    bop = read_like_bop_toolkit(tmp_path / "far" / "train" / "000000")
    for gt, info in zip(bop["gt"][0], bop["info"][0], strict=True):
        amodal = truth.projected[0][gt["camsim_object_id"]]
        assert info["px_count_valid"] == int((amodal & (bop["depth"][0] > 0)).sum())
    crate = bop["info"][0][[g["camsim_object_id"] for g in bop["gt"][0]].index(2)]
    assert 0 < crate["px_count_valid"] < crate["px_count_all"]
    result = export_bop(plan_bop(tmp_path / "seq", tmp_path / "coarse", depth_scale=5.0))
    cams = load_json(tmp_path / "coarse" / "train" / "000000" / "scene_camera.json")
    assert cams[0]["depth_scale"] == 5.0 and result.dropped_depths == 0


def test_mirrored_objects_keep_a_rotation_and_sheared_ones_are_refused():
    m = np.eye(4)
    m[:3, :3] = np.diag([-2.0, 1.0, 3.0])
    m[:3, 3] = (0.1, 0.2, -1.0)
    R, t, scale = model_to_camera(m)
    np.testing.assert_allclose(scale, [-2.0, 1.0, 3.0])
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(t, [100.0, -200.0, 1000.0])  # OpenCV axes, mm
    sheared = np.eye(4)
    sheared[:3, :3] = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="sheared"):
        model_to_camera(sheared)


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_refuses_what_it_cannot_export_exactly(tmp_path, capsys):
    write_objects_sequence(tmp_path / "old", CARDS_B, n=1, annotations=False)
    code, _, err = run_cli(capsys, "bop", tmp_path / "old", tmp_path / "out")
    assert code == 2 and "no per-frame annotations" in err
    seq = tmp_path / "seq"
    write_objects_sequence(seq, CARDS_B, n=1)
    _edit_json(seq / "transforms.json", lambda d: d.update(k1=0.1))
    with pytest.raises(DatasetError, match="pinhole"):
        plan_bop(seq, tmp_path / "out")
    write_objects_sequence(seq, CARDS_B, n=1)
    _edit_json(seq / "transforms.json", lambda d: [f.pop("depth_file_path") for f in d["frames"]])
    with pytest.raises(DatasetError, match="no depth"):
        plan_bop(seq, tmp_path / "out")
    write_objects_sequence(seq, CARDS_B, n=1)
    _edit_json(seq / "objects.json", lambda d: d["frames"][0]["annotations"].pop("1"))
    with pytest.raises(DatasetError, match="object 1 is in the segmentation but has no annotation"):
        export_bop(plan_bop(seq, tmp_path / "out"))
    write_objects_sequence(seq, CARDS_B, n=1)
    _edit_json(seq / "objects.json", lambda d: d["frames"][0]["annotations"]["1"].update(projected_pixels=3))
    with pytest.raises(DatasetError, match="its annotation projects it onto 3"):
        export_bop(plan_bop(seq, tmp_path / "out"))
    with pytest.raises(UserInputError, match="letters and digits"):
        plan_bop(seq, tmp_path / "out", split_type="a/b")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "seq"], "no staging folder left"


def test_npy_sequences_export_the_same_files_and_deforming_objects_are_noted(tmp_path):
    write_objects_sequence(tmp_path / "seq", CARDS_A, n=2)
    _edit_json(tmp_path / "seq" / "objects.json", lambda d: d["objects"]["2"].update(deforming=True))
    run_ok("convert", "img-to-npy", tmp_path / "seq", tmp_path / "npy")
    notes = export_bop(plan_bop(tmp_path / "seq", tmp_path / "from-img")).notes
    assert any("object(s) [2] deform" in n for n in notes), notes
    export_bop(plan_bop(tmp_path / "npy", tmp_path / "from-npy"))
    img = sorted(p.relative_to(tmp_path / "from-img") for p in (tmp_path / "from-img" / "train").rglob("*"))
    npy = sorted(p.relative_to(tmp_path / "from-npy") for p in (tmp_path / "from-npy" / "train").rglob("*"))
    assert img == npy and len(img) > 10
    for rel in img:
        if (tmp_path / "from-img" / rel).is_file():
            assert (tmp_path / "from-img" / rel).read_bytes() == (tmp_path / "from-npy" / rel).read_bytes(), (
                rel
            )


def test_an_id_drawn_several_times_or_without_geometry_is_left_out_and_said(tmp_path):
    seq = tmp_path / "seq"
    truth = write_objects_sequence(seq, CARDS_B, n=2)

    def change(data: dict) -> None:
        data["frames"][1]["annotations"]["1"].update(instances=3, pose_camera=None, projected_pixels=None)
        data["frames"][0]["annotations"]["2"].update(projected_pixels=None, bbox_amodal=None)

    _edit_json(seq / "objects.json", change)
    notes = export_bop(plan_bop(seq, tmp_path / "bop")).notes
    assert any(
        "object 1 (Plate) is left out of scene_gt in frames where it is drawn 3 times" in n for n in notes
    )
    assert any(
        "object 2 (Crate) is left out of scene_gt in frames where its rendered surface" in n for n in notes
    )
    bop = read_like_bop_toolkit(tmp_path / "bop" / "train" / "000000")
    assert [g["camsim_object_id"] for g in bop["gt"][0]] == [1] and [
        g["camsim_object_id"] for g in bop["gt"][1]
    ] == [2]
    np.testing.assert_array_equal(bop["masks"][(1, 0)], truth.seg[1] == 2)  # mask names follow the list


def test_overwrite_replaces_only_a_previous_bop_export(tmp_path):
    write_objects_sequence(tmp_path / "seq", CARDS_B, n=1)
    out = tmp_path / "bop"
    export_bop(plan_bop(tmp_path / "seq", out))
    with pytest.raises(UserInputError, match="not empty"):
        plan_bop(tmp_path / "seq", out)
    export_bop(plan_bop(tmp_path / "seq", out, overwrite=True))
    (out / "models").mkdir()
    with pytest.raises(UserInputError, match="holds models"):
        plan_bop(tmp_path / "seq", out, overwrite=True)


def test_every_key_and_file_written_is_documented(export):
    out, _ = export
    text = FORMAT.read_text()
    start = text.index("### BOP export")
    ends = [i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if i > 0]
    section = text[start : min(ends, default=len(text))]
    documented = {
        w for span in re.findall(r"`([^`]+)`", section) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)
    }
    record = json.loads((out / "camsim_export.json").read_text())
    scene = out / "train" / "000000"
    written = (
        set(record)
        | set(record["scenes"]["train/000000"])
        | set(record["scenes"]["train/000000"]["objects"]["1"])
    )
    for name in ("scene_camera.json", "scene_gt.json", "scene_gt_info.json"):
        content = json.loads((scene / name).read_text())["0"]
        written |= set(content) if isinstance(content, dict) else set(content[0])
    assert not sorted(written - documented), (
        f"FORMAT.md (BOP export) does not name {sorted(written - documented)}"
    )
    for name in ("rgb/", "depth/", "mask_visib/", "scene_camera.json", "scene_gt.json", "scene_gt_info.json"):
        assert name in section, name


def test_bop_toolkit_reads_the_export(export):
    """bop_toolkit_lib's own loaders and checks (skipped where it is not installed: it is not on PyPI;
    `pip install git+https://github.com/thodan/bop_toolkit` brings it)."""
    bt = pytest.importorskip("bop_toolkit_lib", reason="bop_toolkit_lib is not installed (not on PyPI)")
    from bop_toolkit_lib import inout, misc

    out, truths = export
    results = []
    for scene, truth, _ in scenes_of(out, truths):
        cams = inout.load_scene_camera(str(scene / "scene_camera.json"))
        gts = inout.load_scene_gt(str(scene / "scene_gt.json"))
        infos = inout.load_json(str(scene / "scene_gt_info.json"), keys_to_int=True)
        ours = read_like_bop_toolkit(scene)
        for im_id, gt_list in gts.items():
            np.testing.assert_array_equal(cams[im_id]["cam_K"], ours["camera"][im_id]["cam_K"])
            depth = inout.load_depth(str(scene / "depth" / f"{im_id:06d}.png")) * cams[im_id]["depth_scale"]
            np.testing.assert_array_equal(depth, ours["depth"][im_id])
            for gt_id, gt in enumerate(gt_list):
                mask = inout.load_depth(str(scene / "mask_visib" / f"{im_id:06d}_{gt_id:06d}.png")) > 0
                if mask.any():
                    ys, xs = mask.nonzero()
                    assert [int(v) for v in misc.calc_2d_bbox(xs, ys, truth.seg[im_id].shape[::-1])] == infos[
                        im_id
                    ][gt_id]["bbox_visib"]
                results.append(
                    {
                        "scene_id": int(scene.name),
                        "im_id": im_id,
                        "obj_id": gt["obj_id"],
                        "score": 1.0,
                        "R": gt["cam_R_m2c"],
                        "t": gt["cam_t_m2c"],
                        "time": 1.0,
                    }
                )
    path = out.parent / "results_test-bop.csv"
    inout.save_bop_results(str(path), results)
    passed, message = inout.check_bop_results(str(path))
    assert passed, message
    print(f"bop_toolkit_lib {getattr(bt, '__version__', '(no version)')}")


@pytest.mark.blender
def test_a_real_render_exports_to_bop_and_coco(build_scene, render, tmp_path, capsys):
    """tests/scenes/annotated.py rendered for real (posed, occluded, truncated, deforming objects, categories
    on objects, data and collections): both exports agree with the render's own files and annotations."""
    from conftest import FAST
    from pycocotools.coco import COCO

    from camsim.fileio import read_exr

    blend = build_scene("export-annotated", script=Path(__file__).parent / "scenes" / "annotated.py")
    seq = render(
        blend,
        "export-annotated",
        config=FAST.replace(width=96, height=72, amodal_masks=True),
        frame_start=1,
        frame_end=2,
    )
    meta = transforms.read(seq)
    objects = json.loads((seq / "objects.json").read_text())
    seg = [read_exr(seq / fr["segmentation_file_path"]) for fr in meta["frames"]]
    depth = [read_exr(seq / fr["depth_file_path"]).astype(np.float64) for fr in meta["frames"]]
    category = {int(k): o["category"] for k, o in objects["objects"].items()}
    code, out, err = run_cli(capsys, "bop", seq, tmp_path / "bop")
    assert code == 0, err
    assert "deform" in out, out  # the shape-keyed Blob
    record = json.loads((tmp_path / "bop" / "camsim_export.json").read_text())
    bop = read_like_bop_toolkit(tmp_path / "bop" / "train" / "000000")
    checked = amodal_pixels = 0
    for i in range(len(meta["frames"])):
        anns = objects["frames"][i]["annotations"]
        K = transforms.intrinsics(meta, i)
        cam = bop["camera"][i]
        finite = np.isfinite(depth[i])
        assert ((bop["depth"][i] > 0) == finite).all()
        assert (
            np.abs(bop["depth"][i][finite] - depth[i][finite] * 1000.0).max() <= cam["depth_scale"] / 2 + 1e-2
        )
        for gt_id, (gt, info) in enumerate(zip(bop["gt"][i], bop["info"][i], strict=True)):
            k = gt["camsim_object_id"]
            ann = anns[str(k)]
            assert record["obj_ids"][str(gt["obj_id"])] == category[k]
            np.testing.assert_array_equal(bop["masks"][(i, gt_id)], seg[i] == k)
            assert info["px_count_visib"] == ann["visible_pixels"]
            assert info["px_count_all"] == ann["projected_pixels"]
            # the amodal mask/: holds the visible mask, counts px_count_all, spans bbox_obj (the annotation's)
            full = read_mask(tmp_path / "bop" / "train" / "000000" / "mask" / f"{i:06d}_{gt_id:06d}.png")
            assert not (bop["masks"][(i, gt_id)] & ~full).any()
            assert info["px_count_all"] == int(full.sum())
            assert info["bbox_obj"] == calc_2d_bbox(full)
            x0, y0, x1, y1 = ann["bbox_amodal"]
            assert calc_2d_bbox(full) == [x0, y0, x1 - 1 - x0, y1 - 1 - y0]
            amodal_pixels += int((full & ~bop["masks"][(i, gt_id)]).sum())
            if ann["bbox_visible"]:
                x0, y0, x1, y1 = ann["bbox_visible"]
                assert info["bbox_visib"] == [x0, y0, x1 - 1 - x0, y1 - 1 - y0]
            # The 3-D box corners: BOP's model-to-image projection of the corners in the model frame, and its
            # world-to-image projection of their world position, land where camsim projects them, -0.5 px.
            pose = np.asarray(ann["pose_camera"])
            box_cam = np.asarray(ann["box_3d"]["camera"])
            local = (box_cam - pose[:3, 3]) @ np.linalg.inv(pose[:3, :3]).T
            scale = np.asarray(record["scenes"]["train/000000"]["objects"][str(k)]["scale"])
            expect = (
                np.stack(
                    [
                        K[0, 0] * box_cam[:, 0] / -box_cam[:, 2] + K[0, 2],
                        K[1, 2] - K[1, 1] * box_cam[:, 1] / -box_cam[:, 2],
                    ],
                    1,
                )
                - 0.5
            )
            got = project_pts(local * scale * 1000.0, cam["cam_K"], gt["cam_R_m2c"], gt["cam_t_m2c"])
            np.testing.assert_allclose(got, expect, atol=1e-6)
            world = np.asarray(ann["box_3d"]["world"]) * 1000.0
            # through the world frame: the camera's float32 matrix from Blender adds a few 1e-6 px
            np.testing.assert_allclose(
                project_pts(world, cam["cam_K"], cam["cam_R_w2c"], cam["cam_t_w2c"]), expect, atol=1e-5
            )
            checked += 1
    assert checked >= 4, checked
    assert amodal_pixels > 100, amodal_pixels  # the half-hidden Square's hidden half is in its mask/
    code, out, err = run_cli(capsys, "coco", seq, tmp_path / "coco")
    assert code == 0, err
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    assert set(names.values()) == set(meta["categories"].values())
    for img in coco.dataset["images"]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert sorted(a["camsim_object_id"] for a in anns) == sorted(
            int(k) for k in np.unique(seg[img["frame_id"]]) if k
        )
        for a in anns:
            np.testing.assert_array_equal(coco.annToMask(a), seg[img["frame_id"]] == a["camsim_object_id"])
            assert names[a["category_id"]] == category[a["camsim_object_id"]]
