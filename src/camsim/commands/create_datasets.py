"""`camsim create-datasets`: many scenes, non-overlapping sequences, a pool of warm workers, resume."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from camsim.config import RenderConfig
from camsim.emulate.events import EventsConfig
from camsim.emulate.imu import ImuConfig
from camsim.emulate.rgb import RgbConfig
from camsim.emulate.spad import SpadConfig

if TYPE_CHECKING:
    from camsim.stages import Pipeline

log = logging.getLogger("camsim")


@dataclass
class CreateDatasets:
    """Render sequences sampled from every scene in a folder into DATASETS/renders/SCENE/SEQUENCE-ID/, then
    (optionally) interpolate them and emulate sensors, each stage into DATASETS/<stage>/SCENE/SEQUENCE-ID/."""

    scenes_dir: Path
    """Folder of .blend scenes (and one level of sub-folders)."""
    datasets_dir: Path
    """Output folder; sequences go to renders/SCENE/SEQUENCE-ID/ inside it, stages beside renders/, and
    dataset.json (the manifest) at its top."""
    render_config: RenderConfig = field(default_factory=RenderConfig)
    """Rendering and ground-truth settings."""
    sequences_per_scene: int = 1
    """Non-overlapping sequences to sample from each scene; none crosses a camera cut (a timeline marker
    bound to a camera). A scene too short for them fails alone."""
    num_frames: int | None = None
    """Frames per sequence. Default: the most that fit: the whole range (with camera cuts: the longest
    shot) for one sequence, else the range split evenly."""
    interpolate_factor: int | None = None
    """Interpolate every rendered sequence to N times its frame rate (as `camsim interpolate --factor N`) into
    interpolated/SCENE/SEQUENCE-ID/; the emulators then read the interpolated frames."""
    interpolate_beta: float = 60.0
    """Depth-test sharpness of interpolation's softmax splatting (as `camsim interpolate --beta`)."""
    keep_interpolated: bool = True
    """Write the interpolated sequences. --no-keep-interpolated computes the interpolated frames inside each
    emulator instead (nothing written: the N-times frames are most of a dataset's bytes)."""
    emulate: tuple[Literal["spad", "rgb", "events", "imu"], ...] = ()
    """Sensors to emulate for every sequence (as `camsim emulate SENSOR`), each into SENSOR/SCENE/SEQUENCE-ID/,
    configured by its own --SENSOR.* flags. Each sequence gets its own noise: the sensor's seed is derived
    from --SENSOR.seed and the sequence."""
    spad: SpadConfig = field(default_factory=SpadConfig)
    """Single-photon camera (--emulate spad): the options of `camsim emulate spad`."""
    rgb: RgbConfig = field(default_factory=RgbConfig)
    """Conventional RGB camera (--emulate rgb): the options of `camsim emulate rgb`."""
    events: EventsConfig = field(default_factory=EventsConfig)
    """Event camera (--emulate events): the options of `camsim emulate events`."""
    imu: ImuConfig = field(default_factory=ImuConfig)
    """IMU (--emulate imu): the options of `camsim emulate imu`."""
    splits: tuple[float, ...] = ()
    """Fractions of scenes for the train, val (and test) splits, e.g. --splits 0.8 0.1 0.1. Whole scenes go to
    one split, decided from the scene names and --seed; scenes added later never move the others (the
    splits live in dataset.json)."""
    stage_workers: int = 0
    """Processes running the stages after rendering (0: one per CPU this process may use); they run at low
    priority while Blender renders."""
    allow_skips: bool = False
    """Resume: skip complete sequences and stages, render only the missing or damaged frames (of complete ones
    too) and run only the missing stages. A sequence or stage made with other settings is refused (exit 2)."""
    overwrite: bool = False
    """Re-render sequences whose folders hold a render (with other settings too) and redo their stages: the old
    outputs are removed first."""
    verify: bool = False
    """With --allow-skips: decode every existing file instead of the cheap check (present, not cut short)."""
    dry_run: bool = False
    """Print the plan (scenes, sequences, frame ranges, total frames) and render nothing."""
    anim_start: int | None = None
    """First frame of every scene's range (keyframe-multiplied), instead of the scene's own."""
    anim_end: int | None = None
    """Last frame of every scene's range (keyframe-multiplied), instead of the scene's own."""
    sampling: Literal["even", "random"] = "even"
    """Where sequences go in a scene's range: spread evenly, or uniformly at random without overlap."""
    seed: int = 0
    """Seed of random sampling, of the splits and of the dispatch order."""
    max_retries: int = 2
    """Retries of a failed sequence on a fresh worker (crash, hang, render error), and of a failed stage."""
    cluster: str | None = None
    """Run on Dask: `tcp://HOST:PORT` of a running scheduler, or `local` for a LocalCluster."""
    config: Path | None = None
    """YAML file of these options (as --print-config writes it); flags on the command line override it."""
    print_config: bool = False
    """Print the full configuration as YAML (for --config) and exit."""

    def run(self) -> int:
        if self.print_config:
            from camsim.configfile import to_yaml

            print(to_yaml(self), end="")
            return 0
        # SIGTERM (kill, SLURM, Kubernetes) stops the run like Ctrl-C from the very start: planning starts
        # a Blender worker too, and the default action would skip every cleanup.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return self._run()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def pipeline(self) -> Pipeline:
        """The stages after rendering (validated: bad settings are bad input)."""
        from camsim.stages import Pipeline

        sensors = tuple((name, getattr(self, name)) for name in self.emulate)
        return Pipeline(self.interpolate_factor, self.interpolate_beta, self.keep_interpolated,
                        tuple(self.emulate), sensors)  # fmt: skip

    def _run(self) -> int:
        from camsim.errors import UserInputError

        config = self.render_config.validate()
        if self.max_retries < 0:
            raise UserInputError(f"--max-retries must be 0 or more, got {self.max_retries}")
        if self.stage_workers < 0:
            raise UserInputError(f"--stage-workers must be 0 or more, got {self.stage_workers}")
        pipeline = self.pipeline()
        from camsim.splits import check_fractions

        fractions = check_fractions(self.splits) if self.splits else None
        from camsim.resume import Reuse

        reuse = Reuse(  # --allow-skips with --overwrite is refused here, before any Blender work
            resume=self.allow_skips or config.allow_skips, overwrite=self.overwrite, verify=self.verify
        )
        if self.cluster:  # a bad address is bad input: refuse it before any Blender work
            from camsim.dask import cluster_address

            cluster_address(self.cluster)
        if self.datasets_dir.exists() and not self.datasets_dir.is_dir():
            raise UserInputError(f"--datasets-dir exists and is not a folder: {self.datasets_dir}")
        from camsim.blender.worker import require_blender
        from camsim.render import prepare_output_parent
        from camsim.sampling import find_scenes

        scenes = find_scenes(self.scenes_dir)
        manifest = _open_manifest(self.datasets_dir)
        splits = _splits(manifest, scenes, fractions, self.seed)
        uncached = _uncached(scenes, manifest, config)
        if uncached:
            require_blender(config.executable)  # planning starts Blender: say so before anything is created
        prepare_output_parent(self.datasets_dir)
        run = _Run(self, config, pipeline, reuse, manifest, splits)
        return run.execute(scenes)


