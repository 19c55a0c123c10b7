"""`camsim info DATASETS` (with dataset.json) summarises each stage per split: sequences complete of planned,
frames, size on disk, and the failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clirun import exit_code
from synthetic_datasets import copy_datasets, datasets  # noqa: F401 - a fixture

from camsim.errors import DatasetError
from camsim.manifest import STAGES, read_manifest, stage_folder, write_manifest
from camsim.summary import describe, describe_datasets


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_each_stage_and_split_counts_sequences_frames_and_bytes(datasets):  # noqa: F811
    info = describe_datasets(datasets)
    m = read_manifest(datasets)
    assert [(r.stage, r.split) for r in info.rows] == [
        (stage, split) for stage in STAGES for split in ("train", "val", "test", None)
    ]
    for r in info.rows:
        keys = [k for k, s in m.sequences.items() if r.split in (None, s.split)]
        assert r.planned == r.complete == len(keys) and r.failed == 0
        folders = [stage_folder(datasets, r.stage, k) for k in keys]
        if r.stage == "imu":
            frames = sum(len((f / "imu0/data.csv").read_text().splitlines()) - 1 for f in folders)
        else:
            frames = sum(len(json.loads((f / "transforms.json").read_text())["frames"]) for f in folders)
        assert r.frames == frames > 0, r
        size = du(stage_folder(datasets, r.stage)) if r.split is None else sum(du(f) for f in folders)
        assert r.size_bytes == size > 0, r
    render = {r.split: r.frames for r in info.rows if r.stage == "render"}
    assert render[None] == 4 * len(m.sequences) == sum(v for k, v in render.items() if k)


def test_failures_and_missing_stages_are_counted_and_listed(datasets, tmp_path, capsys):  # noqa: F811
    root = copy_datasets(datasets, tmp_path / "DATASETS")
    m = read_manifest(root)
    key = "gamma/000010-000013-x1"
    m.sequences[key].stages["spad"].status = "failed"
    m.sequences[key].stages["spad"].error = "MemoryError in the SPAD emulator"
    del m.sequences[key].stages["events"]  # not run yet
    write_manifest(root, m)
    info = describe_datasets(root)
    split = m.sequences[key].split
    spad = next(r for r in info.rows if r.stage == "spad" and r.split == split)
    events = next(r for r in info.rows if r.stage == "events" and r.split is None)
    assert spad.failed == 1 and spad.complete == spad.planned - 1
    assert events.failed == 0 and events.complete == events.planned - 1 == len(m.sequences) - 1
    assert [(f.stage, f.sequence, f.error) for f in info.failures] == [
        ("spad", key, "MemoryError in the SPAD emulator")
    ]
    assert exit_code("info", root) == 0
    out = capsys.readouterr().out
    assert f"FAILED spad {key}: MemoryError in the SPAD emulator" in out
    assert re.search(r"spad\s+│\s+all\s+│\s+4/5\s+│\s+1\s+│", out), out
    assert "scenes per split: train 2, val 1, test 1" in out


def test_without_splits_each_stage_has_one_row(datasets, tmp_path):  # noqa: F811
    root = copy_datasets(datasets, tmp_path / "DATASETS")
    m = read_manifest(root)
    m.splits = None
    for s in m.sequences.values():
        s.split = None
    m.stages = ["render", "imu"]
    write_manifest(root, m)
    info = describe_datasets(root)
    assert [(r.stage, r.split, r.complete) for r in info.rows] == [("render", None, 5), ("imu", None, 5)]


def test_a_folder_without_dataset_json_is_summarised_as_before(datasets, capsys):  # noqa: F811
    assert exit_code("info", datasets / "renders") == 0
    assert "5 sequence(s) (0 incomplete), 20 frames" in capsys.readouterr().out.replace("\n", " ")
    assert len(describe(datasets / "renders").sequences) == 5
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        describe_datasets(datasets / "renders")
