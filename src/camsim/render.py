"""Render one sequence with one warm worker: frames -> files -> transforms.json.

The worker renders frame k+1 while a host thread turns frame k's passes into ground-truth files,
so the conversion costs (almost) no wall time. Every file is written atomically; transforms.json
is written last, so a folder without it is visibly incomplete and is resumed.

One module, over 400 lines: the sequence pipeline (open, check, cameras, render, convert, record) reads top
to bottom as the order things happen in; frame files are layout.py's, conversions groundtruth.py's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from camsim import __version__, transforms
from camsim.blender.protocol import SceneSettings
from camsim.blender.worker import BlenderWorker
from camsim.config import GPU_BACKENDS, RenderSettings
from camsim.cpus import available_cpus
from camsim.passes import blender_passes

if TYPE_CHECKING:  # jobs.py sits above this module (it runs render_sequence); only the type comes from there
    from camsim.jobs import SequenceJob
from camsim.errors import DatasetError, SceneError, UserInputError
from camsim.fileio import (
    TMP_MARK,
    clean_temporaries,
    make_output_dir,
    write_json_atomic,
)
from camsim.groundtruth import FrameCameras
from camsim.layout import SequenceLayout
from camsim.passes import FRAME, RENDERED
from camsim.resume import (
    RECORD_FILE,
    RenderRecord,
    check_folder,
    clear_outputs,
    difference,
    holds_output,
    read_record,
    settings_hash,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[int], None]

BLEND_MAGIC = (b"BLENDER", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")  # plain, gzip, zstd


@dataclass
class SequenceResult:
    job: SequenceJob
    frames_total: int = 0
    frames_rendered: int = 0
    frames_skipped: int = 0
    seconds: float = 0.0
    scene_info: dict[str, Any] = field(default_factory=dict)
    simulation_steps: int = 0
    """Frames stepped to bring unbaked simulations to the sequence (their cost)."""
    simulation_seconds: float = 0.0


def check_blend_file(path: Path) -> None:
    """Fail early, with a clear message, on a missing file or one that is not a .blend."""
    if not path.exists():
        raise SceneError(f"scene file not found: {path}")
    if not path.is_file():
        raise SceneError(f"scene path is not a file: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise SceneError(f"cannot read scene {path}: {exc.strerror}") from None
    if not head.startswith(BLEND_MAGIC):
        raise SceneError(f"not a .blend file: {path}")


def prepare_output_parent(folder: Path) -> None:
    """Check, without creating anything, that `folder` is or can become a writable folder."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UserInputError(f"output path is not a folder: {probe}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserInputError(f"output folder is not writable: {probe}")


