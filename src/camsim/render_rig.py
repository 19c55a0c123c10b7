"""Render a multi-camera rig (--render-config.cameras) with one warm worker and one opened scene.

Each camera's frames go into job.output/CAMERA/ as an ordinary sequence (render.render_folder, camera after
camera: the scene is opened once, and Blender keeps stepped simulations, so every camera sees the same
instants); job.output holds the rig's settings.json first and rig.json last (camsim.rig). Timeline markers
switch no camera in a rig (the service drops their bindings), so camera cuts do not apply.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camsim.blender.worker import BlenderWorker
from camsim.errors import SceneError, UserInputError
from camsim.fileio import write_json_atomic
from camsim.groundtruth import BASELINE_KEY
from camsim.passes import FRAME
from camsim.render import (
    ProgressFn,
    SequenceResult,
    _scaled,
    folder_is_complete,
    prepare_output,
    record_for,
    render_folder,
    report_warnings,
    sequence_cameras,
)
from camsim.resume import (
    RECORD_FILE,
    RIG_FILE,
    check_folder,
    clear_outputs,
    difference,
    holds_output,
    read_record,
    settings_hash,
)
from camsim.rig import CameraView, camera_folders, check_names, read_rig, rig_record, stereo_pairs

if TYPE_CHECKING:
    from camsim.jobs import SequenceJob

log = logging.getLogger(__name__)


def _views(
    worker: BlenderWorker, job: SequenceJob, info: dict[str, Any], start: int, end: int
) -> dict[str, Any]:
    """Each rig camera's states (translations in metres) and the objects' motion, from the worker."""
    scale = float(info.get("metres_per_unit", 1.0))
    out = {}
    for cam in info["rig"]:
        cams, motion = sequence_cameras(worker, job, start, end, cam["name"])
        scaled = {
            f: {**c, "transform_matrix": _scaled(c["transform_matrix"], scale)} for f, c in cams.items()
        }
        out[cam["name"]] = (scaled, motion)
    return out


def render_rig(
    worker: BlenderWorker,
    job: SequenceJob,
    info: dict[str, Any],
    start: int,
    end: int,
    progress: ProgressFn | None = None,
    on_total: Callable[[int], None] | None = None,
    t0: float | None = None,
) -> SequenceResult:
    """Render frames start..end of the scene open in `worker` through every rig camera (`info["rig"]`) into
    job.output/CAMERA/, then write job.output/rig.json. Resuming keeps every camera's whole frames."""
    config, reuse = job.settings, job.reuse
    names = [str(c["name"]) for c in info["rig"]]
    why = check_names(names)
    if why:
        raise SceneError(f"{job.scene.name}: {why}")
    wanted = record_for(job, start, end)
    check_folder(job.output, wanted, reuse)
    if reuse.resume and ((job.output / "transforms.json").is_file() or (job.output / FRAME.folder).is_dir()):
        raise UserInputError(
            f"{job.output} holds a render through one camera, not a rig; pass --overwrite to replace it"
        )
    if reuse.overwrite and holds_output(job.output):
        log.info("%s: removing the render it held (--overwrite)", job.output)
        clear_outputs(job.output)
    previous = read_rig(job.output)
    prepare_output(job.output)
    if read_record(job.output) != wanted or not (job.output / RECORD_FILE).is_file():
        write_json_atomic(job.output / RECORD_FILE, wanted.to_json())
    report_warnings(job, info)
    frames = list(range(start, end + 1))
    if on_total:
        on_total(len(frames) * len(names))

    views = _views(worker, job, info, start, end)
    pairs, notes = stereo_pairs(info["rig"], {n: v[0] for n, v in views.items()}, frames)
    rig = rig_record(info["rig"], {n: v[0] for n, v in views.items()}, frames, pairs, notes, wanted.to_json(),
                     config.disparities)  # fmt: skip
    for text in rig["warnings"]:
        log.warning("%s: %s", job.scene.name, text)
    baselines = {p.left: p.baselines for p in pairs if p.problem is None and config.disparities}

    total = SequenceResult(job, scene_info=info)
    for name in names:
        cams, motion = views[name]
        stereo = name in baselines
        if stereo:
            cams = {f: {**c, BASELINE_KEY: baselines[name][f]} if f in baselines[name] else c
                    for f, c in cams.items()}  # fmt: skip
        sub = dataclasses.replace(job, output=job.output / name)
        done = render_folder(worker, sub, dict(info), start, end, progress, None, t0,
                             CameraView(name, cams, motion, stereo))  # fmt: skip
        total.frames_total += done.frames_total
        total.frames_rendered += done.frames_rendered
        total.frames_skipped += done.frames_skipped
        total.simulation_steps, total.simulation_seconds = done.simulation_steps, done.simulation_seconds
        total.seconds = done.seconds
    if json.loads(json.dumps(rig)) != previous:  # a repair that changed nothing keeps the file
        write_json_atomic(job.output / RIG_FILE, rig)  # last: marks the rig complete
    return total


def rig_is_complete(folder: Path, job: SequenceJob, verify: bool = False) -> bool:
    """A finished rig render of exactly `job`: rig.json of its scene, frames and settings, and every camera's
    folder a complete sequence of them (the left camera of a rectified pair with its disparity)."""
    if job.frame_start is None or job.frame_end is None:
        return False
    rig = read_rig(folder)
    wanted = record_for(job, job.frame_start, job.frame_end)
    if rig is None or rig.get("settings_hash") != settings_hash(wanted.render):
        return False
    if (rig.get("scene_file"), rig.get("frame_start"), rig.get("frame_end")) != (
        wanted.scene_file,
        wanted.frame_start,
        wanted.frame_end,
    ):
        return False
    record = read_record(folder)
    if record is None or difference(record, wanted) is not None:
        return False
    lefts = {s.get("left") for s in rig.get("stereo", []) if isinstance(s, dict) and s.get("disparity")}
    cameras = camera_folders(folder)
    asked = list(job.settings.cameras)
    if not cameras or (asked != ["all"] and [name for _, name in cameras] != asked):
        return False
    return all(
        folder_is_complete(sub, dataclasses.replace(job, output=sub), verify, stereo=name in lefts)
        for sub, name in cameras
    )
