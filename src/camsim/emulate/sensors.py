"""The four emulators behind one interface: plan a sequence or a dataset folder, then run it.

`plan_emulation` reads and checks everything first (config, every source, every output folder) and
knows each sequence's exact progress total; `run_emulation` then writes, sequences in parallel
processes (camsim.derive). A single sequence folder is written to OUTPUT itself, as before. An `opener`
reads each source another way (`camsim.interpolate.stream.Streamed`: interpolated on the fly).

On an already open sequence (create-datasets' stages): `record_for` gives the record its output carries and
its progress total, `emulate_sequence` writes it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camsim import derive
from camsim.emulate import events, imu, itof, lidar, rgb, spad
from camsim.emulate.common import Progress, prepare_output, settings
from camsim.emulate.light import Sequence, open_sequence
from camsim.emulate.rays import needed_passes
from camsim.passes import Pass
from camsim.resume import Reuse


@dataclass(frozen=True)
class Sensor:
    name: str
    config: type
    run: Callable[[Sequence, Path, Any, Progress, int], Path]
    total: Callable[[Sequence, Any], int]
    """Progress units of a run (exactly what `run` reports); raises ConfigError when no output is possible."""
    unit: str
    light: str | None = None
    """Input light forced for this sensor (the IMU reads poses only)."""
    passes: Callable[[Any], tuple[Pass, ...]] = lambda cfg: ()
    """The render passes it reads besides the light, for a config (a render without them is refused before it
    starts)."""
    streamed: bool = True
    """Whether it reads frames interpolated on the fly (create-datasets --no-keep-interpolated); a run that
    would feed it such frames is refused before it starts."""


def _active(cfg: Any) -> tuple[Pass, ...]:
    return needed_passes(cfg.incidence)


SENSORS: dict[str, Sensor] = {
    "spad": Sensor("spad", spad.SpadConfig, spad._run, spad.progress_total, "frames"),
    "rgb": Sensor("rgb", rgb.RgbConfig, rgb._run, rgb.progress_total, "frames"),
    "events": Sensor("events", events.EventsConfig, events._run, events.progress_total, "frames"),
    "imu": Sensor("imu", imu.ImuConfig, imu._run, imu.progress_total, "samples", light="srgb"),
    "itof": Sensor(
        "itof", itof.ItofConfig, itof._run, itof.progress_total, "taps", passes=_active, streamed=False
    ),
    "lidar": Sensor(
        "lidar", lidar.LidarConfig, lidar._run, lidar.progress_total, "frames", passes=_active, streamed=False
    ),
}


Opener = Callable[[Path, str], Sequence]
"""Opens a source sequence folder with an input light: `open_sequence`, or one that interpolates it on the fly
(`camsim.interpolate.stream.Streamed`); picklable, as jobs may run in pool processes."""


def _open(sensor: Sensor, source: Path, cfg: Any, opener: Opener | None) -> Sequence:
    return (opener or open_sequence)(source, sensor.light or cfg.light)


def record_for(name: str, cfg: Any, seq: Sequence) -> tuple[derive.Record, int]:
    """The record sensor `name`'s output of `seq` carries (what a rerun compares) and its progress total;
    raises ConfigError when the sequence cannot give output with `cfg`."""
    sensor = SENSORS[name]
    total = sensor.total(seq, cfg)
    return derive.Record(sensor.name, settings(cfg), seq.source_sha256), total


def _prepare(sensor: Sensor, cfg: Any, opener: Opener | None, source: Path) -> tuple[derive.Record, int]:
    return record_for(sensor.name, cfg, _open(sensor, source, cfg, opener))


def plan_emulation(
    name: str,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    cfg: Any,
    reuse: Reuse | None = None,
    opener: Opener | None = None,
) -> derive.Plan:
    """Check the config, every source sequence and every output folder (nothing is written before all
    pass); then create the output folders of the sequences to emulate. `opener` reads each source
    (default `open_sequence`)."""
    sensor = SENSORS[name]
    cfg.validate()
    return derive.plan(src, dst, functools.partial(_prepare, sensor, cfg, opener), reuse)


def emulate_sequence(
    name: str,
    cfg: Any,
    seq: Sequence,
    output: str | os.PathLike[str],
    action: str = "run",
    workers: int = 0,
    progress: Progress = None,
) -> Path:
    """Emulate sensor `name` on an open sequence into `output`: `action` `run` writes a new folder, `clear`
    first empties one that holds output (`workers`: threads, 0 = one per CPU). The sequence is read with the
    sensor's input light (`cfg.light`; the IMU's own). Returns the output folder."""
    if action not in ("run", "clear"):
        raise ValueError(f"action must be 'run' or 'clear', got {action!r}")
    sensor = SENSORS[name]
    cfg.validate()
    threads = derive.cpu_workers(workers)
    seq = seq.with_light(sensor.light or cfg.light)
    sensor.total(seq, cfg)  # no output possible: refused before the folder is touched
    out = prepare_output(output, overwrite=action == "clear")
    return sensor.run(seq, out, cfg, progress, threads)


def run_job(
    name: str, cfg: Any, job: derive.Job, workers: int, progress: Progress, opener: Opener | None = None
) -> Path:
    """Emulate one planned sequence (in this process or a pool process)."""
    seq = _open(SENSORS[name], job.source, cfg, opener)
    return emulate_sequence(name, cfg, seq, job.output, job.action, workers, progress)


def run_emulation(
    name: str,
    cfg: Any,
    plan: derive.Plan,
    workers: int = 0,
    progress: Progress = None,
    opener: Opener | None = None,
) -> derive.Plan:
    """Write every planned output that is not skipped (`workers`: 0 = one per CPU core)."""
    derive.execute(plan, functools.partial(run_job, name, cfg, opener=opener), workers, progress)
    return plan


def emulate_tree(
    name: str,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    cfg: Any = None,
    *,
    workers: int = 0,
    reuse: Reuse | None = None,
    progress: Progress = None,
    opener: Opener | None = None,
) -> derive.Plan:
    """Emulate sensor `name` on a sequence or on every sequence below a folder (mirrored below `dst`);
    `opener` reads each source (default `open_sequence`)."""
    cfg = cfg if cfg is not None else SENSORS[name].config()
    derive.cpu_workers(workers)
    plan = plan_emulation(name, src, dst, cfg, reuse, opener)
    return run_emulation(name, cfg, plan, workers, progress, opener)