def _open_manifest(datasets_dir: Path):  # type: ignore[no-untyped-def]
    from camsim.errors import DatasetError, UserInputError
    from camsim.manifest import read_manifest

    try:
        return read_manifest(datasets_dir)
    except DatasetError as exc:
        raise UserInputError(f"{exc}; move it away (or fix it) to plan the dataset again") from None


def _splits(manifest, scenes, fractions, seed: int):  # type: ignore[no-untyped-def]
    """The run's Splits: the manifest's (scenes it already assigned keep their split), new scenes assigned."""
    from camsim.errors import UserInputError
    from camsim.manifest import Splits
    from camsim.splits import assign_splits, split_names

    old = manifest.splits if manifest else None
    if fractions is None:
        return old
    if old is not None and (list(old.fractions) != list(fractions) or old.seed != seed):
        raise UserInputError(
            f"{manifest_name()} holds splits made with --splits {' '.join(map(str, old.fractions))} --seed "
            f"{old.seed} (this run: --splits {' '.join(map(str, fractions))} --seed {seed}); pass those, or "
            "make a new dataset folder"
        )
    fixed = dict(old.scenes) if old else {}
    names = [s.name for s in scenes]
    return Splits(
        list(split_names(fractions)), list(fractions), seed, assign_splits(names, fractions, seed, fixed)
    )


