"""The stages that follow a sequence's render in create-datasets: interpolate, then emulate sensors.

A `Pipeline` says which stages run and with what settings; a `StageTask` is one stage of one sequence (the
unit both executors run: a process of the local stage pool, or a Dask task that depends on the render's
task); `run_stage` runs it where it lands and returns a `StageOutcome`. Each stage output is an ordinary
derived output (camsim.derive records, decisions and refusals), in DATASETS/<stage folder>/SCENE/SEQ/; a rig
(--render-config.cameras) has one sequence per camera, so each camera gets its own tasks and outputs, in
DATASETS/<stage folder>/SCENE/SEQ/CAMERA/ (the camera's path below renders/ too).

Dependencies: interpolation needs the render; an emulator needs the interpolated sequence when it is kept,
else only the render (it streams the interpolated frames, camsim.interpolate.stream); without interpolation
it reads the render.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from camsim import derive
from camsim.errors import CamsimError, ConfigError, DatasetError, UserInputError
from camsim.manifest import stage_folder
from camsim.resume import Reuse

log = logging.getLogger(__name__)

SENSORS = ("spad", "rgb", "events", "imu", "itof", "lidar")
"""The emulator stages, in the order they run for a sequence."""
SensorName = Literal["spad", "rgb", "events", "imu", "itof", "lidar"]

StageStatus = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Pipeline:
    """Which stages follow the render and with what settings (plain values: it crosses process boundaries)."""

    interpolate_factor: int | None = None
    beta: float = 60.0
    keep_interpolated: bool = True
    emulate: tuple[str, ...] = ()
    sensors: tuple[tuple[str, Any], ...] = ()
    """(name, config dataclass) of every sensor in `emulate`."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.emulate if s not in SENSORS]
        if unknown:
            raise UserInputError(
                f"--emulate: unknown sensor {unknown[0]!r} (choose from {', '.join(SENSORS)})"
            )
        if len(set(self.emulate)) != len(self.emulate):
            raise UserInputError("--emulate names a sensor twice")
        if self.interpolate_factor is not None:
            from camsim.interpolate.tree import check_settings

            try:
                check_settings(self.interpolate_factor, self.beta)
            except ConfigError as exc:
                raise UserInputError(str(exc).replace("--factor", "--interpolate-factor")) from None
        if not self.keep_interpolated and self.interpolate_factor is None:
            raise UserInputError("--no-keep-interpolated needs --interpolate-factor")
        for name, cfg in self.sensors:
            try:
                cfg.validate()
            except ConfigError as exc:
                raise UserInputError(f"--{name}.*: {exc}") from None

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages after the render, in running order (interpolation only when its frames are kept)."""
        first = ("interpolate",) if self.interpolate_factor and self.keep_interpolated else ()
        return first + tuple(s for s in SENSORS if s in self.emulate)

    def depends_on(self, stage: str) -> str:
        """The stage whose output `stage` reads."""
        return "interpolate" if stage in SENSORS and "interpolate" in self.stages else "render"

    def sensor(self, name: str) -> Any:
        return dict(self.sensors)[name]


@dataclass(frozen=True)
class StageTask:
    """One stage of one sequence: the unit of work of the local stage pool and of a Dask stage task."""

    stage: str
    key: str
    """The path below each stage folder of what it reads and writes: SCENE/SEQ, or SCENE/SEQ/CAMERA for a rig's
    camera. Its sensor seed is derived from it (every camera gets noise of its own)."""
    datasets_dir: Path
    pipeline: Pipeline
    reuse: Reuse = field(default_factory=Reuse)
    camera: str | None = None
    """The rig camera (the last part of `key`), None for a sequence of one camera."""

    @property
    def sequence(self) -> str:
        """The sequence's key in dataset.json (SCENE/SEQ: a rig's cameras share it)."""
        return self.key.rsplit("/", 1)[0] if self.camera else self.key

    @property
    def output(self) -> Path:
        return stage_folder(self.datasets_dir, self.stage, self.key)

    @property
    def source(self) -> Path:
        return stage_folder(self.datasets_dir, self.pipeline.depends_on(self.stage), self.key)

    @property
    def render(self) -> Path:
        return stage_folder(self.datasets_dir, "render", self.key)


@dataclass
class StageOutcome:
    task: StageTask
    status: StageStatus
    error: str = ""
    settings_hash: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    """Warnings the stage logged (the CLI prints each distinct one once per run)."""


def tasks_for(
    key: str, datasets_dir: Path, pipeline: Pipeline, reuse: Reuse, cameras: tuple[str, ...] = ()
) -> list[StageTask]:
    """The stage tasks of sequence `key` (SCENE/SEQ), in running order; of a rig (`cameras`: its camera names),
    every stage of every camera, camera by camera."""
    if "all" in cameras:
        raise UserInputError("the stages of a rig need its cameras named: --render-config.cameras all cannot "
                             "go with --interpolate-factor or --emulate")  # fmt: skip
    folders = [(f"{key}/{c}", c) for c in cameras] or [(key, None)]
    return [
        StageTask(s, k, Path(datasets_dir), pipeline, reuse, c) for k, c in folders for s in pipeline.stages
    ]


def sensor_config(task: StageTask) -> Any:
    """The sensor's config for this sequence: the run's, with a seed of its own, derived from the run's seed
    and the sequence (the same noise in every sequence would be a dataset artefact)."""
    cfg = task.pipeline.sensor(task.stage)
    return dataclasses.replace(cfg, seed=sequence_seed(cfg.seed, task.stage, task.key))


def sequence_seed(seed: int, sensor: str, key: str) -> int:
    """A 63-bit seed from the run's --SENSOR.seed, the sensor and the sequence (SCENE/SEQ, or SCENE/SEQ/CAMERA
    for a rig's camera)."""
    h = hashlib.sha256(f"{int(seed)}:{sensor}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


# ----------------------------------------------------------------------------------------------- records


def wanted_record(task: StageTask, with_source: bool = True) -> tuple[derive.Record, int]:
    """The record the stage's output will carry and its progress total; reads the source (which must exist
    when `with_source`). Without the source (planning, before the render exists) only kind and settings."""
    p = task.pipeline
    if task.stage == "interpolate":
        from camsim.interpolate.sequence import settings

        assert p.interpolate_factor is not None
        if not with_source:
            return derive.Record("interpolate", settings(p.interpolate_factor, p.beta)), 0
        from camsim.interpolate.tree import prepare

        return prepare(p.interpolate_factor, p.beta, task.source)
    cfg = sensor_config(task)
    if not with_source:
        from camsim.emulate.common import settings as sensor_settings

        return derive.Record(task.stage, sensor_settings(cfg)), 0
    from camsim.emulate.sensors import record_for

    return record_for(task.stage, cfg, open_source(task, cfg))


def open_source(task: StageTask, cfg: Any) -> Any:
    """The sequence an emulator stage reads: the render, the kept interpolated sequence, or the render
    interpolated on the fly (--no-keep-interpolated)."""
    from camsim.emulate.sensors import SENSORS as EMULATORS

    light = EMULATORS[task.stage].light or cfg.light
    p = task.pipeline
    if p.interpolate_factor and not p.keep_interpolated:
        from camsim.interpolate.stream import open_streamed

        return open_streamed(task.render, p.interpolate_factor, p.beta, light)
    from camsim.emulate.light import open_sequence

    return open_sequence(task.source, light)


def check_task(task: StageTask, frames: int) -> None:
    """Refuse (UserInputError, one line) before anything runs: a stage that cannot work on a sequence of
    `frames` rendered frames, and an output this run may not keep or replace (made with other settings, without
    --overwrite; any output, without --allow-skips)."""
    need, seen = min_frames(task.stage), frames
    p = task.pipeline
    if task.stage != "interpolate" and p.interpolate_factor:
        seen = (frames - 1) * p.interpolate_factor + 1
    if seen < need:
        what = "--interpolate-factor" if task.stage == "interpolate" else f"--emulate {task.stage}"
        got = f"{frames} frames" + (f" ({seen} interpolated)" if seen != frames else "")
        raise UserInputError(f"{what} needs sequences of at least {need} frames, {task.key} has {got}: raise "
                             "--num-frames")  # fmt: skip
    record, _ = wanted_record(task, with_source=False)
    derive.decide(task.output, record, task.reuse)


def min_frames(stage: str) -> int:
    """Frames a stage needs in the sequence it reads."""
    if stage == "imu":
        from camsim.emulate.imu import MIN_POSES

        return MIN_POSES
    from camsim.emulate.light import MIN_FRAMES

    return MIN_FRAMES  # interpolation too: a pair


# ----------------------------------------------------------------------------------------------- running


class _Collect(logging.Handler):
    """Warnings logged by this thread while a stage runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


def run_stage(task: StageTask, max_retries: int = 2, workers: int = 1) -> StageOutcome:
    """Run one stage of one sequence (skipped when its output is complete and made the same way).

    A failure is retried `max_retries` times (an unfinished output is redone from scratch); bad input (the
    output was made otherwise, the source is unusable) is not. Never raises for the stage's own failures:
    the outcome says what happened.
    """
    t0 = time.monotonic()
    collect = _Collect()
    logging.getLogger("camsim").addHandler(collect)
    attempts = 0
    error = ""
    record_hash = None
    try:
        while attempts <= max_retries:
            attempts += 1
            reuse = task.reuse if attempts == 1 else Reuse(resume=True, verify=task.reuse.verify)
            try:
                record, _ = wanted_record(task)
                record_hash = record.settings_hash
                action = derive.decide(task.output, record, reuse)
                if action == "skip":
                    return StageOutcome(task, "skipped", settings_hash=record_hash, attempts=attempts,
                                        seconds=time.monotonic() - t0)  # fmt: skip
                _execute(task, action, workers)
                return StageOutcome(task, "done", settings_hash=record_hash, attempts=attempts,
                                    seconds=time.monotonic() - t0, warnings=tuple(collect.messages))  # fmt: skip
            except (UserInputError, DatasetError, ConfigError) as exc:
                error = str(exc)
                break
            except (CamsimError, OSError, ValueError, RuntimeError, MemoryError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("%s of %s failed (attempt %d): %s", task.stage, task.key, attempts, error)
    finally:
        logging.getLogger("camsim").removeHandler(collect)
    return StageOutcome(task, "failed", error=error, settings_hash=record_hash, attempts=attempts,
                        seconds=time.monotonic() - t0, warnings=tuple(collect.messages))  # fmt: skip


def _execute(task: StageTask, action: str, workers: int) -> None:
    p = task.pipeline
    if task.stage == "interpolate":
        from camsim.interpolate.sequence import interpolate_sequence

        assert p.interpolate_factor is not None
        interpolate_sequence(task.source, task.output, p.interpolate_factor, workers=workers, beta=p.beta,
                             overwrite=action == "clear")  # fmt: skip
        return
    from camsim.emulate.sensors import emulate_sequence

    cfg = sensor_config(task)
    emulate_sequence(task.stage, cfg, open_source(task, cfg), task.output, action, workers, None)


def blocked(task: StageTask, why: str) -> StageOutcome:
    """The outcome of a stage that cannot run because what it reads failed."""
    return StageOutcome(task, "failed", error=why)
