"""`Dataset.from_path(DATASETS, stage=..., split=...)` iterates the complete sequences of a stage and split in
the manifest's order (IMU: its samples), in a torch DataLoader as before; bad names are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_datasets import copy_datasets, datasets  # noqa: F401 - a fixture

from camsim.errors import DatasetError
from camsim.loader import Dataset, ImuDataset, MultiSequenceDataset
from camsim.manifest import STAGES, read_manifest, stage_folder, write_manifest

VISUAL = tuple(s for s in STAGES if s != "imu")  # the stages whose outputs have transforms.json


@pytest.mark.parametrize("split", ["train", "val", "test", None])
@pytest.mark.parametrize("stage", VISUAL)
def test_each_stage_and_split_reads_its_sequences_in_manifest_order(datasets, stage, split):  # noqa: F811
    m = read_manifest(datasets)
    keys = [k for k, s in m.sequences.items() if split in (None, s.split)]
    ds = Dataset.from_path(datasets, stage=stage, split=split)
    assert isinstance(ds, MultiSequenceDataset)
    assert [s.name for s in ds.sequences] == keys
    assert [s.root for s in ds.sequences] == [stage_folder(datasets, stage, k) for k in keys]
    assert len(ds) == sum(
        len(json.loads((stage_folder(datasets, stage, k) / "transforms.json").read_text())["frames"])
        for k in keys
    )
    items = list(ds)
    assert [it["sequence"] for it in items] == [k for k in keys for _ in range(len(ds) // len(keys))]
    assert all("pose" in it and "time" in it for it in items)
    if stage not in ("events", "lidar"):  # events.h5, histograms.npy/points.npy: items carry poses and times
        assert all("frame" in it for it in items)


def test_without_a_stage_a_dataset_folder_reads_its_renders(datasets):  # noqa: F811
    ds = Dataset.from_path(datasets)
    assert [s.root.parent.parent.name for s in ds.sequences] == ["renders"] * 5
    assert len(Dataset.from_path(datasets, split="test")) == 4  # one sequence of four frames


def test_a_spad_split_reads_the_same_frames_as_its_sequence_folders(datasets):  # noqa: F811
    ds = Dataset.from_path(datasets, stage="spad", split="val")
    for item in ds:
        alone = Dataset.from_path(stage_folder(datasets, "spad", item["sequence"]))[item["index"]]
        np.testing.assert_array_equal(item["frame"], alone["frame"])
        assert item["frame"].dtype == np.uint8 and set(np.unique(item["frame"])) <= {0, 1}


def test_only_complete_sequences_are_read(datasets, tmp_path):  # noqa: F811
    root = copy_datasets(datasets, tmp_path / "DATASETS")
    m = read_manifest(root)
    key = next(k for k, s in m.sequences.items() if s.split == "train")
    m.sequences[key].stages["rgb"].status = "failed"
    write_manifest(root, m)
    ds = Dataset.from_path(root, stage="rgb", split="train")
    assert key not in [s.name for s in ds.sequences] and len(ds.sequences) == 1


def test_imu_items_are_samples_of_the_euroc_files(datasets):  # noqa: F811
    m = read_manifest(datasets)
    ds = Dataset.from_path(datasets, stage="imu", split="val")
    assert isinstance(ds, ImuDataset)
    keys = [k for k, s in m.sequences.items() if s.split == "val"]
    rows = []
    for k in keys:
        lines = (stage_folder(datasets, "imu", k) / "imu0" / "data.csv").read_text().splitlines()[1:]
        rows += [(k, line.split(",")) for line in lines]
    assert len(ds) == len(rows)
    for item, (key, row) in zip(ds, rows, strict=True):
        assert item["sequence"] == key and item["timestamp_ns"] == int(row[0])
        assert item["time"] == pytest.approx(int(row[0]) * 1e-9)
        np.testing.assert_array_equal(item["gyro"], np.array(row[1:4], float))
        np.testing.assert_array_equal(item["accel"], np.array(row[4:7], float))
    assert ds[-1]["sample"] == len(rows) // len(keys) - 1
    times = [it["time"] for it in ds[: len(rows) // len(keys)]]
    assert times == sorted(times)
    one = Dataset.from_path(stage_folder(datasets, "imu", keys[0]))  # an IMU output folder alone
    assert isinstance(one, ImuDataset) and one[3]["timestamp_ns"] == ds[3]["timestamp_ns"]
    tree = Dataset.from_path(datasets / "imu")  # a folder of them, as `camsim emulate imu` writes
    assert isinstance(tree, ImuDataset) and len(tree) == len(ds) * len(m.sequences) // len(keys)
    assert tree[0]["sequence"] == "alpha/000010-000013-x1"


@pytest.mark.parametrize(
    "kwargs, says",
    [
        (
            {"stage": "radar"},
            "unknown stage 'radar'; stages: render, interpolate, spad, rgb, events, imu, itof, lidar",
        ),
        ({"stage": "spad", "split": "holdout"}, "unknown split 'holdout'; splits: train, val, test"),
        ({"stage": "imu", "modalities": ("depth",)}, "no modalities"),
    ],
)
def test_bad_names_are_one_line_errors_naming_the_choices(datasets, kwargs, says):  # noqa: F811
    with pytest.raises(DatasetError) as err:
        Dataset.from_path(datasets, **kwargs)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_stage_of_a_folder_without_dataset_json_is_refused(datasets):  # noqa: F811
    with pytest.raises(
        DatasetError, match=r"no dataset\.json in .*: stage= and split= read a create-datasets"
    ):
        Dataset.from_path(datasets / "renders", stage="render")
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        Dataset.from_path(datasets / "renders", split="train")


def test_stages_the_dataset_lacks_or_did_not_keep_are_refused(datasets, tmp_path):  # noqa: F811
    root = copy_datasets(datasets, tmp_path / "DATASETS")
    m = read_manifest(root)
    m.stages = ["render", "interpolate", "imu"]
    m.keep_interpolated = False
    m.splits = None
    for s in m.sequences.values():
        s.split = None
    write_manifest(root, m)
    with pytest.raises(DatasetError, match="has no spad stage \\(it has: render, interpolate, imu\\)"):
        Dataset.from_path(root, stage="spad")
    with pytest.raises(DatasetError, match="not kept"):
        Dataset.from_path(root, stage="interpolate")
    with pytest.raises(DatasetError, match="made without --splits"):
        Dataset.from_path(root, split="train")


@pytest.mark.parametrize("stage", ["spad", "imu"])
def test_a_stage_split_works_in_a_dataloader_with_two_workers(datasets, stage):  # noqa: F811
    # torch is not in camsim[test] (PyPI's Linux wheel is the CUDA build); `make test` installs the CPU one.
    torch = pytest.importorskip("torch", reason="the DataLoader test needs torch (a CPU build is enough)")
    ds = Dataset.from_path(datasets, stage=stage, split="train")
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    key = "frame" if stage == "spad" else "gyro"
    got = [
        (seq, value.numpy())
        for batch in loader
        for seq, value in zip(batch["sequence"], batch[key], strict=True)
    ]
    assert len(got) == len(ds) > 3
    for i, (seq, value) in enumerate(got):  # every item once, in order
        assert seq == ds[i]["sequence"]
        np.testing.assert_array_equal(value, ds[i][key])
