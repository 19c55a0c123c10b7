"""create-datasets: plan sequences over many scenes, then render them with an executor.

Planning is pure given each scene's frame range, camera cuts and camera check (read by one Blender
worker); execution is the executor's business (local pool or Dask). Layout:
DATASETS/renders/SCENE/SEQUENCE-ID/.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camsim.config import RenderConfig
from camsim.errors import CamsimError, SceneError, UserInputError
from camsim.jobs import SequenceJob
from camsim.render import check_blend_file, record_for
from camsim.resume import Reuse, check_folder, clear_outputs, holds_output
from camsim.sampling import (
    Sampling,
    SceneEntry,
    place_in_shots,
    place_sequences,
    scaled_cuts,
    scaled_range,
    sequence_id,
    split_shots,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanOptions:
    sequences_per_scene: int = 1
    num_frames: int | None = None
    anim_start: int | None = None
    anim_end: int | None = None
    sampling: Sampling = "even"
    seed: int = 0


@dataclass(frozen=True)
class SceneRange:
    """What planning needs from a scene: its frame range and camera cuts in scene frames (before the
    keyframe multiplier; a cut at c makes c the first frame of a new shot), and why camsim refuses its
    camera (None: it does not)."""

    start: int
    end: int
    cuts: tuple[int, ...] = ()
    camera_problem: str | None = None


@dataclass
class ScenePlanFailure:
    scene: SceneEntry
    error: str


@dataclass
class DatasetPlan:
    jobs: list[SequenceJob] = field(default_factory=list)
    failures: list[ScenePlanFailure] = field(default_factory=list)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    shots: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """Per planned scene: its range split at camera cuts (keyframe-multiplied frames); no sequence crosses one."""

    @property
    def total_frames(self) -> int:
        return sum(j.frame_end - j.frame_start + 1 for j in self.jobs)  # type: ignore[operator]


def renders_dir(datasets_dir: Path) -> Path:
    return datasets_dir / "renders"


def plan_datasets(
    scenes: list[SceneEntry],
    datasets_dir: Path,
    config: RenderConfig,
    options: PlanOptions,
    read_range: Callable[[SceneEntry], SceneRange | tuple[int, int]],
    reuse: Reuse | None = None,
) -> DatasetPlan:
    """Place sequences in every scene, none crossing a camera cut (with --render-config.cameras a rig's cameras
    are not switched by timeline markers: no cuts).

    A scene that cannot be read, whose camera camsim refuses, or that is too short (or cut into shots too
    short) for the asked sequences fails alone, into `plan.failures`. Numbers no scene could satisfy fail
    the whole plan with UserInputError before any scene is read; an --anim-start/--anim-end range outside a
    scene's range fails it (UserInputError) before anything is rendered.
    """
    if options.sequences_per_scene < 1:
        raise UserInputError(f"--sequences-per-scene must be at least 1, got {options.sequences_per_scene}")
    if options.num_frames is not None and options.num_frames < 1:
        raise UserInputError(f"--num-frames must be at least 1, got {options.num_frames}")
    if (options.anim_start is None) != (options.anim_end is None):
        raise UserInputError("--anim-start and --anim-end go together")
    fixed = None
    if options.anim_start is not None and options.anim_end is not None:
        if options.anim_start > options.anim_end:
            raise UserInputError(f"--anim-start {options.anim_start} is after --anim-end {options.anim_end}")
        fixed = (options.anim_start, options.anim_end)
        # The same range for every scene: if the sequences do not fit even without cuts, no scene can hold them.
        place_sequences(*fixed, options.sequences_per_scene, options.num_frames)
    plan = DatasetPlan()
    m = config.keyframe_multiplier
    for scene in scenes:
        try:
            check_blend_file(scene.path)
            found = read_range(scene)
            info = found if isinstance(found, SceneRange) else SceneRange(*found)
            if info.camera_problem:
                raise SceneError(info.camera_problem)
        except CamsimError as exc:
            plan.failures.append(ScenePlanFailure(scene, str(exc)))
            continue
        own = scaled_range(info.start, info.end, m)
        if (
            fixed and not own[0] <= fixed[0] <= fixed[1] <= own[1]
        ):  # the user's range, not the scene, is wrong
            raise UserInputError(
                f"--anim-start/--anim-end {fixed[0]}..{fixed[1]} are outside the range {own[0]}..{own[1]} of "
                f"scene {scene.name} (keyframe-multiplied frames)"
            )
        start, end = fixed or own
        try:
            cuts = () if config.cameras else info.cuts  # a rig's cameras are not switched by markers
            shots = split_shots(start, end, scaled_cuts(cuts, m))
            spans = place_in_shots(shots, options.sequences_per_scene, options.num_frames, options.sampling,
                                   options.seed, scene.name)  # fmt: skip
        except CamsimError as exc:
            plan.failures.append(ScenePlanFailure(scene, str(exc)))
            continue
        plan.ranges[scene.name] = (start, end)
        plan.shots[scene.name] = shots
        for first, last in spans:
            seq = sequence_id(first, last, m)
            plan.jobs.append(
                SequenceJob(
                    scene=scene.path.resolve(),
                    output=renders_dir(datasets_dir) / scene.name / seq,
                    settings=config.settings,
                    frame_start=first,
                    frame_end=last,
                    scene_name=scene.name,
                    sequence_id=seq,
                    reuse=reuse or Reuse(),
                )
            )
    return plan


def check_outputs(jobs: list[SequenceJob]) -> None:
    """Refuse, before anything is rendered, a run whose sequences would mix with renders made otherwise (see
    resume.check_folder); the error names the first such folder and how many there are."""
    problems = []
    for job in jobs:
        assert job.frame_start is not None and job.frame_end is not None
        try:
            check_folder(job.output, record_for(job, job.frame_start, job.frame_end), job.reuse)
        except UserInputError as exc:
            problems.append(str(exc))
    if problems:
        more = f" (and {len(problems) - 1} more sequences)" if len(problems) > 1 else ""
        raise UserInputError(problems[0] + more)


def claim_outputs(jobs: list[SequenceJob]) -> list[SequenceJob]:
    """After `check_outputs`: remove the renders --overwrite replaces, then let every attempt of every job
    resume what this run wrote (a retry on a fresh worker, a Dask task rerun after its worker died); nothing
    another run wrote is left in a folder that was not checked."""
    claimed = []
    for job in jobs:
        if job.reuse.overwrite and holds_output(job.output):
            log.info("%s: removing the render it held (--overwrite)", job.output)
            clear_outputs(job.output)
        claimed.append(dataclasses.replace(job, reuse=Reuse(resume=True, verify=job.reuse.verify)))
    return claimed


def dispatch_order(jobs: list[SequenceJob], seed: int = 0) -> list[SequenceJob]:
    """A deterministic shuffle, so parallel workers render different scenes at the same time."""
    order = list(jobs)
    random.Random(seed).shuffle(order)
    return order


def describe_plan(plan: DatasetPlan) -> list[dict[str, Any]]:
    return [
        {"scene": j.scene_name, "sequence": j.sequence_id, "first": j.frame_start, "last": j.frame_end,
         "frames": j.frame_end - j.frame_start + 1}  # type: ignore[operator]
        for j in plan.jobs
    ]  # fmt: skip
