"""Progress reporting for the CLI: a rich bar on a terminal, periodic plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger("camsim")


def report_console(stderr: bool = False) -> Console:
    """A console for tables and summaries: the terminal's width on a terminal; 160 columns into a pipe or
    file (rich would assume 80 and cut sequence names)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=160)


class PlainProgress:
    """Same interface as the parts of rich.Progress we use; logs at most every `interval` seconds."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.tasks: dict[int, dict[str, object]] = {}
        self._last = 0.0
        self._start = time.monotonic()

    def add_task(self, description: str, total: float | None = None, **fields: object) -> int:
        tid = len(self.tasks)
        self.tasks[tid] = {"description": description, "total": total, "completed": 0.0, **fields}
        return tid

    def update(self, task_id: int, advance: float = 0, **fields: object) -> None:
        task = self.tasks[task_id]
        task["completed"] = float(task["completed"]) + advance  # type: ignore[arg-type]
        task.update({k: v for k, v in fields.items() if k != "completed"})
        if "completed" in fields:
            task["completed"] = fields["completed"]
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.report()

    advance = update

    def report(self) -> None:
        elapsed = time.monotonic() - self._start
        for task in self.tasks.values():
            done, total = float(task["completed"]), task["total"]  # type: ignore[arg-type]
            rate = done / elapsed if elapsed > 0 else 0.0
            if total:
                eta = (float(total) - done) / rate if rate > 0 else float("inf")
                log.info("%s: %d/%d (%.2f/s, ETA %.0f s)", task["description"], done, total, rate, eta)
            else:
                log.info("%s: %s", task["description"], task.get("status", ""))

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.report()


class RateColumn(ProgressColumn):
    """Units per second, as measured by rich over its speed window."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-" if speed is None else f"{speed:.2f} {self.unit}/s", style="cyan")


@contextmanager
def progress_bar(unit: str = "frames") -> Iterator[Progress | PlainProgress]:
    """A rich progress bar (frames done of total, rate, ETA) on a TTY, plain log lines otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal or not sys.stderr.isatty():
        with PlainProgress() as plain:
            yield plain
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        yield bar


__all__ = ["PlainProgress", "TaskID", "progress_bar", "report_console"]


class RunView:
    """One overall bar and one line per worker from a runner's events (`jobs.Event`), the local pool's and
    Dask's alike. A job's frames count once: a retry on a fresh worker resumes and reports the frames a failed
    attempt already wrote (and a Dask task rerun after its worker died reports them again), so each job's
    contribution to the overall bar is clamped to its frame count."""

    def __init__(self, bar: Any, sequences: int, frames: int) -> None:
        self.bar = bar
        self.sequences = sequences
        self.finished = 0
        self.overall = bar.add_task(self._title(), total=frames)
        self.workers: dict[int, TaskID] = {}
        self.counted: dict[tuple[str, str], int] = {}
        self.stages: dict[str, TaskID] = {}
        self.stage_done: dict[str, int] = {}

    def add_stages(self, stages: tuple[str, ...], sequences: int | None) -> None:
        """One bar per stage after the render, counting sequences (None: the total is not known yet)."""
        for stage in stages:
            self.stage_done[stage] = 0
            self.stages[stage] = self.bar.add_task(f"{stage} 0", total=sequences)

    def planned(self, sequences: int, frames: int) -> None:
        """Planning found more work (jobs planned while rendering): the totals grow."""
        self.sequences = sequences
        self.bar.update(self.overall, total=frames, description=self._title())
        for task in self.stages.values():
            self.bar.update(task, total=sequences)

    def _title(self) -> str:
        return f"sequences {self.finished}/{self.sequences}"

    @staticmethod
    def _frames(job: Any) -> int:
        return int(job.frame_end - job.frame_start + 1)

    def _count(self, job: Any, n: int) -> int:
        """How many of `n` newly reported frames of `job` are new to the overall bar."""
        key = (job.scene_name, job.sequence_id)
        done = self.counted.get(key, 0)
        new = max(0, min(n, self._frames(job) - done))
        self.counted[key] = done + new
        return new

    def on_event(self, e: Any) -> None:
        if e.kind == "start":
            name = f"  {e.message}: {e.job.scene_name}/{e.job.sequence_id}"
            if e.slot not in self.workers:
                self.workers[e.slot] = self.bar.add_task(name, total=None)
            self.bar.update(self.workers[e.slot], description=name, completed=0, total=None)
        elif e.kind == "total" and e.slot in self.workers:
            self.bar.update(self.workers[e.slot], total=e.value, completed=0)
        elif e.kind == "frames":
            if e.slot in self.workers:
                self.bar.update(self.workers[e.slot], advance=e.value)
            self.bar.update(self.overall, advance=self._count(e.job, e.value))
        elif e.kind == "stage" and e.stage is not None:
            o = e.stage
            stage = o.task.stage
            if stage in self.stages:
                self.stage_done[stage] += 1
                self.bar.update(
                    self.stages[stage], advance=1, description=f"{stage} {self.stage_done[stage]}"
                )
            if o.status == "failed":
                log.error("failed %s of %s: %s", stage, o.task.key, o.error)
        elif e.kind == "retry":
            log.warning("retrying %s/%s: %s", e.job.scene_name, e.job.sequence_id, e.message)
        elif e.kind == "finished":
            self.finished += 1
            o = e.outcome
            if o.status in ("skipped", "done"):  # every frame of a finished job is counted, no more
                self.bar.update(self.overall, advance=self._count(o.job, self._frames(o.job)))
            elif o.status == "failed":
                log.error("failed %s/%s: %s", o.job.scene_name, o.job.sequence_id, o.error)
            self.bar.update(self.overall, description=self._title())
