"""One create-datasets run: plan scenes as they are read, render on an executor, run the stages, keep the
manifest.

Scenes are read in parallel (camsim.survey: warm Blenders, or Dask tasks) with dataset.json's scene cache
first; each read scene is planned (camsim.planning), its render and stage folders checked (refusals are bad
input, before anything of that scene is written), and its jobs go to the runner at once, so rendering starts
with the first planned scene. Every cached scene is planned and checked before the first job goes out: a
rerun refuses a changed setting before anything renders. The runner (local.LocalPool or dask.DaskRunner)
renders and runs each sequence's stages; the Ledger records it all in dataset.json. Nothing here prints: the
command draws progress through the `view` it passes and prints the `Report`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camsim.config import RenderConfig
from camsim.errors import DatasetError, SceneError, UserInputError
from camsim.jobs import Event, JobOutcome, SequenceJob
from camsim.manifest import MANIFEST, STAGES, Manifest, Splits, read_manifest, sequence_key
from camsim.planning import DatasetPlan, PlanOptions, ScenePlanFailure, plan_datasets
from camsim.resume import Reuse
from camsim.sampling import SceneEntry
from camsim.spares import Spares
from camsim.stages import Pipeline, StageOutcome, StageTask
from camsim.survey import SceneRead

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What a run did, for the command's summary."""

    outcomes: list[JobOutcome]
    stages: list[StageOutcome]
    failures: list[ScenePlanFailure]
    seconds: float


@dataclass
class RunOptions:
    """The parts of create-datasets' configuration a run needs besides the render config and the stages."""

    datasets_dir: Path
    plan: PlanOptions
    reuse: Reuse
    max_retries: int = 2
    cluster: str | None = None
    stage_workers: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    """The full configuration as plain JSON (recorded in dataset.json)."""


def open_manifest(datasets_dir: Path) -> Manifest | None:
    """The folder's dataset.json (None when there is none); a damaged one is bad input."""
    try:
        return read_manifest(datasets_dir)
    except DatasetError as exc:
        raise UserInputError(f"{exc}; move it away (or fix it) to plan the dataset again") from None


def run_splits(
    manifest: Manifest | None, scenes: list[SceneEntry], fractions: tuple[float, ...] | None, seed: int
) -> Splits | None:
    """The run's Splits: the manifest's (scenes it already assigned keep their split), new scenes assigned."""
    from camsim.splits import assign_splits, split_names

    old = manifest.splits if manifest else None
    if fractions is None:
        return old
    if old is not None and (list(old.fractions) != list(fractions) or old.seed != seed):
        raise UserInputError(
            f"{MANIFEST} holds splits made with --splits {' '.join(map(str, old.fractions))} --seed "
            f"{old.seed} (this run: --splits {' '.join(map(str, fractions))} --seed {seed}); pass those, or "
            "make a new dataset folder"
        )
    fixed = dict(old.scenes) if old else {}
    names = [s.name for s in scenes]
    return Splits(
        list(split_names(fractions)), list(fractions), seed, assign_splits(names, fractions, seed, fixed)
    )


def uncached_scenes(
    scenes: list[SceneEntry], manifest: Manifest | None, config: RenderConfig
) -> list[SceneEntry]:
    """The scenes Blender must read (the manifest's scene cache does not answer them)."""
    from camsim.survey import partition

    return partition(scenes, manifest.scenes if manifest else {}, config.scene)[1]


def why(failures: list[ScenePlanFailure]) -> str:
    """The failures on one line (log lines may go elsewhere): scenes with the same reason grouped, at most 3."""
    by_reason: dict[str, list[str]] = {}
    for f in failures:
        by_reason.setdefault(f.error, []).append(f.scene.name)
    parts = []
    for reason, names in list(by_reason.items())[:3]:
        who = ", ".join(names[:3]) + (f" (and {len(names) - 3} more)" if len(names) > 3 else "")
        parts.append(f"{who}: {reason}")
    more = f" (and {len(by_reason) - 3} more reasons)" if len(by_reason) > 3 else ""
    return "; ".join(parts) + more


