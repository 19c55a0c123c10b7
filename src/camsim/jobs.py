"""The one job type and what every runner does with it, independent of where it runs.

`SequenceJob` (a frame range of a scene into a folder, with the settings that change its files),
`JobOutcome`, the `Event`s a runner reports, and `run_job`: get a warm worker, render, retry on a fresh
worker when Blender dies or hangs. `local.LocalPool` and `dask.DaskRunner` both implement `Runner` by
calling `run_job`; events go to a callback so the CLI draws progress without a runner knowing about
terminals.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from camsim import prestart
from camsim.blender.worker import BlenderWorker, options_from_config
from camsim.config import GPU_BACKENDS, RenderConfig, RenderSettings
from camsim.errors import CamsimError, OutputWriteError, SceneError, UserInputError, WorkerError
from camsim.render import SequenceResult, render_sequence, sequence_is_complete
from camsim.resume import Reuse
from camsim.spares import Spares
from camsim.stages import StageOutcome, StageTask

log = logging.getLogger(__name__)

SPARE_WAIT = 120.0
"""Seconds a slot with no worker waits for a warm Blender that planning is about to hand over (a scene reader on
its last scene) before it starts one of its own."""

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class SequenceJob:
    """One unit of work everywhere (local pool or Dask): a frame range of a scene into a folder."""

    scene: Path
    output: Path
    settings: RenderSettings
    """What is rendered (how the run executes is the runner's business)."""
    frame_start: int | None = None
    """First frame (after keyframe scaling); None: the scene's first frame."""
    frame_end: int | None = None
    """Last frame, inclusive; None: the scene's last frame."""
    scene_name: str = ""
    sequence_id: str = ""
    reuse: Reuse = field(default_factory=Reuse)
    """What to do with outputs already in `output`: refuse (default), resume, or overwrite."""

    def __post_init__(self) -> None:
        if isinstance(self.settings, RenderConfig):  # a whole config given: keep only what changes the files
            object.__setattr__(self, "settings", self.settings.settings)


@dataclass
class JobOutcome:
    job: SequenceJob
    status: Status
    result: SequenceResult | None = None
    error: str = ""
    log_path: str = ""
    attempts: int = 0
    worker: str = ""


@dataclass
class Event:
    """What a runner tells its observer: kind in start | total | frames | retry | finished (a render) |
    stage (a stage after the render finished: `stage` holds its outcome)."""

    kind: str
    slot: int
    job: SequenceJob | None = None
    value: int = 0
    outcome: JobOutcome | None = None
    message: str = ""
    stage: StageOutcome | None = None


EventFn = Callable[[Event], None]


@dataclass
class WorkerSlot:
    """One warm worker, started on first use and replaced when it dies or should be recycled."""

    config: RenderConfig
    index: int = 0
    jobs: int = 1
    worker: BlenderWorker | None = None
    started: int = 0
    stopped: bool = False
    """Set by `stop()`: no new worker may start (closes the window between a stop and a retry)."""
    spare: queue.Queue[BlenderWorker] | None = None
    """Warm workers left by planning: taken before a new one is started."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> BlenderWorker:
        with self._lock:
            if self.worker is not None and not self.worker.alive:
                self.worker.kill()
                self.worker = None
            waiting = self.worker is None and isinstance(self.spare, Spares) and not self.stopped
        if waiting:  # outside the lock: stop() and adopt() go on meanwhile
            self.spare.wait(SPARE_WAIT, lambda: self.stopped or self.worker is not None)  # type: ignore[union-attr]
        with self._lock:
            if self.stopped:
                raise WorkerError(f"worker-{self.index + 1} is stopping; no new worker is started")
            if self.worker is None:
                self.worker = self._take_spare()
            if self.worker is None:
                self.started += 1
                name = f"worker-{self.index + 1}" + (f"-r{self.started - 1}" if self.started > 1 else "")
                self.worker = prestart.start_worker(options_from_config(self.config, name))
            return self.worker

    def adopt(self, worker: BlenderWorker) -> bool:
        """Take a warm worker when this slot has none (and is not stopping); False otherwise."""
        with self._lock:
            if self.stopped or self.worker is not None:
                return False
            self.worker = worker
            self.started += 1
            return True

    def _take_spare(self) -> BlenderWorker | None:
        while self.spare is not None:
            try:
                w = self.spare.get_nowait()
            except queue.Empty:
                return None
            if w.alive:
                self.started += 1
                return w
            w.kill()
        return None

    def recycle_if_due(self) -> None:
        """Restart between sequences after N sequences or past the memory limit (Blender grows)."""
        w = self.worker
        if w is None:
            return
        cfg = self.config
        over_count = cfg.max_sequences_per_worker and w.sequences_done >= cfg.max_sequences_per_worker
        over_mem = cfg.max_worker_memory and w.rss_bytes() > cfg.max_worker_memory * 2**30
        if over_count or over_mem:
            log.info("recycling %s (%s)", w.name, "sequence limit" if over_count else "memory limit")
            self.close()

    def stop(self) -> None:
        """Kill the worker now and refuse to start another (Ctrl-C, SIGTERM)."""
        with self._lock:
            self.stopped = True
        self.discard()

    def discard(self) -> None:
        with self._lock:
            if self.worker is not None:
                self.worker.kill()
                self.worker = None

    def close(self) -> None:
        with self._lock:
            if self.worker is not None:
                self.worker.close()
                self.worker = None

    @property
    def gpu_index(self) -> int | None:
        return self.index if self.config.device_type in (*GPU_BACKENDS, "auto") else None


def run_job(
    slot: WorkerSlot,
    job: SequenceJob,
    max_retries: int = 2,
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> JobOutcome:
    """Render one job on `slot`, retrying on a fresh worker after a crash, hang or render error.

    Scene errors (no camera, bad range, unreadable file) are the user's to fix and are not retried.
    A retry resumes: frames already written (atomically) are kept. A resumed job (`job.reuse.resume`)
    whose render is complete, with the same settings and every file whole, is skipped without a worker.
    """
    emit = on_event or (lambda e: None)
    if job.reuse.resume and sequence_is_complete(job.output, job, job.reuse.verify):
        return JobOutcome(job, "skipped", attempts=0)
    retry = dataclasses.replace(job, reuse=Reuse(resume=True, verify=job.reuse.verify))
    attempts = 0
    last_error, last_log = "", ""
    while attempts <= max_retries and not should_stop():
        attempts += 1
        worker_name = ""
        try:
            worker = slot.get()
            worker_name = worker.name
            emit(Event("start", slot.index, job, message=worker.name))
            result = render_sequence(
                worker,
                job if attempts == 1 else retry,
                progress=lambda n: emit(Event("frames", slot.index, job, value=n)),
                on_total=lambda n: emit(Event("total", slot.index, job, value=n)),
                threads=slot.config.threads_for(slot.jobs),
                gpu_index=slot.gpu_index,
            )
            worker.sequences_done += 1
            slot.recycle_if_due()
            return JobOutcome(job, "done", result, attempts=attempts, worker=worker_name,
                              log_path=str(worker.log_path))  # fmt: skip
        except (SceneError, UserInputError, OutputWriteError) as exc:
            # Not retried: the user must fix the scene or free the disk; the worker itself is fine.
            log_path = str(slot.worker.log_path) if slot.worker else ""
            return JobOutcome(
                job, "failed", error=str(exc), attempts=attempts, log_path=log_path, worker=worker_name
            )
        except CamsimError as exc:
            last_error = str(exc)
            last_log = getattr(exc, "log_path", None) or (str(slot.worker.log_path) if slot.worker else "")
            slot.discard()
            if should_stop():
                break
            if attempts <= max_retries:
                emit(Event("retry", slot.index, job, value=attempts, message=last_error))
                log.warning("%s/%s failed (attempt %d): %s; retrying on a fresh worker",
                            job.scene_name, job.sequence_id, attempts, last_error)  # fmt: skip
        except Exception as exc:  # a bug of ours: report it, do not kill the whole run
            last_error = f"{type(exc).__name__}: {exc}"
            last_log = str(slot.worker.log_path) if slot.worker else ""
            log.debug("unexpected error\n%s", traceback.format_exc())
            slot.discard()
    return JobOutcome(job, "failed", error=last_error or "stopped", log_path=last_log, attempts=attempts)


StageTasks = Callable[[SequenceJob], list[StageTask]]
"""The stages to run after a job's render (stages.tasks_for with the run's pipeline), in running order."""


@dataclass
class RunResult:
    outcomes: list[JobOutcome]
    """One per render job, in the order the jobs came."""
    stages: list[StageOutcome] = field(default_factory=list)
    """One per stage task of every job (a stage whose render or source stage failed is `failed`, not run)."""


class Runner(Protocol):
    """What create-datasets runs its jobs on: the local pool (local.py) or Dask (dask.py).

    `jobs` may be a list or an iterator that yields jobs as planning finds them (rendering starts with the
    first). After a job's render is done or skipped, its stage tasks (`stages(job)`) run on the same
    executor: each when the stage it reads (`task.pipeline.depends_on`) is done or skipped; they report an
    Event("stage") each."""

    def run(
        self, jobs: Iterable[SequenceJob], on_event: EventFn | None = None, stages: StageTasks | None = None
    ) -> RunResult:
        """Render every job and run its stages. Ctrl-C stops every worker and re-raises."""
        ...
