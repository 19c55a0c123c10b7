"""`camsim validate DATASETS` (with dataset.json) checks every stage of every sequence as its kind of folder
and the manifest against the disk: one line per problem, exit 1 when there is one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import exit_code
from synthetic_datasets import copy_datasets, datasets  # noqa: F401 - a fixture

from camsim.manifest import MANIFEST, STAGES, read_manifest, write_manifest
from camsim.validate import validate_dataset

A, B = "alpha/000014-000017-x1", "beta/000010-000013-x1"


@pytest.fixture
def copy(datasets, tmp_path) -> Path:  # noqa: F811
    return copy_datasets(datasets, tmp_path / "DATASETS")


def lines(capsys) -> list[str]:
    out = capsys.readouterr().out
    return [line for line in out.splitlines() if line.split(" ", 1)[0].isupper() and line[:2] != "OK"]


def test_a_complete_dataset_passes_with_every_stage_of_every_sequence_checked(datasets, capsys):  # noqa: F811
    report = validate_dataset(datasets)
    manifest = read_manifest(datasets)
    assert sorted(s.name for s in report.sequences) == sorted(
        f"{folder}/{key}" for folder in STAGES.values() for key in manifest.sequences
    )
    assert report.ok, [(s.name, p.message) for s in report.sequences for p in s.problems]
    imu = next(s for s in report.sequences if s.name == f"imu/{A}")
    assert imu.format == "IMU" and imu.frames > 0
    assert exit_code("validate", datasets) == 0
    assert lines(capsys) == []


def test_every_problem_is_one_line_and_exit_1(copy, capsys):
    m = read_manifest(copy)
    m.sequences[B].stages["rgb"].settings_hash = "ffffffffffffffff"
    m.sequences["gamma/000010-000013-x1"].stages["events"].status = "failed"
    m.sequences["gamma/000010-000013-x1"].stages["events"].error = "worker died"
    write_manifest(copy, m)
    shutil.rmtree(copy / "spad" / A)  # the output is gone though dataset.json says complete
    shutil.copytree(copy / "rgb" / B, copy / "rgb" / "beta" / "000099-000100-x1")  # not in the manifest
    csv = copy / "imu" / "delta/000010-000013-x1" / "imu0" / "data.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:3]))  # rows lost
    frames = copy / "spad" / B / "frames.npy"
    frames.write_bytes(frames.read_bytes()[:-10])  # cut short
    (copy / "renders" / A / "flows" / "flow_000012.exr").write_bytes(b"garbage")
    assert exit_code("validate", copy) == 1
    got = lines(capsys)
    want = [
        f"MISSING {copy / 'spad' / A}: dataset.json records the spad stage complete; no folder",
        f"MANIFEST {copy / 'rgb' / B / 'params.json'}: settings hash ",
        f"MISSING {copy / 'events/gamma/000010-000013-x1'}: dataset.json: the events stage failed: worker died",
        f"UNLISTED {copy / 'rgb/beta/000099-000100-x1'}: not listed in dataset.json",
        f"CORRUPTED {csv}: 2 samples, params.json records",
        f"CORRUPTED {frames}: ",
        f"CORRUPTED {copy / 'renders' / A / 'flows' / 'flow_000012.exr'}: cannot decode",
    ]
    for w in want:
        assert sum(line.startswith(w) for line in got) == 1, (w, got)
    assert len(got) == len(want), got


@pytest.mark.parametrize(
    "stage, damage, says",
    [
        ("spad", lambda f: (f / "params.json").write_text("{"), "CORRUPTED"),
        ("events", lambda f: (f / "params.json").unlink(), "MISSING"),
        ("imu", lambda f: (f / "params.json").write_text(json.dumps({"sensor": "rgb"})), "SCHEMA"),
        ("imu", lambda f: (f / "imu0" / "sensor.yaml").unlink(), "MISSING"),
        ("interpolate", lambda f: (f / "masks").rename(f / "masks-gone"), "MISSING"),
    ],
)
def test_each_stage_is_checked_as_its_kind_of_output(copy, capsys, stage, damage, says):
    folder = copy / STAGES[stage] / B
    damage(folder)
    assert exit_code("validate", copy) == 1
    got = lines(capsys)
    assert got and all(str(folder) in line for line in got), got
    assert any(line.startswith(says) for line in got), got


def test_a_params_json_whose_hash_is_not_its_config_is_reported(copy, capsys):
    path = copy / "spad" / B / "params.json"
    params = json.loads(path.read_text())
    params["config"]["seed"] = 12345
    path.write_text(json.dumps(params))
    assert exit_code("validate", copy) == 1
    assert lines(capsys) == [f"SCHEMA {path}: settings_hash {params['settings_hash']} is not its config's"]


def test_stage_folders_not_in_the_manifest_are_unlisted(copy, capsys):
    m = read_manifest(copy)
    m.stages.remove("events")
    for seq in m.sequences.values():
        del seq.stages["events"]
    write_manifest(copy, m)
    assert exit_code("validate", copy) == 1
    got = lines(capsys)
    assert len(got) == len(m.sequences)
    assert all(
        line.startswith(f"UNLISTED {copy / 'events'}") and "a stage dataset.json does not list" in line
        for line in got
    )


def test_interpolated_frames_not_kept_are_not_looked_for(copy, capsys):
    m = read_manifest(copy)
    m.keep_interpolated = False
    write_manifest(copy, m)
    shutil.rmtree(copy / "interpolated")
    assert exit_code("validate", copy) == 0


def test_a_manifest_that_contradicts_itself_is_reported(copy, capsys):
    m = read_manifest(copy)
    m.sequences[B].split = "test" if m.sequences[B].split != "test" else "train"
    write_manifest(copy, m)
    assert exit_code("validate", copy) == 1
    got = lines(capsys)
    assert len(got) == 1 and got[0].startswith(f"SCHEMA {copy / MANIFEST}: sequence {B} is in split"), got


def test_a_malformed_manifest_is_a_one_line_error(copy, capsys):
    (copy / MANIFEST).write_text('{"format": 1}')
    assert exit_code("validate", copy) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset.json" in err[0] and "is missing" in err[0], err


def test_purge_drops_the_marker_of_a_damaged_imu_output_so_a_resume_redoes_it(copy, capsys):
    folder = copy / "imu" / B
    (folder / "imu0" / "data.csv").write_text("#header only\n")
    assert exit_code("validate", copy, "--purge") == 1
    assert not (folder / "params.json").exists()
    assert not (folder / "imu0" / "data.csv").exists()  # corrupted files go too
    assert (copy / "imu" / A / "params.json").is_file()  # the others are untouched


def test_a_stage_folder_alone_validates_as_before(datasets, capsys):  # noqa: F811
    assert exit_code("validate", datasets / "spad") == 0
    assert exit_code("validate", datasets / "renders" / "beta") == 0
