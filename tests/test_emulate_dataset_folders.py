"""`camsim emulate <sensor> DATASET OUTPUT`: every sequence below a folder, in parallel processes, mirrored
below OUTPUT, the same bytes as one sequence at a time; resumable with --allow-skips, never mixing two
settings in one output; a single sequence folder still writes OUTPUT itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clirun import exit_code
from filestate import contents
from synthetic_sensors import circle_poses, write_sequence

from camsim.commands.emulate import Events, Imu, Rgb, Spad
from camsim.commands.interpolate import Interpolate
from camsim.emulate import SpadConfig, emulate_spad

NAMES = ("renders/scene_a/seq_000", "renders/scene_a/seq_001", "renders/scene_b/seq_000")


def _seq(folder: Path, seed: int, n: int = 6) -> Path:
    times = (np.arange(n) + 2) / 50.0
    rng = np.random.default_rng(seed)
    frames = [rng.random((8, 12, 3)).astype(np.float32) for _ in range(n)]
    return write_sequence(folder, frames, times, circle_poses(times, 1.0, 1.5))


@pytest.fixture
def dataset(tmp_path) -> Path:
    for k, name in enumerate(NAMES):
        _seq(tmp_path / "DATASETS" / name, k)
    return tmp_path / "DATASETS"


def test_a_dataset_folder_is_emulated_in_parallel_into_a_mirrored_layout(dataset, tmp_path):
    out = tmp_path / "spad"
    assert (
        exit_code("emulate", "spad", str(dataset), str(out), "--workers", "2", "--frames-per-input", "2") == 0
    )
    done = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("transforms.json"))
    assert done == sorted(NAMES)
    for name in NAMES:  # the same bytes as emulating that sequence alone
        alone = emulate_spad(
            dataset / name, tmp_path / "alone" / name, SpadConfig(frames_per_input=2), workers=1
        )
        assert (out / name / "frames.npy").read_bytes() == (alone / "frames.npy").read_bytes()
        params = json.loads((out / name / "params.json").read_text())
        assert params["source"] == str(dataset / name)


def test_a_dataset_folder_of_renders_below_it_is_found_from_any_level(dataset, tmp_path):
    out = tmp_path / "imu"
    assert exit_code("emulate", "imu", str(dataset / "renders" / "scene_a"), str(out), "--workers", "2") == 0
    assert sorted(p.name for p in out.iterdir()) == ["seq_000", "seq_001"]
    assert (out / "seq_000" / "imu0" / "data.csv").is_file()


def test_a_single_sequence_folder_writes_output_itself(dataset, tmp_path):
    out = tmp_path / "one"
    assert exit_code("emulate", "rgb", str(dataset / NAMES[0]), str(out)) == 0
    assert (out / "transforms.json").is_file() and (out / "frames").is_dir()


def test_allow_skips_keeps_complete_outputs_and_redoes_only_unfinished_ones(dataset, tmp_path, capsys):
    out = tmp_path / "events"
    assert exit_code("emulate", "events", str(dataset), str(out), "--workers", "2") == 0
    first = contents(out)
    (out / NAMES[1] / "transforms.json").unlink()  # that sequence's run was cut short
    assert exit_code("emulate", "events", str(dataset), str(out), "--workers", "2", "--allow-skips") == 0
    assert "1 sequence(s) written" in capsys.readouterr().out
    again = contents(out)
    assert set(again) == set(first)
    for rel, (data, written) in again.items():
        if rel.startswith(NAMES[1]):  # redone: rewritten (a new inode), the same content (seeded)
            assert written != first[rel][1] and (data == first[rel][0] or rel.endswith(".h5")), rel
        else:
            assert (data, written) == first[rel], rel  # untouched
    assert exit_code("emulate", "events", str(dataset), str(out), "--allow-skips") == 0
    assert "3 skipped" in capsys.readouterr().out
    assert contents(out) == again


@pytest.mark.parametrize(
    ("change", "named"),
    [(["--seed", "5"], "--seed=0 (this run: 5)"), (["--frames-per-input", "2"], "--frames-per-input=1")],
)
def test_other_settings_are_refused_in_one_line_and_change_nothing(dataset, tmp_path, capsys, change, named):
    out = tmp_path / "spad"
    assert exit_code("emulate", "spad", str(dataset), str(out), "--workers", "2") == 0
    before = contents(out)
    capsys.readouterr()
    assert exit_code("emulate", "spad", str(dataset), str(out), "--allow-skips", *change) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("camsim: error: ") and named in err[0] and "--overwrite" in err[0]
    )
    assert contents(out) == before
    assert exit_code("emulate", "spad", str(dataset), str(out)) == 2  # neither flag: refused too
    assert contents(out) == before


def test_another_sensor_in_the_output_is_refused_and_overwrite_leaves_nothing_stale(
    dataset, tmp_path, capsys
):
    out = tmp_path / "out"
    assert exit_code("emulate", "spad", str(dataset), str(out), "--mode", "img") == 0
    assert (out / NAMES[0] / "frames").is_dir()
    assert exit_code("emulate", "imu", str(dataset), str(out), "--allow-skips") == 2
    assert "emulate spad (this run: emulate imu)" in capsys.readouterr().err
    assert exit_code("emulate", "imu", str(dataset), str(out), "--overwrite", "--workers", "2") == 0
    for name in NAMES:
        left = sorted(p.name for p in (out / name).iterdir())
        assert left == ["imu0", "params.json", "state_groundtruth_estimate0"], left  # no SPAD frames survive


def test_a_changed_source_is_refused(dataset, tmp_path, capsys):
    out = tmp_path / "rgb"
    assert exit_code("emulate", "rgb", str(dataset), str(out)) == 0
    _seq(dataset / NAMES[2], 2, n=7)  # re-rendered since, longer: its transforms.json changed
    assert exit_code("emulate", "rgb", str(dataset), str(out), "--allow-skips") == 2
    err = capsys.readouterr().err
    assert NAMES[2] in err and "source" in err


def test_allow_skips_and_overwrite_together_are_refused(dataset, tmp_path, capsys):
    assert (
        exit_code("emulate", "spad", str(dataset), str(tmp_path / "o"), "--allow-skips", "--overwrite") == 2
    )
    assert "--allow-skips" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_output_inside_the_input_is_not_read_as_input(dataset, capsys):
    out = dataset / "emulated" / "events"
    assert exit_code("emulate", "events", str(dataset), str(out)) == 0
    assert exit_code("emulate", "events", str(dataset), str(out), "--allow-skips") == 0
    assert "3 skipped" in capsys.readouterr().out  # not 6: the outputs below INPUT are not sources


def test_one_workers_default_across_the_commands():
    from dataclasses import fields

    defaults = {
        cls.__name__: next(f.default for f in fields(cls) if f.name == "workers")
        for cls in (Spad, Rgb, Events, Imu, Interpolate)
    }
    assert set(defaults.values()) == {0}, defaults


def test_an_output_above_the_input_mirrors_below_it(dataset, tmp_path):
    """OUTPUT may hold INPUT (`emulate rgb DATASETS/renders DATASETS`): the renders are still the sources."""
    assert exit_code("emulate", "rgb", str(dataset / "renders"), str(dataset)) == 0
    for name in NAMES:
        rel = Path(name).relative_to("renders")
        assert json.loads((dataset / rel / "params.json").read_text())["sensor"] == "rgb"


def test_an_output_without_a_settings_record_is_not_kept(dataset, tmp_path, capsys):
    """An output of an older camsim (no settings_hash): what it used cannot be compared, so it is not kept."""
    out = tmp_path / "spad"
    assert exit_code("emulate", "spad", str(dataset / NAMES[0]), str(out)) == 0
    params = json.loads((out / "params.json").read_text())
    del params["settings_hash"]
    (out / "params.json").write_text(json.dumps(params))
    assert exit_code("emulate", "spad", str(dataset / NAMES[0]), str(out), "--allow-skips") == 2
    assert "older camsim" in capsys.readouterr().err
    assert exit_code("emulate", "spad", str(dataset / NAMES[0]), str(out), "--overwrite") == 0
