"""The local runner: `jobs` threads, each driving one warm Blender worker, taking jobs from a shared queue."""

from __future__ import annotations

import logging
import queue
import threading

from camsim.blender.worker import BlenderWorker
from camsim.config import RenderConfig
from camsim.jobs import Event, EventFn, JobOutcome, SequenceJob, WorkerSlot, run_job

log = logging.getLogger(__name__)


class LocalPool:
    """`jobs` threads, each driving one warm Blender worker; jobs are taken from a shared queue."""

    def __init__(
        self,
        config: RenderConfig,
        jobs: int,
        max_retries: int = 2,
        warm: BlenderWorker | None = None,
    ) -> None:
        """`warm`: an already started worker (the one that planned the run) for the first slot."""
        self.config = config
        self.slots = [WorkerSlot(config, index=i, jobs=jobs) for i in range(jobs)]
        if warm is not None and warm.alive:
            self.slots[0].worker = warm
            self.slots[0].started = 1
        self.max_retries = max_retries
        self._stop = threading.Event()

    def run(self, jobs: list[SequenceJob], on_event: EventFn | None = None) -> list[JobOutcome]:
        """Render every job; return outcomes in job order. Ctrl-C kills the workers and re-raises."""
        todo: queue.Queue[tuple[int, SequenceJob]] = queue.Queue()
        for i, job in enumerate(jobs):
            todo.put((i, job))
        outcomes: dict[int, JobOutcome] = {}
        done: queue.Queue[tuple[int, JobOutcome]] = queue.Queue()
        emit = on_event or (lambda e: None)

        def drive(slot: WorkerSlot) -> None:
            while not self._stop.is_set():
                try:
                    i, job = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = run_job(slot, job, self.max_retries, emit, self._stop.is_set)
                done.put((i, outcome))

        threads = [
            threading.Thread(target=drive, args=(slot,), name=f"camsim-slot-{slot.index}", daemon=True)
            for slot in self.slots[: max(1, min(len(self.slots), len(jobs)))]
        ]
        for t in threads:
            t.start()
        try:
            while len(outcomes) < len(jobs):
                try:
                    i, outcome = done.get(timeout=0.2)
                except queue.Empty:
                    if not any(t.is_alive() for t in threads) and done.empty():
                        break
                    continue
                outcomes[i] = outcome
                emit(Event("finished", -1, outcome.job, outcome=outcome))
            for t in threads:
                t.join()
            self.close()
        except BaseException:  # Ctrl-C/SIGTERM at any point, even after the last job: no worker survives
            self.stop()
            for t in threads:
                t.join(timeout=30)
            raise
        return [outcomes.get(i, JobOutcome(job, "failed", error="not run")) for i, job in enumerate(jobs)]

    def stop(self) -> None:
        """Kill every worker now (Ctrl-C, SIGTERM): nothing half-written reaches a final path."""
        self._stop.set()
        for slot in self.slots:
            slot.stop()

    def close(self) -> None:
        for slot in self.slots:
            slot.close()
