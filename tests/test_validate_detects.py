"""validate finds truncated, missing and malformed files, purges them, and checks flow against depth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic_plane

from camsim.convert import img_to_npy
from camsim.fileio import read_exr, write_exr
from camsim.validate import validate_dataset

plane_sequence = synthetic_plane.plane_sequence  # fixture


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_validate_passes_a_good_dataset(plane_sequence, tmp_path):
    plane_sequence("renders/s/a")
    img_to_npy(plane_sequence("renders/s/b", binary=True), tmp_path / "renders/s/c", bitpack=True)
    rep = validate_dataset(tmp_path / "renders", consistency=True)
    assert rep.ok, rep.problems
    assert rep.counts() == {"ok": 3, "incomplete": 0, "corrupted": 0}
    assert [s.format for s in rep.sequences] == ["IMG", "IMG", "NPY"]


def test_validate_names_each_bad_file_and_purge_removes_exactly_them(plane_sequence, tmp_path):
    good = plane_sequence("renders/s/good")
    trunc = plane_sequence("renders/s/trunc")
    missing = plane_sequence("renders/s/missing")
    badjson = plane_sequence("renders/s/badjson")
    _truncate(trunc / "depths/depth_000012.exr")
    (missing / "frames/frame_000013.png").unlink()
    (badjson / "transforms.json").write_text('{"frames": [')

    rep = validate_dataset(tmp_path / "renders")
    assert not rep.ok
    by = {s.name: s for s in rep.sequences}
    assert by["s/good"].status == "ok"
    assert by["s/trunc"].status == "corrupted"
    assert [(p.path.name, p.kind) for p in by["s/trunc"].problems] == [("depth_000012.exr", "corrupted")]
    assert by["s/missing"].status == "incomplete"
    assert [(p.path.name, p.kind) for p in by["s/missing"].problems] == [("frame_000013.png", "missing")]
    assert by["s/badjson"].status == "corrupted"
    assert [(p.path.name, p.kind) for p in by["s/badjson"].problems] == [("transforms.json", "schema")]

    rep = validate_dataset(tmp_path / "renders", purge=True)
    assert not (trunc / "depths/depth_000012.exr").exists()
    assert not (trunc / "transforms.json").exists()
    assert (trunc / "depths/depth_000011.exr").exists()
    assert not (missing / "transforms.json").exists()
    assert not (badjson / "transforms.json").exists()
    assert (good / "transforms.json").exists()
    assert len(list((badjson / "frames").iterdir())) == 5

    # After the purge the damaged sequences are incomplete (to be resumed), with nothing corrupted left.
    rep = validate_dataset(tmp_path / "renders")
    assert rep.counts() == {"ok": 1, "incomplete": 3, "corrupted": 0}


@pytest.mark.parametrize(
    "plant, expected",
    [
        ("nan_depth", "NaN"),
        ("wrong_size", "expected 16x12"),
        ("seg_float", "dtype"),
        ("flow_channels", "lacks channels"),
    ],
)
def test_validate_flags_bad_values_shapes_and_types(plane_sequence, plant, expected):
    root = plane_sequence()
    if plant == "nan_depth":
        d = read_exr(root / "depths/depth_000011.exr", ("Y",))
        d[3, 4] = np.nan
        write_exr(root / "depths/depth_000011.exr", {"Y": d})
    elif plant == "wrong_size":
        write_exr(root / "depths/depth_000011.exr", {"Y": np.ones((8, 8), np.float32)})
    elif plant == "seg_float":
        write_exr(root / "segmentations/segmentation_000011.exr", {"Y": np.ones((12, 16), np.float32)})
    elif plant == "flow_channels":
        write_exr(root / "flows/flow_000011.exr", {"R": np.zeros((12, 16), np.float32)})
    rep = validate_dataset(root)
    assert not rep.ok
    assert len(rep.problems) == 1 and expected in rep.problems[0].message
    assert rep.problems[0].path.name.endswith("_000011.exr")


def test_validate_flags_truncated_npy(plane_sequence, tmp_path):
    npy = img_to_npy(plane_sequence(), tmp_path / "npy")
    _truncate(npy / "flows.npy")
    rep = validate_dataset(npy)
    assert rep.sequences[0].status == "corrupted"
    assert [p.path.name for p in rep.problems] == ["flows.npy"]


def test_validate_consistency_small_on_exact_data_and_flags_corrupted_flow(plane_sequence):
    root = plane_sequence()
    rep = validate_dataset(root, consistency=True)
    c = rep.sequences[0].consistency
    assert rep.ok and c is not None
    assert c.epe < 1e-3 and c.cycle_median < 1e-3 and c.static_fraction == 1.0

    for offset in (0.7, 5.0):
        for k in range(10, 15):
            p = root / f"flows/flow_{k:06d}.exr"
            f = read_exr(p, tuple("RGBA"))
            f[..., 0] += offset if k == 10 else 0.0
            write_exr(p, {c: f[..., j] for j, c in enumerate("RGBA")})
        rep = validate_dataset(root, consistency=True)
        assert not rep.ok
        (prob,) = rep.problems
        assert prob.kind == "inconsistent" and prob.path.name == "flow_000010.exr", prob
        assert rep.sequences[0].consistency.bad_pairs[0][0] == 0


def test_validate_consistency_tolerates_a_moving_object(plane_sequence):
    """A patch whose flow differs (an object moving on its own) is not blamed on the sequence."""
    root = plane_sequence()
    meta = json.loads((root / "transforms.json").read_text())
    for k in range(10, 15):
        seg = read_exr(root / f"segmentations/segmentation_{k:06d}.exr", ("Y",))
        seg[2:6, 3:8] = 2
        write_exr(root / f"segmentations/segmentation_{k:06d}.exr", {"Y": seg})
        f = read_exr(root / f"flows/flow_{k:06d}.exr", tuple("RGBA"))
        f[2:6, 3:8, 0] += 3.0
        write_exr(root / f"flows/flow_{k:06d}.exr", {c: f[..., j] for j, c in enumerate("RGBA")})
    meta["segmentation_ids"]["2"] = "Ball"
    (root / "transforms.json").write_text(json.dumps(meta))
    rep = validate_dataset(root, consistency=True)
    c = rep.sequences[0].consistency
    assert rep.ok, rep.problems
    assert c.epe < 1e-3 and 0.5 < c.static_fraction < 1.0
