"""`camsim create-datasets`: many scenes, non-overlapping sequences, a pool of warm workers, resume."""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from camsim.config import RenderConfig

log = logging.getLogger("camsim")


@dataclass
class CreateDatasets:
    """Render sequences sampled from every scene in a folder into DATASETS/renders/SCENE/SEQUENCE-ID/."""

    scenes_dir: Path
    """Folder of .blend scenes (and one level of sub-folders)."""
    datasets_dir: Path
    """Output folder; sequences go to renders/SCENE/SEQUENCE-ID/ inside it."""
    render_config: RenderConfig = field(default_factory=RenderConfig)
    """Rendering and ground-truth settings."""
    sequences_per_scene: int = 1
    """Non-overlapping sequences to sample from each scene; none crosses a camera cut (a timeline marker
    bound to a camera). A scene too short for them fails alone."""
    num_frames: int | None = None
    """Frames per sequence. Default: the most that fit: the whole range (with camera cuts: the longest
    shot) for one sequence, else the range split evenly."""
    allow_skips: bool = False
    """Resume: skip complete sequences and render only the missing or damaged frames (of complete ones too).
    A sequence rendered with other settings is refused (exit 2)."""
    overwrite: bool = False
    """Re-render sequences whose folders hold a render (with other settings too): their old outputs are removed
    first."""
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
    """Seed of random sampling and of the dispatch order."""
    max_retries: int = 2
    """Retries of a failed sequence on a fresh worker (crash, hang, render error)."""
    cluster: str | None = None
    """Run on Dask: `tcp://HOST:PORT` of a running scheduler, or `local` for a LocalCluster."""

    def run(self) -> int:
        # SIGTERM (kill, SLURM, Kubernetes) stops the run like Ctrl-C from the very start: planning starts
        # a Blender worker too, and the default action would skip every cleanup.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return self._run()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _run(self) -> int:
        from camsim.errors import UserInputError

        config = self.render_config.validate()
        if self.max_retries < 0:
            raise UserInputError(f"--max-retries must be 0 or more, got {self.max_retries}")
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

        prepare_output_parent(self.datasets_dir)
        scenes = find_scenes(self.scenes_dir)
        require_blender(config.executable)  # planning starts Blender: say so before anything is created
        planner: list = []  # the Blender that read the scenes: it becomes the first pool worker
        try:
            plan = self._plan(scenes, config, reuse, planner)
            if not plan.jobs:
                raise UserInputError(f"no scene could be planned, nothing to render: {_why(plan.failures)}")
            if self.dry_run:
                _print_plan(plan)
                return 1 if plan.failures else 0
            from camsim.planning import check_outputs, claim_outputs

            check_outputs(plan.jobs)
            plan.jobs = claim_outputs(plan.jobs)
            warm = planner.pop() if planner and not self.cluster else None
            return self._render(plan, config, warm)
        finally:
            for w in planner:
                w.close()

    def _plan(self, scenes, config, reuse, holder: list):  # type: ignore[no-untyped-def]
        """Plan every scene; `holder` receives the (still running) Blender that read the ranges."""
        from camsim.blender.worker import BlenderWorker, options_from_config
        from camsim.planning import PlanOptions, plan_datasets

        options = PlanOptions(self.sequences_per_scene, self.num_frames, self.anim_start, self.anim_end,
                              self.sampling, self.seed)  # fmt: skip

        from camsim.planning import SceneRange

        scene_name = getattr(config, "scene", None)  # --render-config.scene: plan the scene that renders

        def read_range(scene) -> SceneRange:  # type: ignore[no-untyped-def]
            from camsim.errors import SceneError, WorkerError

            if not holder or not holder[-1].alive:
                for dead in holder:
                    dead.kill()
                holder.clear()
                holder.append(BlenderWorker(options_from_config(config, "worker-1")).start())
            try:
                info = holder[-1].scene_range(scene.path.resolve(), scene_name)
            except WorkerError as exc:
                raise SceneError(f"Blender could not read the scene: {exc}") from None
            if not info.has_camera:
                raise SceneError("scene has no camera")
            return SceneRange(info.frame_start, info.frame_end, tuple(info.cuts), info.camera_problem)

        return plan_datasets(scenes, self.datasets_dir, config, options, read_range, reuse)

    def _render(self, plan, config, warm=None) -> int:  # type: ignore[no-untyped-def]
        from camsim.jobs import JobOutcome
        from camsim.local import LocalPool
        from camsim.planning import dispatch_order
        from camsim.progress import RunView, progress_bar

        jobs = dispatch_order(plan.jobs, self.seed)
        t0 = time.monotonic()
        if self.cluster:
            from camsim.dask import DaskRunner

            runner = DaskRunner(self.cluster, config, self.max_retries, self.datasets_dir)
        else:
            runner = LocalPool(config, min(config.jobs, len(jobs)), self.max_retries, warm=warm)
        with progress_bar("frames") as bar:
            view = RunView(bar, len(jobs), plan.total_frames)
            try:
                outcomes: list[JobOutcome] = runner.run(jobs, view.on_event)
            except KeyboardInterrupt:
                log.warning("interrupted: workers stopped; rerun with --allow-skips to continue")
                raise
        elapsed = time.monotonic() - t0
        return _summarise(outcomes, plan, elapsed)


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


def _summarise(outcomes, plan, elapsed: float) -> int:  # type: ignore[no-untyped-def]
    from camsim.progress import report_console

    done = [o for o in outcomes if o.status == "done"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    failed = [o for o in outcomes if o.status == "failed"]
    rendered = sum(o.result.frames_rendered for o in done if o.result)
    console = report_console(stderr=True)
    console.print(
        f"sequences: {len(done)} done, {len(skipped)} skipped, {len(failed) + len(plan.failures)} failed; "
        f"{rendered} frames rendered in {elapsed:.1f} s ({rendered / elapsed if elapsed > 0 else 0:.2f} frames/s)"
    )
    for f in plan.failures:
        console.print(f"[red]FAILED[/] {f.scene.name}: {f.error}", markup=True, highlight=False)
    for o in failed:
        console.print(
            f"[red]FAILED[/] {o.job.scene_name}/{o.job.sequence_id}: {o.error} (log: {o.log_path or '-'})",
            markup=True,
            highlight=False,
        )
    return 1 if failed or plan.failures else 0
