"""Interpolate a sequence or every sequence below a dataset folder (mirrored below OUTPUT, in parallel,
resumable): the plan checks everything first, then camsim.derive runs the sequences."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from camsim import derive, transforms
from camsim.errors import ConfigError
from camsim.interpolate.sequence import check_input, interpolate_sequence, output_count, settings
from camsim.resume import Reuse

Progress = derive.Progress


def check_settings(factor: int, beta: float) -> None:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"--factor must be at least 2, got {factor}")
    if not (math.isfinite(beta) and beta > 0):
        raise ConfigError(f"--beta must be positive, got {beta}")


def prepare(factor: int, beta: float, source: Path) -> tuple[derive.Record, int]:
    """The record an interpolation of `source` carries, and its progress total (checks the source)."""
    meta = transforms.read(source)
    check_input(meta, factor)
    record = derive.Record("interpolate", settings(factor, beta), derive.source_sha256(source))
    return record, output_count(len(meta["frames"]), factor)


def plan_interpolation(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    factor: int,
    beta: float = 60.0,
    reuse: Reuse | None = None,
) -> derive.Plan:
    """Check the settings, every source sequence and every output folder (nothing is written before all
    pass); then create the output folders of the sequences to interpolate."""
    check_settings(factor, beta)
    return derive.plan(src, dst, functools.partial(prepare, factor, beta), reuse)


def run_job(factor: int, beta: float, job: derive.Job, workers: int, progress: Progress) -> None:
    """Interpolate one planned sequence (in this process or a pool process)."""
    interpolate_sequence(
        job.source,
        job.output,
        factor,
        workers=workers,
        beta=beta,
        overwrite=job.action == "clear",
        progress=progress,
    )


def run_interpolation(
    plan: derive.Plan, factor: int, beta: float = 60.0, workers: int = 0, progress: Progress = None
) -> derive.Plan:
    """Write every planned sequence that is not skipped (`workers`: 0 = one per CPU core)."""
    derive.execute(plan, functools.partial(run_job, factor, beta), workers, progress)
    return plan


def interpolate_tree(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    factor: int,
    *,
    beta: float = 60.0,
    workers: int = 0,
    reuse: Reuse | None = None,
    progress: Progress = None,
) -> derive.Plan:
    """Interpolate a sequence, or every sequence below a folder (each at the same path below `dst`)."""
    derive.cpu_workers(workers)
    plan = plan_interpolation(src, dst, factor, beta, reuse)
    return run_interpolation(plan, factor, beta, workers, progress)