def manifest_name() -> str:
    from camsim.manifest import MANIFEST

    return MANIFEST


def _uncached(scenes, manifest, config) -> list:  # type: ignore[no-untyped-def]
    from camsim.survey import partition

    return partition(scenes, manifest.scenes if manifest else {}, getattr(config, "scene", None))[1]


class _Run:
    """One create-datasets run: plan scenes as they are read, render, run the stages, keep the manifest."""

    def __init__(
        self, cmd: CreateDatasets, config: RenderConfig, pipeline: Pipeline, reuse, manifest, splits
    ) -> None:  # type: ignore[no-untyped-def]
        from camsim.configfile import to_plain
        from camsim.ledger import Ledger
        from camsim.manifest import STAGES, Manifest
        from camsim.planning import PlanOptions

        self.cmd = cmd
        self.config = config
        self.pipeline = pipeline
        self.reuse = reuse
        from camsim import __version__

        manifest = manifest or Manifest()
        header = {
            "config": to_plain(cmd),
            "stages": [s for s in STAGES if s in {*manifest.stages, "render", *pipeline.stages}],
            "keep_interpolated": pipeline.keep_interpolated,
            "splits": splits,
            "camsim_version": __version__,
        }
        self.ledger = Ledger(cmd.datasets_dir, manifest, header)
        self.options = PlanOptions(cmd.sequences_per_scene, cmd.num_frames, cmd.anim_start, cmd.anim_end,
                                   cmd.sampling, cmd.seed)  # fmt: skip
        self.camera = getattr(config, "scene", None)
        self.failures: list = []
        self.jobs: list = []
        self.view = None

    # -- planning

    def reads(self, scenes, runner):  # type: ignore[no-untyped-def]
        """SceneRead of every scene: cached ones first (no Blender), then as Blender reads them."""
        from camsim.survey import partition, survey_local

        cache = self.ledger.manifest.scenes
        if runner is not None and self.cmd.cluster:
            done, fresh = partition(scenes, cache, self.camera)
            yield from done
            if fresh:
                yield from runner.survey(fresh, self.config, self.camera)
            return
        workers = max(1, min(self.config.jobs, len(scenes)))
        yield from survey_local(scenes, self.config, workers, cache, self.camera, self.spare)

    def plan_scene(self, read):  # type: ignore[no-untyped-def]
        """The jobs of one read scene (checked, not yet claimed); a scene that fails goes to `failures`."""
        from camsim.errors import SceneError
        from camsim.planning import plan_datasets

        if read.record is not None:  # a crash or hang is not cached: the next run reads the scene again
            self.ledger.scene(read.scene.name, read.record)

        def known(scene):  # type: ignore[no-untyped-def]
            if read.range is None:
                raise SceneError(read.error or "scene could not be read")
            return read.range

        plan = plan_datasets(
            [read.scene], self.cmd.datasets_dir, self.config, self.options, known, self.reuse
        )
        self.failures += plan.failures
        return plan.jobs

    def check(self, jobs: list) -> list:
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

    def planned_jobs(self, reads):  # type: ignore[no-untyped-def]
        """Jobs as scenes are planned: every cached scene is planned and checked before the first job goes
        out (a rerun refuses a changed setting before anything renders); then scene by scene."""
        from camsim.errors import UserInputError

        first: list = []
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
        if not self.jobs:
            raise UserInputError(f"no scene could be planned, nothing to render: {_why(self.failures)}")
        self.ledger.flush()

    def _emit(self, jobs: list):  # type: ignore[no-untyped-def]
        from camsim.planning import dispatch_order

        jobs = dispatch_order(self.check(jobs), self.cmd.seed)  # parallel workers render different scenes
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

    def stage_tasks(self, job, reuse=None):  # type: ignore[no-untyped-def]
        from camsim.manifest import sequence_key
        from camsim.resume import Reuse
        from camsim.stages import tasks_for

        reuse = reuse or Reuse(resume=True, verify=self.reuse.verify)
        return tasks_for(
            sequence_key(job.scene_name, job.sequence_id), self.cmd.datasets_dir, self.pipeline, reuse
        )

    # -- running

    def execute(self, scenes) -> int:  # type: ignore[no-untyped-def]
        import queue

        from camsim.planning import plan_datasets

        plan_datasets(
            [], self.cmd.datasets_dir, self.config, self.options, lambda s: (0, 0)
        )  # bad numbers: exit 2
        self.spare: queue.Queue = queue.Queue()
        try:
            if self.cmd.dry_run:
                return self._dry_run(scenes)
            return self._render(scenes)
        finally:
            while not self.spare.empty():
                self.spare.get_nowait().close()

    def _dry_run(self, scenes) -> int:  # type: ignore[no-untyped-def]
        from camsim.errors import UserInputError
        from camsim.planning import DatasetPlan

        plan = DatasetPlan()
        runner = self._runner() if self.cmd.cluster else None
        with runner if runner is not None else contextlib.nullcontext():
            for read in self.reads(scenes, runner):
                plan.jobs += self.plan_scene(read)
        plan.failures = self.failures
        if not plan.jobs:
            raise UserInputError(f"no scene could be planned, nothing to render: {_why(plan.failures)}")
        self.ledger.flush(cache_only=True)  # the scene cache: a later run reads no scene twice
        _print_plan(plan)
        return 1 if plan.failures else 0

    def _runner(self):  # type: ignore[no-untyped-def]
        from camsim.dask import DaskRunner

        return DaskRunner(self.cmd.cluster, self.config, self.cmd.max_retries, self.cmd.datasets_dir)

    def _render(self, scenes) -> int:  # type: ignore[no-untyped-def]
        from camsim.cpus import available_cpus
        from camsim.local import LocalPool
        from camsim.progress import RunView, progress_bar

        t0 = time.monotonic()
        if self.cmd.cluster:
            runner = self._runner()
        else:
            runner = LocalPool(self.config, max(1, self.config.jobs), self.cmd.max_retries, spare=self.spare,
                               stage_workers=self.cmd.stage_workers or available_cpus())  # fmt: skip
        with contextlib.ExitStack() as stack:
            if self.cmd.cluster:
                stack.enter_context(runner)
            with progress_bar("frames") as bar:
                self.view = view = RunView(bar, 0, 0)
                view.add_stages(self.pipeline.stages, None)

                def on_event(e) -> None:  # type: ignore[no-untyped-def]
                    view.on_event(e)
                    if e.kind == "finished":
                        self._rendered(e.outcome)
                    elif e.kind == "stage":
                        self.ledger.staged(e.stage)

                try:
                    result = runner.run(self.planned_jobs(self.reads(scenes, runner)), on_event,
                                        self.stage_tasks if self.pipeline.stages else None)  # fmt: skip
                except KeyboardInterrupt:
                    log.warning("interrupted: workers stopped; rerun with --allow-skips to continue")
                    raise
                finally:
                    self.ledger.flush()
        elapsed = time.monotonic() - t0
        return _summarise(result.outcomes, result.stages, self.failures, elapsed)

    def _rendered(self, outcome) -> None:  # type: ignore[no-untyped-def]
        from camsim.resume import settings_hash

        m = self.ledger.manifest
        if m.blender_version is None and outcome.result is not None:
            m.blender_version = outcome.result.scene_info.get("blender_version") or None
        self.ledger.rendered(outcome, settings_hash(outcome.job.settings.to_json()))


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _why(failures) -> str:  # type: ignore[no-untyped-def]
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


