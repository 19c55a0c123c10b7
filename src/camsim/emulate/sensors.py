"""The four emulators behind one interface: plan a sequence or a dataset folder, then run it.

`plan_emulation` reads and checks everything first (config, every source, every output folder) and
knows each sequence's exact progress total; `run_emulation` then writes, sequences in parallel
processes (camsim.derive). A single sequence folder is written to OUTPUT itself, as before.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camsim import derive
from camsim.emulate import events, imu, rgb, spad
from camsim.emulate.common import Progress, prepare_output, settings
from camsim.emulate.light import Sequence, open_sequence
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


SENSORS: dict[str, Sensor] = {
    "spad": Sensor("spad", spad.SpadConfig, spad._run, spad.progress_total, "frames"),
    "rgb": Sensor("rgb", rgb.RgbConfig, rgb._run, rgb.progress_total, "frames"),
    "events": Sensor("events", events.EventsConfig, events._run, events.progress_total, "frames"),
    "imu": Sensor("imu", imu.ImuConfig, imu._run, imu.progress_total, "samples", light="srgb"),
}


def _open(sensor: Sensor, source: Path, cfg: Any) -> Sequence:
    return open_sequence(source, sensor.light or cfg.light)


def _prepare(sensor: Sensor, cfg: Any, source: Path) -> tuple[derive.Record, int]:
    seq = _open(sensor, source, cfg)
    total = sensor.total(seq, cfg)
    return derive.Record(sensor.name, settings(cfg), derive.source_sha256(seq.root)), total


def plan_emulation(
    name: str,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    cfg: Any,
    reuse: Reuse | None = None,
) -> derive.Plan:
    """Check the config, every source sequence and every output folder (nothing is written before all
    pass); then create the output folders of the sequences to emulate."""
    sensor = SENSORS[name]
    cfg.validate()
    return derive.plan(src, dst, functools.partial(_prepare, sensor, cfg), reuse)


def run_job(name: str, cfg: Any, job: derive.Job, workers: int, progress: Progress) -> Path:
    """Emulate one planned sequence (in this process or a pool process)."""
    sensor = SENSORS[name]
    seq = _open(sensor, job.source, cfg)
    out = prepare_output(job.output, overwrite=job.action == "clear")
    return sensor.run(seq, out, cfg, progress, workers)


def run_emulation(
    name: str, cfg: Any, plan: derive.Plan, workers: int = 0, progress: Progress = None
) -> derive.Plan:
    """Write every planned output that is not skipped (`workers`: 0 = one per CPU core)."""
    derive.execute(plan, functools.partial(run_job, name, cfg), workers, progress)
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
) -> derive.Plan:
    """Emulate sensor `name` on a sequence or on every sequence below a folder (mirrored below `dst`)."""
    cfg = cfg if cfg is not None else SENSORS[name].config()
    derive.cpu_workers(workers)
    plan = plan_emulation(name, src, dst, cfg, reuse)
    return run_emulation(name, cfg, plan, workers, progress)