def prepare_output(folder: Path) -> None:
    """Create the sequence folder and prove it is writable, before anything is rendered."""
    make_output_dir(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe", suffix=TMP_MARK):
            pass
    except OSError as exc:
        raise UserInputError(f"output folder is not writable: {folder} ({exc.strerror})") from None
    clean_temporaries(folder)
    for stale in folder.glob(f".scratch*{TMP_MARK}"):
        shutil.rmtree(stale, ignore_errors=True)


def worker_settings(
    config: RenderSettings, threads: int | None = None, gpu_index: int | None = None
) -> SceneSettings:
    """What the Blender side needs of the settings (the fields of protocol.SceneSettings, taken by name);
    `threads` comes from how the run executes (default: every core)."""
    return SceneSettings.pick(
        {**config.to_json(), "threads": threads or available_cpus(), "gpu_index": gpu_index,
         "passes": blender_passes(config.ground_truth)}
    )  # fmt: skip


def report_warnings(job: SequenceJob, info: dict[str, Any]) -> None:
    """Say what may make the render differ from the scene's intent (and what camsim changed to keep the
    ground truth exact); with `strict`, warnings fail the scene."""
    for w in info.get("warnings", ()):
        log.warning("%s: %s", job.scene.name, w)
    for a in info.get("adjustments", ()):
        log.info("%s: %s", job.scene.name, a)
    if job.settings.strict and info.get("warnings"):
        raise SceneError(f"{job.scene.name}: {info['warnings'][0]} (--render-config.strict)")


def sequence_cameras(
    worker: BlenderWorker, job: SequenceJob, start: int, end: int
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """Camera states of frames start-1..end+1 (the neighbours give the first and last frame's flow), and
    the rigid objects' motion over them.

    A camera cut (timeline markers switching cameras) inside the range is refused: flow and poses do not
    continue across it. At the range's ends the neighbour is taken with the same camera, so the flow of
    the first and last frame stays that camera's."""
    frames = list(range(start - 1, end + 2))
    reply = worker.cameras(frames)
    motion = dict(reply.object_motion)
    cams = {c["frame"]: c for c in reply.states}
    for f in range(start + 1, end + 1):
        a, b = cams[f - 1]["camera"], cams[f]["camera"]
        if a != b:
            raise SceneError(
                f"frames {start}..{end} of {job.scene.name} cross a camera cut: frame {f} switches from "
                f"'{a}' to '{b}' (timeline markers); render each shot on its own, e.g. frames {start}..{f - 1}"
            )
    for edge, inner in ((start - 1, start), (end + 1, end)):
        if cams[edge]["camera"] != cams[inner]["camera"]:
            cams[edge] = worker.cameras([edge], camera=cams[inner]["camera"]).states[0]
    motion["frames"] = frames
    return cams, motion


def _by_id(table: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Entries of an id-keyed table (ids as ints or strings) in id order, keys as strings."""
    return [(str(k), v) for k, v in sorted(table.items(), key=lambda kv: int(kv[0]))]


def _scaled(m: list[list[float]], scale: float) -> list[list[float]]:
    """A 4x4 matrix with its translation in metres (Blender units x scale)."""
    return [[*row[:3], row[3] * scale] for row in m[:3]] + [list(m[3])]


def objects_record(
    info: dict[str, Any], motion: dict[str, Any], frames: list[int], scale: float
) -> dict[str, Any]:
    """objects.json: which objects are rigid; a static rigid object's matrix once, a moving one's per
    frame (translations in metres)."""
    index = {f: k for k, f in enumerate(motion["frames"])}
    objects = {}
    for i, o in _by_id(info.get("segmentation_objects", {})):
        entry: dict[str, Any] = {
            "name": o["name"],
            "library": o.get("library"),
            "rigid": bool(o.get("rigid")),
        }
        if i in motion["static"]:
            entry["matrix_world"] = _scaled(motion["static"][i], scale)
        objects[i] = entry
    return {
        "format": "camsim-objects/1",
        "objects": objects,
        "frames": [
            {"frame_number": f,
             "matrix_world": {i: _scaled(ms[index[f]], scale) for i, ms in motion["moving"].items()}}
            for f in frames
        ],
    }  # fmt: skip


def build_transforms(
    job: SequenceJob,
    info: dict[str, Any],
    cams: dict[int, dict[str, Any]],
    frames: list[int],
    checksums: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The transforms.json of a finished sequence (pure)."""
    config = job.settings
    first = cams[frames[0]]
    layout = SequenceLayout.of(job.output, config)
    fps = float(info["fps"])
    intr = ("fl_x", "fl_y", "cx", "cy")
    animated_lens = any(any(abs(cams[f][k] - first[k]) > 1e-9 for k in intr) for f in frames)
    out_frames = []
    for f in frames:
        cam = cams[f]
        entry: dict[str, Any] = {
            FRAME.key: layout.relpath(FRAME, f),
            "transform_matrix": cam["transform_matrix"],
            "frame_number": f,
            "time": (f - info.get("original_frame_start", info["frame_start"]) * config.keyframe_multiplier)
            / fps,
            "camera": cam.get("camera", ""),
        }
        for kind in layout.kinds:
            entry[kind.key] = layout.relpath(kind, f)
        if animated_lens:
            entry.update({k: cam[k] for k in intr})
        out_frames.append(entry)
    return {
        "format": transforms.FORMAT_VERSION,
        "camera_model": "OPENCV",
        "fl_x": first["fl_x"],
        "fl_y": first["fl_y"],
        "cx": first["cx"],
        "cy": first["cy"],
        "w": first["w"],
        "h": first["h"],
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "fps": fps,
        "keyframe_multiplier": config.keyframe_multiplier,
        "scene": job.scene_name or info["scene"],
        "scene_file": job.scene.name,
        "sequence_id": job.sequence_id,
        "frame_start": frames[0],
        "frame_end": frames[-1],
        "scene_frame_range": [info["frame_start"], info["frame_end"]],
        "blender_version": info["blender_version"],
        "camsim_version": __version__,
        "device": info["device"],
        "pixel_filter": info.get("pixel_filter"),
        "colour_management": info.get("colour_management"),
        "metres_per_unit": float(info.get("metres_per_unit", 1.0)),
        "source_engine": info.get("source_engine", "CYCLES"),
        "warnings": list(info.get("warnings", [])),
        "adjustments": list(info.get("adjustments", [])),
        "render": config.to_json(),
        "conventions": transforms.CONVENTIONS,
        "settings_hash": settings_hash(config.to_json()),
        "segmentation_ids": dict(_by_id(info["segmentation_ids"])),
        "segmentation_objects": {
            k: {kk: vv for kk, vv in v.items() if kk != "rigid"}
            for k, v in _by_id(info.get("segmentation_objects", {}))
        },
        "frames": out_frames,
        **({"objects_file_path": "objects.json"} if info.get("segmentation_objects") else {}),
        **({"checksums": dict(sorted(checksums.items()))} if checksums else {}),
    }


def check_frame_range(start: int, end: int, scene_start: int, scene_end: int, scene: str) -> None:
    """Refuse (UserInputError) an empty range or frames outside the scene's (keyframe-multiplied) range."""
    if start > end:
        raise UserInputError(f"--frame-start {start} is after --frame-end {end} ({scene})")
    if start < scene_start or end > scene_end:
        raise UserInputError(
            f"frames {start}..{end} are outside the scene's range {scene_start}..{scene_end} ({scene})"
        )


def record_for(job: SequenceJob, start: int, end: int) -> RenderRecord:
    """What the render of `job` over frames start..end is, for comparison with what a folder holds."""
    return RenderRecord(job.scene.name, start, end, json.loads(json.dumps(job.settings.to_json())))


def render_sequence(
    worker: BlenderWorker,
    job: SequenceJob,
    progress: ProgressFn | None = None,
    threads: int | None = None,
    gpu_index: int | None = None,
    on_total: Callable[[int], None] | None = None,
) -> SequenceResult:
    """Render `job` with a started worker. Raises SceneError for unusable scenes, UserInputError for a bad
    range or a folder holding another render (see resume.check_folder).

    `progress(n)` is called as frames finish (skipped ones included); `on_total(n)` once the frame
    count is known. Nothing is created in the output folder before the scene opened and the range and
    the folder were checked.
    """
    t0 = time.perf_counter()
    config = job.settings
    reuse = job.reuse
    check_blend_file(job.scene)
    info = worker.open_scene(
        job.scene, worker_settings(config, threads, gpu_index), config.keyframe_multiplier
    ).to_json()
    if worker.device != info["device"]:
        worker.device = info["device"]
        if config.device_type in GPU_BACKENDS and info["device"] == "CPU":
            log.warning(
                "%s: no %s device found: rendering on the CPU", worker.name, config.device_type.upper()
            )
        else:
            log.info("%s renders on %s (device_type=%s)", worker.name, info["device"], config.device_type)
    start = info["frame_start"] if job.frame_start is None else job.frame_start
    end = info["frame_end"] if job.frame_end is None else job.frame_end
    check_frame_range(start, end, info["frame_start"], info["frame_end"], job.scene.name)
    wanted = record_for(job, start, end)
    check_folder(job.output, wanted, reuse)
    if reuse.overwrite and holds_output(job.output):
        log.info("%s: removing the render it held (--overwrite)", job.output)
        clear_outputs(job.output)
    previous = _read_meta(job.output) if reuse.resume else None
    prepare_output(job.output)
    if read_record(job.output) != wanted or not (job.output / RECORD_FILE).is_file():
        write_json_atomic(job.output / RECORD_FILE, wanted.to_json())
    report_warnings(job, info)
    frames = list(range(start, end + 1))
    result = SequenceResult(job, frames_total=len(frames), scene_info=info)
    if on_total:
        on_total(len(frames))
    scale = float(info.get("metres_per_unit", 1.0))
    cams, motion = sequence_cameras(worker, job, start, end)
    cams = {f: {**c, "transform_matrix": _scaled(c["transform_matrix"], scale)} for f, c in cams.items()}

    layout = SequenceLayout.of(job.output, config)
    layout.make_folders()

    todo = frames
    if reuse.resume:
        known = (previous or {}).get("checksums") or {}
        todo = [f for f in frames if not layout.frame_is_complete(f, reuse.verify, known)]
        result.frames_skipped = len(frames) - len(todo)
        if result.frames_skipped and progress:
            progress(result.frames_skipped)
    need_exr = bool(layout.kinds)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch", suffix=TMP_MARK, dir=job.output))
    pending: deque[Future[dict[str, str]]] = deque()
    sums = layout.kept_checksums(previous, [f for f in frames if f not in set(todo)])
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsim-gt") as pool:
            for f in todo:
                rgb_tmp = scratch / f"rgb_{f:06d}{layout.frame_ext}"
                exr_tmp = scratch / f"passes_{f:06d}.exr" if need_exr else None
                state = worker.render_frame(f, rgb_tmp, exr_tmp, config.file_format, config.bit_depth)
                result.simulation_steps = state.simulation_steps
                result.simulation_seconds = state.simulation_seconds
                frame_cams = FrameCameras(cams[f], cams[f - 1], cams[f + 1], scale)
                pending.append(
                    pool.submit(layout.write_frame, f, rgb_tmp, exr_tmp, info["layer"], frame_cams)
                )
                while len(pending) > 1 or (pending and pending[0].done()):
                    sums.update(pending.popleft().result())
                    result.frames_rendered += 1
                    if progress:
                        progress(1)
            while pending:
                sums.update(pending.popleft().result())
                result.frames_rendered += 1
                if progress:
                    progress(1)
        meta = build_transforms(job, info, cams, frames, sums)
        # A repair of a complete sequence rewrites only its damaged frames (and transforms.json only when a
        # re-rendered file's bytes differ from the lost one's: its checksum changed).
        if json.loads(json.dumps(meta)) != previous:
            if "objects_file_path" in meta:
                write_json_atomic(
                    job.output / meta["objects_file_path"], objects_record(info, motion, frames, scale)
                )
            result.seconds = time.perf_counter() - t0
            write_json_atomic(job.output / "info.json", sequence_info(meta, result))
            transforms.write(job.output / "transforms.json", meta)  # last: marks the sequence complete
        elif todo:
            log.info("%s: re-rendered damaged frames %s", job.output, ", ".join(map(str, todo)))
    finally:
        for fut in pending:
            fut.cancel()
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.perf_counter() - t0
    return result


def camera_distance(meta: dict[str, Any]) -> float:
    """Length of the camera path through the frames' positions (scene units)."""
    pos = np.array([np.asarray(f["transform_matrix"])[:3, 3] for f in meta["frames"]])
    return float(np.linalg.norm(np.diff(pos, axis=0), axis=1).sum()) if len(pos) > 1 else 0.0


def sequence_info(meta: dict[str, Any], result: SequenceResult) -> dict[str, Any]:
    """info.json: what a person wants to know about a sequence at a glance (pure).

    The duration is the time between the first and last frame, (N - 1) / fps; the average speed is
    the camera's path length over that duration.
    """
    n = len(meta["frames"])
    duration = (n - 1) / meta["fps"] if n > 1 else 0.0
    distance = camera_distance(meta)
    return {
        "scene": meta["scene"],
        "sequence_id": meta.get("sequence_id", ""),
        "num_frames": n,
        "frame_start": meta["frame_start"],
        "frame_end": meta["frame_end"],
        "fps": meta["fps"],
        "keyframe_multiplier": meta["keyframe_multiplier"],
        "duration_seconds": duration,
        "camera_distance": distance,
        "average_speed": distance / duration if duration > 0 else 0.0,
        "resolution": [meta["w"], meta["h"]],
        "ground_truth": [k.flag for k in RENDERED if k.key in meta["frames"][0]],
        "frames_rendered": result.frames_rendered,
        "frames_skipped": result.frames_skipped,
        "render_seconds": result.seconds,
        "device": meta.get("device", ""),
        "metres_per_unit": meta.get("metres_per_unit", 1.0),
        "warnings": meta.get("warnings", []),
        "adjustments": meta.get("adjustments", []),
        "simulation_steps": result.simulation_steps,
        "simulation_seconds": result.simulation_seconds,
    }


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return transforms.read(folder / "transforms.json")
    except DatasetError:
        return None


def sequence_is_complete(folder: Path, job: SequenceJob, verify: bool = False) -> bool:
    """A finished render of exactly `job` (scene, frames, settings) whose every file is whole."""
    if job.frame_start is None or job.frame_end is None:
        return False
    meta = _read_meta(folder)
    first, last = job.frame_start, job.frame_end
    if meta is None or [f.get("frame_number") for f in meta["frames"]] != list(range(first, last + 1)):
        return False
    record = read_record(folder)
    if record is None or difference(record, record_for(job, first, last)) is not None:
        return False
    layout = SequenceLayout.of(folder, job.settings)
    sums = meta.get("checksums") or {}
    return all(layout.frame_is_complete(f, verify, sums) for f in range(first, last + 1))
