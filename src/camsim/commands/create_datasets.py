"""`camsim create-datasets`: the flags and the report of a dataset run (camsim.dataset_run does the work): many
scenes, non-overlapping sequences, a pool of warm workers, stages after rendering, splits, resume."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from camsim.config import RenderConfig
from camsim.emulate.events import EventsConfig
from camsim.emulate.imu import ImuConfig
from camsim.emulate.itof import ItofConfig
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.rgb import RgbConfig
from camsim.emulate.spad import SpadConfig

if TYPE_CHECKING:
    from camsim.dataset_run import Report
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
    interpolated/SCENE/SEQUENCE-ID/ (a rig's: each camera into interpolated/SCENE/SEQUENCE-ID/CAMERA/); the
    emulators then read the interpolated frames."""
    interpolate_beta: float = 60.0
    """Depth-test sharpness of interpolation's softmax splatting (as `camsim interpolate --beta`)."""
    keep_interpolated: bool = True
    """Write the interpolated sequences. --no-keep-interpolated computes the interpolated frames inside each
    emulator instead (nothing written: the N-times frames are most of a dataset's bytes)."""
    emulate: tuple[Literal["spad", "rgb", "events", "imu", "itof", "lidar"], ...] = ()
    """Sensors to emulate for every sequence (as `camsim emulate SENSOR`), each into SENSOR/SCENE/SEQUENCE-ID/
    (a rig's: each camera into SENSOR/SCENE/SEQUENCE-ID/CAMERA/), configured by its own --SENSOR.* flags. Each
    sequence (and camera) gets its own noise: the sensor's seed is derived from --SENSOR.seed and the
    sequence's path."""
    spad: SpadConfig = field(default_factory=SpadConfig)
    """Single-photon camera (--emulate spad): the options of `camsim emulate spad`."""
    rgb: RgbConfig = field(default_factory=RgbConfig)
    """Conventional RGB camera (--emulate rgb): the options of `camsim emulate rgb`."""
    events: EventsConfig = field(default_factory=EventsConfig)
    """Event camera (--emulate events): the options of `camsim emulate events`."""
    imu: ImuConfig = field(default_factory=ImuConfig)
    """IMU (--emulate imu): the options of `camsim emulate imu`."""
    itof: ItofConfig = field(default_factory=ItofConfig)
    """Indirect time-of-flight camera (--emulate itof; needs --render-config.albedo): the options of `camsim
    emulate itof`."""
    lidar: LidarConfig = field(default_factory=LidarConfig)
    """Single-photon LiDAR (--emulate lidar; needs --render-config.albedo): the options of `camsim emulate
    lidar`."""
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
        if "all" in config.cameras and (pipeline.stages or pipeline.interpolate_factor):
            raise UserInputError(  # a rig's stages run per camera: planned (and checked) before the render
                "--render-config.cameras all cannot go with --interpolate-factor or --emulate: the stages run "
                "per camera and are planned before the render; name the cameras"
            )
        _check_sensor_inputs(pipeline, config)
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
        from camsim.dataset_run import DatasetRun, RunOptions, open_manifest, run_splits, uncached_scenes
        from camsim.render import prepare_output_parent
        from camsim.sampling import find_scenes

        scenes = find_scenes(self.scenes_dir)
        manifest = open_manifest(self.datasets_dir)
        splits = run_splits(manifest, scenes, fractions, self.seed)
        if uncached_scenes(scenes, manifest, config):
            require_blender(config.executable)  # planning starts Blender: say so before anything is created
        prepare_output_parent(self.datasets_dir)
        from camsim.configfile import to_plain
        from camsim.planning import PlanOptions

        options = RunOptions(
            datasets_dir=self.datasets_dir,
            plan=PlanOptions(
                self.sequences_per_scene,
                self.num_frames,
                self.anim_start,
                self.anim_end,
                self.sampling,
                self.seed,
            ),
            reuse=reuse,
            max_retries=self.max_retries,
            cluster=self.cluster,
            stage_workers=self.stage_workers,
            config=to_plain(self),
        )
        run = DatasetRun(options, config, pipeline, manifest, splits)
        if self.dry_run:
            plan = run.dry_run(scenes)
            _print_plan(plan)
            return 1 if plan.failures else 0
        from camsim.progress import RunView, progress_bar

        with progress_bar("frames") as bar:
            view = RunView(bar, 0, 0)
            view.add_stages(pipeline.stages, None)
            try:
                report = run.render(scenes, view)
            except KeyboardInterrupt:
                log.warning("interrupted: workers stopped; rerun with --allow-skips to continue")
                raise
        return _summarise(report)


def _check_sensor_inputs(pipeline: Pipeline, config: RenderConfig) -> None:
    """A sensor that reads a pass the render will not write, or frames it cannot read interpolated on the fly,
    is bad input before anything renders."""
    from camsim.emulate.sensors import SENSORS
    from camsim.errors import UserInputError
    from camsim.passes import NORMAL

    for name, cfg in pipeline.sensors:
        if pipeline.interpolate_factor and not pipeline.keep_interpolated and not SENSORS[name].streamed:
            raise UserInputError(
                f"--emulate {name} cannot read frames interpolated on the fly: leave out --no-keep-interpolated "
                "(the interpolated sequences are then written and it reads those)"
            )
        for kind in SENSORS[name].passes(cfg):
            if getattr(config, kind.flag):
                continue
            also = f" (or --{name}.no-incidence)" if kind is NORMAL else ""
            raise UserInputError(
                f"--emulate {name} reads the {kind.name} pass: render it with --render-config.{kind.flag}{also}"
            )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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


def _summarise(report: Report) -> int:
    from camsim.progress import report_console

    outcomes, stages, failures, elapsed = report.outcomes, report.stages, report.failures, report.seconds
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
