"""The local runner: `jobs` threads, each driving one warm Blender worker, taking render jobs as they come;
the CPU stages of a rendered sequence run meanwhile in a pool of low-priority processes."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from camsim.blender.worker import BlenderWorker
from camsim.config import RenderConfig
from camsim.jobs import Event, EventFn, JobOutcome, RunResult, SequenceJob, StageTasks, WorkerSlot, run_job
from camsim.stages import StageOutcome, StageTask, blocked, run_stage

log = logging.getLogger(__name__)

STAGE_NICENESS = 10
"""Stage processes run at this niceness: rendering (the critical path) keeps its cores, the stages soak up
the rest, and all of them when rendering is over."""


class LocalPool:
    """`jobs` threads, each driving one warm Blender worker; render jobs come from a shared iterator, stage
    tasks go to a process pool as soon as what they read is ready."""

    def __init__(
        self,
        config: RenderConfig,
        jobs: int,
        max_retries: int = 2,
        warm: BlenderWorker | None = None,
        spare: queue.Queue[BlenderWorker] | None = None,
        stage_workers: int = 1,
    ) -> None:
        """`warm`: an already started worker for the first slot; `spare`: warm workers (left by planning) a
        slot takes before it starts one; `stage_workers`: processes of the stage pool."""
        self.config = config
        self.slots = [WorkerSlot(config, index=i, jobs=jobs, spare=spare) for i in range(jobs)]
        if warm is not None and warm.alive:
            self.slots[0].worker = warm
            self.slots[0].started = 1
        self.spare = spare
        self.max_retries = max_retries
        self.stage_workers = max(1, stage_workers)
        self._stop = threading.Event()
        self._stage_pool: ProcessPoolExecutor | None = None

    def run(
        self, jobs: Iterable[SequenceJob], on_event: EventFn | None = None, stages: StageTasks | None = None
    ) -> RunResult:
        """Render every job and run its stages; outcomes in job order. Ctrl-C kills the workers and re-raises;
        an error raised by the job iterator (planning) stops the run and is re-raised here."""
        source = _Source(iter(jobs))
        done: queue.Queue[tuple[str, object]] = queue.Queue()
        emit = on_event or (lambda e: None)

        def drive(slot: WorkerSlot) -> None:
            try:
                while not self._stop.is_set():
                    item = source.next()
                    if item is None:
                        return
                    i, job = item
                    done.put(("render", (i, run_job(slot, job, self.max_retries, emit, self._stop.is_set))))
            except BaseException as exc:  # planning failed (bad input found late): stop everything
                done.put(("error", exc))
            finally:
                done.put(("ended", slot.index))  # the loop below ends as soon as the last slot does

        threads = [
            threading.Thread(target=drive, args=(slot,), name=f"camsim-slot-{slot.index}", daemon=True)
            for slot in self.slots
        ]
        outcomes: dict[int, JobOutcome] = {}
        staging = _Stages(self, stages, emit, done)
        for t in threads:
            t.start()
        ended = 0
        try:
            while True:
                if ended == len(threads) and done.empty() and staging.idle():
                    break
                self._settle_spares()
                try:
                    kind, payload = done.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind == "ended":
                    ended += 1
                    continue
                if kind == "error":
                    raise payload  # type: ignore[misc]
                if kind == "render":
                    i, outcome = payload  # type: ignore[misc]
                    outcomes[i] = outcome
                    emit(Event("finished", -1, outcome.job, outcome=outcome))
                    staging.after_render(outcome)
                else:
                    staging.finished(payload)  # type: ignore[arg-type]
            for t in threads:
                t.join()
            self.close()
        except BaseException:  # Ctrl-C/SIGTERM at any point, even after the last job: no worker survives
            self.stop()
            for t in threads:
                t.join(timeout=30)
            raise
        jobs_seen = source.seen
        ordered = [
            outcomes.get(i, JobOutcome(job, "failed", error="not run")) for i, job in enumerate(jobs_seen)
        ]
        return RunResult(ordered, staging.outcomes)

    def _settle_spares(self) -> None:
        """Give each warm worker planning left to a slot that has none; close the rest (idle Blenders hold
        memory and would only be closed at the end)."""
        while self.spare is not None:
            try:
                w = self.spare.get_nowait()
            except queue.Empty:
                return
            if w.alive and any(slot.adopt(w) for slot in self.slots):
                continue
            w.close()

    def stage_pool(self) -> ProcessPoolExecutor:
        if self._stage_pool is None:
            # spawn: this process runs threads (workers' pipes, progress); forking it could copy a held lock
            ctx = multiprocessing.get_context("spawn")
            self._stage_pool = ProcessPoolExecutor(
                self.stage_workers, mp_context=ctx, initializer=_lower_priority
            )
        return self._stage_pool

    def stop(self) -> None:
        """Kill every worker now (Ctrl-C, SIGTERM): nothing half-written reaches a final path (stage outputs
        are redone whole by --allow-skips when unfinished)."""
        self._stop.set()
        for slot in self.slots:
            slot.stop()
        pool, self._stage_pool = self._stage_pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for slot in self.slots:
            slot.close()
        pool, self._stage_pool = self._stage_pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class _Source:
    """The job iterator shared by the slot threads (one at a time: planning may run inside `next`)."""

    def __init__(self, it: Iterator[SequenceJob]) -> None:
        self._it = it
        self._lock = threading.Lock()
        self.seen: list[SequenceJob] = []

    def next(self) -> tuple[int, SequenceJob] | None:
        with self._lock:
            try:
                job = next(self._it)
            except StopIteration:
                return None
            self.seen.append(job)
            return len(self.seen) - 1, job


class _Stages:
    """Stage tasks of rendered sequences: submitted when what they read is ready, outcomes back in `done`."""

    def __init__(self, pool: LocalPool, stages: StageTasks | None, emit: EventFn, done: queue.Queue) -> None:
        self.pool = pool
        self.stages = stages
        self.emit = emit
        self.done = done
        self.outcomes: list[StageOutcome] = []
        self.running: set[Future] = set()
        self.waiting: dict[tuple[str, str], list[StageTask]] = {}
        """(key, stage) -> tasks waiting for that stage of that sequence."""
        self.jobs: dict[str, SequenceJob] = {}

    def idle(self) -> bool:
        return not self.running

    def after_render(self, outcome: JobOutcome) -> None:
        if self.stages is None:
            return
        tasks = self.stages(outcome.job)
        keys = list(dict.fromkeys(t.key for t in tasks))  # one per sequence; a rig's: one per camera
        for task in tasks:
            self.jobs[task.key] = outcome.job
            self.waiting.setdefault((task.key, task.pipeline.depends_on(task.stage)), []).append(task)
        for key in keys:
            self._release(key, "render", outcome.status != "failed", f"its render failed: {outcome.error}")

    def finished(self, payload: tuple[Future, StageOutcome]) -> None:
        fut, outcome = payload
        self.running.discard(fut)
        self._record(outcome)
        t = outcome.task
        self._release(t.key, t.stage, outcome.status != "failed", f"its {t.stage} stage failed")

    def _release(self, key: str, stage: str, ok: bool, why: str) -> None:
        for task in self.waiting.pop((key, stage), []):
            if ok:
                self._submit(task)
            else:
                self._record(blocked(task, why))
                self._release(key, task.stage, False, why)

    def _submit(self, task: StageTask) -> None:
        fut = self.pool.stage_pool().submit(run_stage, task, self.pool.max_retries, 1)
        self.running.add(fut)

        def back(f: Future, task: StageTask = task) -> None:
            try:
                outcome = f.result()
            except BaseException as exc:  # the process died (killed, out of memory) or a bug of ours
                outcome = StageOutcome(task, "failed", error=f"{type(exc).__name__}: {exc}")
            self.done.put(("stage", (f, outcome)))

        fut.add_done_callback(back)

    def _record(self, outcome: StageOutcome) -> None:
        self.outcomes.append(outcome)
        self.emit(
            Event("stage", -1, self.jobs.get(outcome.task.key), message=outcome.task.stage, stage=outcome)
        )


def _lower_priority() -> None:
    with contextlib.suppress(OSError):  # not permitted: run at normal priority
        os.nice(STAGE_NICENESS)
