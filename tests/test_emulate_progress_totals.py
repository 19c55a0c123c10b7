"""`camsim emulate`: the progress bar's total is exactly what is advanced (for every sensor, one sequence or a
dataset folder in parallel), and no bar is opened before an input error."""

from __future__ import annotations

import contextlib
import shutil

import numpy as np
import pytest
from clirun import exit_code
from filestate import stamp
from synthetic_sensors import circle_poses, write_sequence

import camsim.progress
from camsim import transforms
from camsim.emulate.imu import read_imu_csv


class Recorder:
    """Stands in for the rich / plain progress bar: records totals and advances."""

    def __init__(self) -> None:
        self.opened = 0
        self.tasks: list[dict] = []

    def add_task(self, description: str, total: float | None = None, **_: object) -> int:
        self.tasks.append({"total": total, "advanced": 0, "calls": 0})
        return len(self.tasks) - 1

    def update(self, task: int, advance: float = 0, **_: object) -> None:
        self.tasks[task]["advanced"] += advance
        self.tasks[task]["calls"] += 1

    advance = update


@pytest.fixture
def bar(monkeypatch) -> Recorder:
    rec = Recorder()

    @contextlib.contextmanager
    def fake(unit: str = "frames"):
        rec.opened += 1
        yield rec

    monkeypatch.setattr(camsim.progress, "progress_bar", fake)
    return rec


def _seq(folder, n=7, fps=100.0):
    times = np.arange(n) / fps  # n = 30: the last time 0.29 s, and 0.29 * 100 = 28.999999999999996
    rng = np.random.default_rng(n)
    frames = [np.clip(0.3 + 0.2 * rng.random((6, 10, 3)), 0, 1).astype(np.float32) for _ in range(n)]
    return write_sequence(folder, frames, times, circle_poses(times, 1.0, 2.0))


CASES = {
    "spad": (["--frames-per-input", "3", "--bits", "2", "--batch-size", "2"], 7),
    "rgb": (["--chunk-size", "3", "--batch-size", "2"], 7),  # 3 frames, the last of 1 input frame
    "events": (["--batch-size", "3"], 7),
    "imu": (["--rate", "100", "--batch-size", "7"], 30),
}


def _expected(sensor: str, out, n: int) -> int:
    """What the bar should count, from the output itself (SPAD and events count input frames)."""
    if sensor == "imu":
        return len(read_imu_csv(out / "imu0" / "data.csv")[0])
    if sensor == "rgb":
        return len(transforms.read(out)["frames"])
    return n


@pytest.mark.parametrize("sensor", list(CASES))
def test_emulate_progress_total_equals_what_is_advanced(sensor, bar, tmp_path):
    args, n = CASES[sensor]
    seq = _seq(tmp_path / "seq", n)
    out = tmp_path / "out"
    assert exit_code("emulate", sensor, str(seq), str(out), "--workers", "1", *args) == 0
    assert bar.opened == 1 and len(bar.tasks) == 1
    task = bar.tasks[0]
    assert task["total"] == task["advanced"] == _expected(sensor, out, n)
    assert task["calls"] >= 2  # advanced batch by batch, not at the end only


@pytest.mark.parametrize("sensor", list(CASES))
def test_emulate_progress_is_exact_over_a_dataset_folder_in_parallel(sensor, bar, tmp_path):
    args, n = CASES[sensor]
    _seq(tmp_path / "ds" / "a" / "s1", n)
    _seq(tmp_path / "ds" / "b" / "s2", n)
    out = tmp_path / "out"
    assert exit_code("emulate", sensor, str(tmp_path / "ds"), str(out), "--workers", "2", *args) == 0
    task = bar.tasks[0]
    expected = _expected(sensor, out / "a" / "s1", n) + _expected(sensor, out / "b" / "s2", n)
    assert task["total"] == task["advanced"] == expected


def test_the_imu_bar_counts_the_samples_it_writes(bar, tmp_path):
    """The case that showed 11/10: the last time times the rate falls just below an integer."""
    seq = _seq(tmp_path / "seq", 30)
    assert 0.29 * 100 < 29  # floating point: the old bar total int(0.29 * 100) + 1 = 29
    assert exit_code("emulate", "imu", str(seq), str(tmp_path / "out"), "--rate", "100") == 0
    assert bar.tasks[0]["total"] == bar.tasks[0]["advanced"] == 30


@pytest.mark.parametrize(
    ("sensor", "args", "match"),
    [
        ("rgb", ["--qe", "1.5"], "qe"),
        ("spad", ["--auto-exposure-target", "1"], "auto_exposure_target"),
        ("spad", ["--bits", "4"], "fewer than 2^bits-1"),  # 7 frames cannot fill one 15-level frame
        ("rgb", ["--rolling-shutter", "--chunk-size", "7"], "rolling-shutter"),
        ("events", ["--workers", "-1"], "workers"),
    ],
)
def test_no_bar_is_opened_before_a_bad_setting(sensor, args, match, bar, tmp_path, capsys):
    seq = _seq(tmp_path / "seq")
    assert exit_code("emulate", sensor, str(seq), str(tmp_path / "out"), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert bar.opened == 0 and not (tmp_path / "out").exists()


def test_no_bar_and_nothing_written_when_one_sequence_of_a_folder_is_broken(bar, tmp_path, capsys):
    _seq(tmp_path / "ds" / "a")
    broken = _seq(tmp_path / "ds" / "b")
    (broken / "transforms.json").write_text("{ not json")
    assert exit_code("emulate", "spad", str(tmp_path / "ds"), str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("camsim: error: b: ") and "transforms.json" in err[0]
    assert bar.opened == 0 and not (tmp_path / "out").exists()


def test_no_bar_before_an_imu_input_with_too_few_poses(bar, tmp_path, capsys):
    seq = _seq(tmp_path / "seq", 2)
    assert exit_code("emulate", "imu", str(seq), str(tmp_path / "out")) == 2
    assert "at least 3 poses" in capsys.readouterr().err
    assert bar.opened == 0


def test_no_bar_before_an_output_made_with_other_settings(bar, tmp_path, capsys):
    seq = _seq(tmp_path / "seq")
    out = tmp_path / "out"
    assert exit_code("emulate", "events", str(seq), str(out), "--seed", "1") == 0
    before = {p: stamp(p) for p in out.rglob("*")}
    bar.opened = 0
    assert exit_code("emulate", "events", str(seq), str(out), "--seed", "2", "--allow-skips") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed=1 (this run: 2)" in err[0]
    assert bar.opened == 0
    assert {p: stamp(p) for p in out.rglob("*")} == before
    shutil.rmtree(out)
