"""One stage of one sequence (camsim.stages.run_stage) without Blender: done, then skipped on a rerun; a
failing write retried then reported; a changed setting refused without retries; too few frames refused before
anything runs; per-sequence sensor seeds."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from synthetic_plane import write_plane_sequence

from camsim.emulate.imu import ImuConfig
from camsim.emulate.spad import SpadConfig
from camsim.errors import UserInputError
from camsim.resume import Reuse
from camsim.stages import Pipeline, StageTask, check_task, run_stage, sensor_config, tasks_for

KEY = "plane/000010-000014-x1"


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    write_plane_sequence(tmp_path / "renders" / KEY, n=5)
    return tmp_path


def pipeline(**kw) -> Pipeline:
    sensors = {"imu": ImuConfig(), "spad": SpadConfig(batch_size=4)}
    emulate = kw.pop("emulate", ("imu",))
    return Pipeline(emulate=emulate, sensors=tuple((s, sensors[s]) for s in emulate), **kw)


def test_a_stage_runs_then_is_skipped_when_complete_with_the_same_settings(datasets):
    task = StageTask("imu", KEY, datasets, pipeline(), Reuse())
    first = run_stage(task)
    assert (first.status, first.attempts, first.error) == ("done", 1, "")
    assert (datasets / "imu" / KEY / "imu0" / "data.csv").is_file()
    again = run_stage(StageTask("imu", KEY, datasets, pipeline(), Reuse(resume=True)))
    assert again.status == "skipped" and again.settings_hash == first.settings_hash


@pytest.fixture
def unwritable(datasets: Path) -> Iterator[Path]:
    """The imu stage's folder where writes fail: a full 4 kB tmpfs as root, a read-only folder otherwise."""
    folder = datasets / "imu" / "plane"
    folder.mkdir(parents=True)
    if os.geteuid() == 0:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)], capture_output=True
        )
        if mounted.returncode:
            pytest.skip(f"cannot mount a tmpfs as root here: {mounted.stderr.decode().strip()}")
        (folder / "filler").write_bytes(b"x" * 4096)
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    os.chmod(folder, 0o500)
    try:
        yield folder
    finally:
        os.chmod(folder, 0o700)


def test_a_failing_write_is_retried_then_reported_not_raised(datasets, unwritable):
    outcome = run_stage(StageTask("imu", KEY, datasets, pipeline(), Reuse()), max_retries=2)
    assert outcome.status == "failed" and outcome.attempts == 3
    assert "No space left" in outcome.error or "Permission denied" in outcome.error, outcome.error


def test_a_changed_setting_is_refused_without_retrying(datasets):
    assert run_stage(StageTask("imu", KEY, datasets, pipeline(), Reuse())).status == "done"
    other = Pipeline(emulate=("imu",), sensors=(("imu", ImuConfig(rate=100.0)),))
    outcome = run_stage(StageTask("imu", KEY, datasets, other, Reuse(resume=True)), max_retries=2)
    assert outcome.status == "failed" and outcome.attempts == 1
    assert "--rate=200.0 (this run: 100.0)" in outcome.error
    with pytest.raises(UserInputError, match="--rate"):
        check_task(StageTask("imu", KEY, datasets, other, Reuse(resume=True)), frames=5)


def test_too_few_frames_for_a_stage_is_refused_counting_interpolated_frames(datasets):
    plain = StageTask("imu", KEY, datasets, pipeline(), Reuse())
    with pytest.raises(UserInputError, match="at least 3 frames, plane/000010-000014-x1 has 2 frames"):
        check_task(plain, frames=2)
    interpolated = StageTask("imu", KEY, datasets, pipeline(interpolate_factor=2), Reuse())
    check_task(interpolated, frames=2)  # 3 frames once interpolated


def test_every_sequence_gets_its_own_sensor_seed_from_the_run_seed(datasets):
    p = pipeline(emulate=("spad",))
    seeds = {sensor_config(StageTask("spad", f"scene/{i:06d}-x1", datasets, p)).seed for i in range(50)}
    assert len(seeds) == 50
    again = sensor_config(StageTask("spad", "scene/000001-x1", datasets, p)).seed
    assert again == sensor_config(StageTask("spad", "scene/000001-x1", datasets, p)).seed


def test_stage_order_and_dependencies_follow_the_pipeline(datasets):
    kept = pipeline(emulate=("spad", "imu"), interpolate_factor=2)
    assert [t.stage for t in tasks_for(KEY, datasets, kept, Reuse())] == ["interpolate", "spad", "imu"]
    assert kept.depends_on("spad") == "interpolate"
    streamed = pipeline(emulate=("spad",), interpolate_factor=2, keep_interpolated=False)
    assert [t.stage for t in tasks_for(KEY, datasets, streamed, Reuse())] == ["spad"]
    assert streamed.depends_on("spad") == "render"
    with pytest.raises(UserInputError, match="--no-keep-interpolated needs --interpolate-factor"):
        pipeline(keep_interpolated=False)
    with pytest.raises(UserInputError, match="--interpolate-factor must be at least 2"):
        pipeline(interpolate_factor=1)