class DatasetRun:
    """One create-datasets run: plan scenes as they are read, render, run the stages, keep the manifest."""

    def __init__(
        self,
        options: RunOptions,
        config: RenderConfig,
        pipeline: Pipeline,
        manifest: Manifest | None,
        splits: Splits | None,
    ) -> None:
        import camsim
        from camsim.ledger import Ledger

        self.options = options
        self.config = config
        self.pipeline = pipeline
        self.reuse = options.reuse
        manifest = manifest or Manifest()
        header = {
            "config": options.config,
            "stages": [s for s in STAGES if s in {*manifest.stages, "render", *pipeline.stages}],
            "keep_interpolated": pipeline.keep_interpolated,
            "splits": splits,
            "camsim_version": camsim.__version__,
        }
        self.ledger = Ledger(options.datasets_dir, manifest, header)
        self.camera = config.scene
        self.failures: list[ScenePlanFailure] = []
        self.jobs: list[SequenceJob] = []
        self.view: Any = None
        self.spare = Spares()

    # -- planning

    def reads(self, scenes: list[SceneEntry], runner: Any) -> Iterator[SceneRead]:
        """SceneRead of every scene: cached ones first (no Blender), then as Blender reads them."""
        from camsim.survey import partition, survey_local

        cache = self.ledger.manifest.scenes
        if runner is not None and self.options.cluster:
            done, fresh = partition(scenes, cache, self.camera)
            yield from done
            if fresh:
                yield from runner.survey(fresh, self.config, self.camera)
            return
        workers = max(1, min(self.config.jobs, len(scenes)))
        yield from survey_local(scenes, self.config, workers, cache, self.camera, self.spare)

    def plan_scene(self, read: SceneRead) -> list[SequenceJob]:
        """The jobs of one read scene (checked, not yet claimed); a scene that fails goes to `failures`."""
        if read.record is not None:  # a crash or hang is not cached: the next run reads the scene again
            self.ledger.scene(read.scene.name, read.record)

        def known(scene: SceneEntry) -> Any:
            if read.range is None:
                raise SceneError(read.error or "scene could not be read")
            return read.range

        plan = plan_datasets(
            [read.scene], self.options.datasets_dir, self.config, self.options.plan, known, self.reuse
        )
        self.failures += plan.failures
        return plan.jobs

    def check(self, jobs: list[SequenceJob]) -> list[SequenceJob]:
        """Refuse outputs this run may not keep or replace (renders and stages), then claim them."""
        from camsim.planning import check_outputs, claim_outputs
        from camsim.resume import clear_outputs, holds_output
        from camsim.stages import check_task

        check_outputs(jobs)
        for job in jobs:
            for task in self.stage_tasks(job, self.reuse):
                check_task(task, job.frame_end - job.frame_start + 1)
        claimed = claim_outputs(jobs)
        for job in jobs:
            for task in self.stage_tasks(job, self.reuse):
                if self.reuse.overwrite and holds_output(task.output):
                    clear_outputs(task.output)
        return claimed

    def planned_jobs(self, reads: Iterable[SceneRead]) -> Iterator[SequenceJob]:
        """Jobs as scenes are planned: every cached scene is planned and checked before the first job goes
        out (a rerun refuses a changed setting before anything renders); then scene by scene."""
        first: list[SequenceJob] = []
        for read in reads:
            jobs = self.plan_scene(read)
            if read.cached:
                first += jobs
                continue
            if first:
                yield from self._emit(first)
                first = []
            yield from self._emit(jobs)
        if first:
            yield from self._emit(first)
        self._close_spares()  # every job is handed out: a warm Blender no slot took would sit idle
        if not self.jobs:
            raise UserInputError(f"no scene could be planned, nothing to render: {why(self.failures)}")
        self.ledger.flush()

    def _emit(self, jobs: list[SequenceJob]) -> Iterator[SequenceJob]:
        from camsim.planning import dispatch_order

        jobs = dispatch_order(self.check(jobs), self.options.plan.seed)  # workers render different scenes
        if jobs:
            self.ledger.accept()
        for job in jobs:
            split = (
                self.ledger.manifest.splits.scenes.get(job.scene_name)
                if self.ledger.manifest.splits
                else None
            )
            self.ledger.planned(job, split, self.pipeline.stages)
        self.jobs += jobs
        if self.view is not None:
            self.view.planned(len(self.jobs), sum(j.frame_end - j.frame_start + 1 for j in self.jobs))
        self.ledger.flush(force=False)
        yield from jobs

    def stage_tasks(self, job: SequenceJob, reuse: Reuse | None = None) -> list[StageTask]:
        from camsim.stages import tasks_for

        reuse = reuse or Reuse(resume=True, verify=self.reuse.verify)
        key = sequence_key(job.scene_name, job.sequence_id)  # a rig: every camera's stages
        return tasks_for(key, self.options.datasets_dir, self.pipeline, reuse, job.settings.cameras)

    # -- running

    def check_numbers(self) -> None:
        """Numbers no scene could satisfy are bad input before any scene is read."""
        plan_datasets([], self.options.datasets_dir, self.config, self.options.plan, lambda s: (0, 0))

    def dry_run(self, scenes: list[SceneEntry]) -> DatasetPlan:
        """Read and plan every scene, render nothing; the scene cache is written (a later run reads no scene
        twice)."""
        self.check_numbers()
        plan = DatasetPlan()
        runner = self._runner() if self.options.cluster else None
        try:
            with runner if runner is not None else contextlib.nullcontext():
                for read in self.reads(scenes, runner):
                    plan.jobs += self.plan_scene(read)
        finally:
            self._close_spares()
        plan.failures = self.failures
        if not plan.jobs:
            raise UserInputError(f"no scene could be planned, nothing to render: {why(plan.failures)}")
        self.ledger.flush(cache_only=True)
        return plan

    def render(self, scenes: list[SceneEntry], view: Any = None) -> Report:
        """Plan, render and run the stages. `view` (progress.RunView) gets every event and the growing totals."""
        from camsim.cpus import available_cpus
        from camsim.local import LocalPool

        self.check_numbers()
        self.view = view
        t0 = time.monotonic()
        runner: Any
        if self.options.cluster:
            runner = self._runner()
        else:
            runner = LocalPool(self.config, max(1, self.config.jobs), self.options.max_retries, spare=self.spare,
                               stage_workers=self.options.stage_workers or available_cpus())  # fmt: skip

        def on_event(e: Event) -> None:
            if view is not None:
                view.on_event(e)
            if e.kind == "finished" and e.outcome is not None:
                self._rendered(e.outcome)
            elif e.kind == "stage" and e.stage is not None:
                self.ledger.staged(e.stage)

        try:
            with runner if self.options.cluster else contextlib.nullcontext():
                result = runner.run(self.planned_jobs(self.reads(scenes, runner)), on_event,
                                    self.stage_tasks if self.pipeline.stages else None)  # fmt: skip
        finally:
            self._close_spares()
            self.ledger.flush()
        return Report(result.outcomes, result.stages, self.failures, time.monotonic() - t0)

    def _close_spares(self) -> None:
        while True:
            try:
                self.spare.get_nowait().close()
            except queue.Empty:
                return

    def _runner(self) -> Any:
        from camsim.dask import DaskRunner

        assert self.options.cluster is not None
        return DaskRunner(
            self.options.cluster, self.config, self.options.max_retries, self.options.datasets_dir
        )

    def _rendered(self, outcome: JobOutcome) -> None:
        from camsim.resume import settings_hash

        m = self.ledger.manifest
        if m.blender_version is None and outcome.result is not None:
            m.blender_version = outcome.result.scene_info.get("blender_version") or None
        self.ledger.rendered(outcome, settings_hash(outcome.job.settings.to_json()))