def _print_plan(plan) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    from camsim.planning import describe_plan
    from camsim.progress import report_console

    table = Table(title="create-datasets plan")
    for col in ("scene", "sequence", "first", "last", "frames"):
        table.add_column(col, justify="right" if col in ("first", "last", "frames") else "left")
    for row in describe_plan(plan):
        table.add_row(*(str(row[c]) for c in ("scene", "sequence", "first", "last", "frames")))
    for f in plan.failures:
        table.add_row(f.scene.name, "[red]FAILED (below)[/]", "-", "-", "0")
    console = report_console()
    console.print(table)
    for f in plan.failures:
        console.print(f"[red]FAILED[/] {f.scene.name}: {f.error}", markup=True, highlight=False)
    scenes = len({j.scene_name for j in plan.jobs})
    n = len(plan.failures)
    failed = f"; {n} scene{'' if n == 1 else 's'} cannot be planned" if n else ""
    console.print(f"{scenes} scenes, {len(plan.jobs)} sequences, {plan.total_frames} frames in total{failed}")


def _summarise(outcomes, stages, failures, elapsed: float) -> int:  # type: ignore[no-untyped-def]
    from camsim.progress import report_console

    done = [o for o in outcomes if o.status == "done"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    failed = [o for o in outcomes if o.status == "failed"]
    rendered = sum(o.result.frames_rendered for o in done if o.result)
    console = report_console(stderr=True)
    console.print(
        f"sequences: {len(done)} done, {len(skipped)} skipped, {len(failed) + len(failures)} failed; "
        f"{rendered} frames rendered in {elapsed:.1f} s ({rendered / elapsed if elapsed > 0 else 0:.2f} frames/s)"
    )
    by_stage: dict[str, list] = {}
    for o in stages:
        by_stage.setdefault(o.task.stage, []).append(o)
    for stage, outs in by_stage.items():
        counts = {k: sum(o.status == k for o in outs) for k in ("done", "skipped", "failed")}
        console.print(
            f"{stage}: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
        )
    for message, _ in stage_warnings(stages):
        console.print(f"[yellow]WARNING[/] {message}", markup=True, highlight=False, soft_wrap=True)
    for f in failures:
        console.print(f"[red]FAILED[/] {f.scene.name}: {f.error}", markup=True, highlight=False)
    for o in failed:
        console.print(
            f"[red]FAILED[/] {o.job.scene_name}/{o.job.sequence_id}: {o.error} (log: {o.log_path or '-'})",
            markup=True,
            highlight=False,
        )
    stage_failed = [o for o in stages if o.status == "failed"]
    for o in stage_failed:
        console.print(
            f"[red]FAILED[/] {o.task.stage} of {o.task.key}: {o.error}", markup=True, highlight=False
        )
    return 1 if failed or failures or stage_failed else 0


FIXES = {
    "input frame rate too low": "render more frames per second (--render-config.keyframe-multiplier) or "
    "interpolate (--interpolate-factor N, or a larger N)",
}
"""A stage warning's fix in create-datasets terms (the emulators' own advice names their own commands)."""


def stage_warnings(stages) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Each distinct warning of the stages once (numbers differ per sequence: grouped without them), with the
    number of sequences that gave it and its fix."""
    import re

    groups: dict[tuple[str, str], list[str]] = {}
    for o in stages:
        for w in dict.fromkeys(o.warnings):
            shape = re.sub(r"[-+]?\d[\d.e+-]*", "#", w)
            groups.setdefault((o.task.stage, shape), []).append(w)
    out = []
    for (stage, _), found in groups.items():
        fix = next((f for k, f in FIXES.items() if k in found[0]), None)
        many = f" (in {len(found)} sequences; the first shown)" if len(found) > 1 else ""
        out.append((f"{stage}: {found[0]}{many}" + (f"; fix: {fix}" if fix else ""), len(found)))
    return out
