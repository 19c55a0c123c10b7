"""`camsim export coco`: pycocotools loads the export as-is, every mask decodes to the segmentation bit for
bit, and detections copied from the ground truth score AP 1 in COCOeval (so areas, boxes and RLEs agree
with pycocotools' own). Sequences are analytic card scenes (tests/synthetic_objects.py) whose segmentation,
categories and boxes are known in closed form."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from synthetic_objects import CARDS_A, CARDS_B, edges, write_objects_datasets, write_objects_sequence

from camsim import cli
from camsim.errors import DatasetError, UserInputError
from camsim.export.coco import export_coco, plan_coco
from camsim.fileio import read_image, write_image

FORMAT = Path(__file__).parent.parent / "docs" / "FORMAT.md"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def load(folder: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(folder / "annotations.json"))


@pytest.fixture
def two_sequences(tmp_path: Path):
    """Two sequences whose own category ids disagree (mug is 2 in `a`, plate is 2 in `b`)."""
    a = write_objects_sequence(tmp_path / "in" / "a", CARDS_A, n=3)
    b = write_objects_sequence(tmp_path / "in" / "b", CARDS_B, n=2, first_number=7)
    return tmp_path / "in", {"a": a, "b": b}


def test_masks_decode_to_the_segmentation_and_categories_merge_by_name(two_sequences, tmp_path, capsys):
    src, truths = two_sequences
    code, out, err = run_cli(capsys, "coco", src, tmp_path / "coco")
    assert code == 0, err
    assert "5 images from 2 sequence(s)" in out and "3 categories (box, mug, plate)" in out
    coco = load(tmp_path / "coco")
    cats = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    assert cats == {"box": 1, "mug": 2, "plate": 3}
    videos = {v["name"]: v["id"] for v in coco.dataset["videos"]}
    assert videos == {"a": 1, "b": 2}
    tracks: dict[tuple[str, int], int] = {}
    for img in coco.loadImgs(coco.getImgIds()):
        truth = truths[img["sequence"]]
        i = img["frame_id"]
        assert img["video_id"] == videos[img["sequence"]]
        assert img["frame_number"] == truth.frame_numbers[i]
        assert (img["width"], img["height"]) == (48, 40)
        frame = read_image(tmp_path / "coco" / img["file_name"])
        np.testing.assert_array_equal(
            frame, read_image(truth.folder / f"frames/frame_{img['frame_number']:06d}.png")
        )
        seg = truth.seg[i]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert sorted(a["camsim_object_id"] for a in anns) == sorted(int(k) for k in np.unique(seg) if k)
        for a in anns:
            k = a["camsim_object_id"]
            mask = seg == k
            np.testing.assert_array_equal(coco.annToMask(a), mask.astype(np.uint8))
            assert a["area"] == int(mask.sum()) == int(mask_utils.area(coco.annToRLE(a)))
            x0, y0, x1, y1 = edges(mask)
            assert a["bbox"] == [x0, y0, x1 - x0, y1 - y0]
            assert a["bbox"] == mask_utils.toBbox(coco.annToRLE(a)).tolist()
            card = next(c for c in truth.cards if c.id == k)
            assert a["category_id"] == cats[card.category] and a["iscrowd"] == 0
            assert a["sequence"] == img["sequence"] and a["video_id"] == img["video_id"]
            assert tracks.setdefault((img["sequence"], k), a["instance_id"]) == a["instance_id"]
    assert len(set(tracks.values())) == len(tracks), "one instance_id per object per sequence"
    assert ("a", 4) not in tracks and ("a", 5) not in tracks, "hidden and out-of-view objects have no mask"
    record = json.loads((tmp_path / "coco" / "camsim_export.json").read_text())
    assert record["format"] == "camsim-coco/1" and record["categories"] == {
        "1": "box",
        "2": "mug",
        "3": "plate",
    }
    assert record["sequences"]["b"] == {"video_id": 2, "images": 2, "split": None}


def test_detections_copied_from_the_ground_truth_score_ap_1(two_sequences, tmp_path):
    src, _ = two_sequences
    export_coco(plan_coco(src, tmp_path / "coco"))
    gt = load(tmp_path / "coco")
    for iou_type in ("segm", "bbox"):
        keep = ("image_id", "category_id", "segmentation" if iou_type == "segm" else "bbox")
        results = [{**{k: a[k] for k in keep}, "score": 1.0} for a in gt.dataset["annotations"]]
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(results)
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0), (iou_type, ev.stats)
        if iou_type == "segm":  # loadRes recomputes area and bbox from the RLE: ours are the same
            for a in dt.dataset["annotations"]:
                orig = gt.anns[a["id"]]
                assert a["area"] == orig["area"] and np.asarray(a["bbox"]).tolist() == orig["bbox"]


def test_frames_are_hard_linked_or_copied_and_16_bit_frames_rounded(tmp_path):
    write_objects_sequence(tmp_path / "seq8", n=1)
    write_objects_sequence(tmp_path / "seq16", n=1, bit_depth=16)
    src8 = tmp_path / "seq8" / "frames" / "frame_000001.png"
    export_coco(plan_coco(tmp_path / "seq8", tmp_path / "linked"))
    linked = tmp_path / "linked" / "images" / "seq8" / "frame_000001.png"
    assert os.stat(linked).st_ino == os.stat(src8).st_ino
    export_coco(plan_coco(tmp_path / "seq8", tmp_path / "copied", link=False))
    copied = tmp_path / "copied" / "images" / "seq8" / "frame_000001.png"
    assert os.stat(copied).st_ino != os.stat(src8).st_ino and copied.read_bytes() == src8.read_bytes()
    export_coco(plan_coco(tmp_path / "seq16", tmp_path / "rounded"))
    frame16 = read_image(tmp_path / "seq16" / "frames" / "frame_000001.png")
    assert frame16.dtype == np.uint16
    got = read_image(tmp_path / "rounded" / "images" / "seq16" / "frame_000001.png")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.round(frame16 / 257.0).astype(np.uint8))


def test_one_stage_and_split_of_a_datasets_folder(tmp_path, capsys):
    truths = write_objects_datasets(tmp_path / "DATASETS")
    code, _, err = run_cli(capsys, "coco", tmp_path / "DATASETS", tmp_path / "val", "--split", "val")
    assert code == 0, err
    coco = load(tmp_path / "val")
    assert [v["name"] for v in coco.dataset["videos"]] == ["beta/000001-000002-x1"]
    assert {im["file_name"] for im in coco.dataset["images"]} == {
        f"images/beta/000001-000002-x1/frame_{n:06d}.png" for n in (1, 2)
    }
    # The other splits' categories count: "mug" (only in alpha, a train scene) keeps its id in val's export.
    assert [c["name"] for c in coco.dataset["categories"]] == ["box", "mug", "plate"]
    code, _, err = run_cli(capsys, "coco", tmp_path / "DATASETS", tmp_path / "all")
    assert code == 0, err
    assert [v["name"] for v in load(tmp_path / "all").dataset["videos"]] == list(truths)
    record = json.loads((tmp_path / "all" / "camsim_export.json").read_text())
    assert [s["split"] for s in record["sequences"].values()] == ["train", "val", "train"]
    code, _, err = run_cli(capsys, "coco", tmp_path / "DATASETS", tmp_path / "x", "--split", "nope")
    assert code == 2 and "unknown split 'nope'" in err
    code, _, err = run_cli(
        capsys, "coco", tmp_path / "DATASETS" / "renders", tmp_path / "y", "--split", "val"
    )
    assert code == 2 and "create-datasets folder" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_sequence_without_categories_is_all_one_category_and_says_so(tmp_path, capsys):
    write_objects_sequence(tmp_path / "old", CARDS_B, n=1, categories=False, annotations=False)
    code, out, err = run_cli(capsys, "coco", tmp_path / "old", tmp_path / "coco")
    assert code == 0, err
    assert "no categories recorded" in out
    coco = load(tmp_path / "coco")
    assert [c["name"] for c in coco.dataset["categories"]] == ["object"]
    assert {a["category_id"] for a in coco.dataset["annotations"]} == {1}


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_refuses_what_it_cannot_export_exactly(tmp_path):
    seq = tmp_path / "seq"
    write_objects_sequence(seq, n=2)
    out = tmp_path / "coco"

    # An object in the segmentation without a category, in a sequence that records categories.
    def drop_category(data: dict) -> None:
        del data["objects"]["2"]["category"], data["objects"]["2"]["category_id"]

    _edit_json(seq / "objects.json", drop_category)
    with pytest.raises(DatasetError, match=r"object id\(s\) \[2\] have no category"):
        plan_coco(seq, out)
    write_objects_sequence(seq, n=2)
    # Categories without objects.json (as an interpolated sequence has them): which object is which is unknown.
    _edit_json(seq / "transforms.json", lambda d: d.pop("objects_file_path"))
    with pytest.raises(DatasetError, match=r"no objects\.json says which object has which"):
        plan_coco(seq, out)
    write_objects_sequence(seq, n=2)
    # Interpolation holes: the segmentation there is not ground truth.
    _edit_json(seq / "transforms.json", lambda d: d["frames"][1].update(hole_fraction=0.1))
    with pytest.raises(DatasetError, match="hole pixels"):
        plan_coco(seq, out)
    # No segmentation.
    _edit_json(seq / "transforms.json", lambda d: [f.pop("segmentation_file_path") for f in d["frames"]])
    with pytest.raises(DatasetError, match="no segmentation"):
        plan_coco(seq, out)
    assert not out.exists()


def test_output_folder_rules(tmp_path):
    seq = tmp_path / "seq"
    write_objects_sequence(seq, CARDS_B, n=1)
    out = tmp_path / "coco"
    export_coco(plan_coco(seq, out))
    before = (out / "annotations.json").read_bytes()
    with pytest.raises(UserInputError, match="not empty"):
        plan_coco(seq, out)
    export_coco(plan_coco(seq, out, overwrite=True))  # a previous export is replaced
    assert (out / "annotations.json").read_bytes() == before
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(UserInputError, match=r"mine\.txt"):
        plan_coco(seq, out, overwrite=True)
    with pytest.raises(UserInputError, match="overlaps the input"):
        plan_coco(seq, seq / "inside")
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "x.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(UserInputError, match="previous camsim-coco/1 export"):
        plan_coco(seq, other, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco", "other", "seq"], "no staging folder left"


def _section(title: str) -> str:
    text = FORMAT.read_text()
    start = text.index(title)
    ends = [i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if i > 0]
    return text[start : min(ends, default=len(text))]


def test_every_key_written_is_documented(two_sequences, tmp_path):
    src, _ = two_sequences
    export_coco(plan_coco(src, tmp_path / "coco"))
    text = _section("### COCO export")
    documented = {
        w for span in re.findall(r"`([^`]+)`", text) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)
    }
    ann = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    record = json.loads((tmp_path / "coco" / "camsim_export.json").read_text())
    written = set(ann) | {
        k for part in ("images", "annotations", "categories", "videos") for k in ann[part][0]
    }
    written |= (
        set(ann["info"])
        | set(record)
        | set(record["sequences"]["a"])
        | set(ann["annotations"][0]["segmentation"])
    )
    assert not sorted(written - documented), (
        f"FORMAT.md (COCO export) does not name {sorted(written - documented)}"
    )
    for name in ("annotations.json", "camsim_export.json", "images/"):
        assert name in text


def test_an_id_drawn_several_times_is_a_crowd_region(tmp_path):
    seq = tmp_path / "seq"
    write_objects_sequence(seq, CARDS_B, n=2)

    def two_plates(data: dict) -> None:
        data["frames"][1]["annotations"]["1"].update(instances=2, pose_camera=None, projected_pixels=None)

    _edit_json(seq / "objects.json", two_plates)
    export_coco(plan_coco(seq, tmp_path / "coco"))
    coco = load(tmp_path / "coco")
    crowd = {(a["image_id"], a["camsim_object_id"]): a["iscrowd"] for a in coco.dataset["annotations"]}
    assert crowd == {(1, 1): 0, (1, 2): 0, (2, 1): 1, (2, 2): 0}
