"""Render one sequence with one warm worker: frames -> files -> transforms.json.

The worker renders frame k+1 while a host thread turns frame k's passes into ground-truth files,
so the conversion costs (almost) no wall time. Every file is written atomically; transforms.json
is written last, so a folder without it is visibly incomplete and is resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from typing import Any

import numpy as np

from camsim import __version__, transforms
from camsim.blender.worker import BlenderWorker
from camsim.config import GPU_BACKENDS, RenderConfig
from camsim.errors import DatasetError, OutputWriteError, SceneError, UserInputError
from camsim.fileio import (
    TMP_MARK,
    checksum,
    clean_temporaries,
    looks_whole,
    make_output_dir,
    move_into_place,
    read_exr_parts,
    read_image,
    strip_image_metadata,
    write_json_atomic,
)
from camsim.groundtruth import (
    DEBUG_KINDS,
    JSON_KEYS,
    LAYOUT,
    FrameCameras,
    debug_relpath,
    relpath,
    write_ground_truth,
)
from camsim.resume import (
    RECORD_FILE,
    RenderRecord,
    Reuse,
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


@dataclass(frozen=True)
class SequenceJob:
    """One unit of work everywhere (local pool or Dask): a frame range of a scene into a folder."""

    scene: Path
    output: Path
    config: RenderConfig
    frame_start: int | None = None
    """First frame (after keyframe scaling); None: the scene's first frame."""
    frame_end: int | None = None
    """Last frame, inclusive; None: the scene's last frame."""
    scene_name: str = ""
    sequence_id: str = ""
    reuse: Reuse = field(default_factory=Reuse)
    """What to do with outputs already in `output`: refuse (default), resume, or overwrite."""


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
    config: RenderConfig, threads: int | None = None, gpu_index: int | None = None
) -> dict[str, Any]:
    """What the Blender side needs of the config (plain data: it crosses a process boundary)."""
    s = config.to_json()
    s["threads"] = threads or config.threads_for(1)
    s["gpu_index"] = gpu_index
    return s


def expected_files(kinds: tuple[str, ...], frame: int, frame_ext: str, debug: bool) -> list[str]:
    files = [relpath("frames", frame, frame_ext)] + [relpath(k, frame) for k in kinds]
    if debug:
        files += [debug_relpath(k, frame) for k in kinds if k in DEBUG_KINDS]
    return files


def frame_is_complete(
    folder: Path,
    kinds: tuple[str, ...],
    frame: int,
    frame_ext: str,
    debug: bool,
    verify: bool = False,
    checksums: dict[str, str] | None = None,
) -> bool:
    """True when every file of the frame is whole: the cheap check (present, not cut short: see
    fileio.looks_whole), or with `verify` a full decode and, where one was recorded, the same checksum."""
    for rel in expected_files(kinds, frame, frame_ext, debug):
        path = folder / rel
        if not looks_whole(path):
            return False
        if not verify:
            continue
        try:
            if path.suffix == ".exr":
                read_exr_parts(path)
            elif read_image(path).size == 0:
                return False
        except DatasetError:
            return False
        if checksums and rel in checksums and checksum(path) != checksums[rel]:
            return False
    return True


def kept_checksums(
    folder: Path,
    previous: dict[str, Any] | None,
    frames: list[int],
    kinds: tuple[str, ...],
    ext: str,
    debug: bool,
) -> dict[str, str]:
    """Checksums of the files of frames a resume keeps: as recorded when they were written, else read now."""
    known = (previous or {}).get("checksums") or {}
    rels = [rel for f in frames for rel in expected_files(kinds, f, ext, debug)]
    return {rel: known.get(rel) or checksum(folder / rel) for rel in rels}


def frame_ext_of(config: RenderConfig) -> str:
    return ".jpg" if config.file_format == "JPEG" else ".png"


def report_warnings(job: SequenceJob, info: dict[str, Any]) -> None:
    """Say what may make the render differ from the scene's intent (and what camsim changed to keep the
    ground truth exact); with `strict`, warnings fail the scene."""
    for w in info.get("warnings", ()):
        log.warning("%s: %s", job.scene.name, w)
    for a in info.get("adjustments", ()):
        log.info("%s: %s", job.scene.name, a)
    if job.config.strict and info.get("warnings"):
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
    states = worker.cameras(frames)
    motion = states[0].pop("object_motion", {"static": {}, "moving": {}})
    cams = {c["frame"]: c for c in states}
    for f in range(start + 1, end + 1):
        a, b = cams[f - 1]["camera"], cams[f]["camera"]
        if a != b:
            raise SceneError(
                f"frames {start}..{end} of {job.scene.name} cross a camera cut: frame {f} switches from "
                f"'{a}' to '{b}' (timeline markers); render each shot on its own, e.g. frames {start}..{f - 1}"
            )
    for edge, inner in ((start - 1, start), (end + 1, end)):
        if cams[edge]["camera"] != cams[inner]["camera"]:
            state = worker.cameras([edge], camera=cams[inner]["camera"])[0]
            state.pop("object_motion", None)
            cams[edge] = state
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
    config = job.config
    first = cams[frames[0]]
    kinds = config.ground_truth
    ext = frame_ext_of(config)
    fps = float(info["fps"])
    intr = ("fl_x", "fl_y", "cx", "cy")
    animated_lens = any(any(abs(cams[f][k] - first[k]) > 1e-9 for k in intr) for f in frames)
    out_frames = []
    for f in frames:
        cam = cams[f]
        entry: dict[str, Any] = {
            "file_path": relpath("frames", f, ext),
            "transform_matrix": cam["transform_matrix"],
            "frame_number": f,
            "time": (f - info.get("original_frame_start", info["frame_start"]) * config.keyframe_multiplier)
            / fps,
            "camera": cam.get("camera", ""),
        }
        for kind in kinds:
            entry[JSON_KEYS[kind]] = relpath(kind, f)
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
        "render": config.render_settings(),
        "conventions": transforms.CONVENTIONS,
        "settings_hash": settings_hash(config.render_settings()),
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
    return RenderRecord(job.scene.name, start, end, json.loads(json.dumps(job.config.render_settings())))


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
    config = job.config
    reuse = job.reuse if not config.allow_skips else dataclasses.replace(job.reuse, resume=True)
    check_blend_file(job.scene)
    info = worker.open_scene(job.scene, worker_settings(config, threads, gpu_index))
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

    kinds = config.ground_truth
    ext = frame_ext_of(config)
    for kind in ("frames", *kinds):
        (job.output / LAYOUT[kind][0]).mkdir(exist_ok=True)
    if config.debug:
        for kind in kinds:
            if kind in DEBUG_KINDS:
                (job.output / "debug" / LAYOUT[kind][0]).mkdir(parents=True, exist_ok=True)

    todo = frames
    if reuse.resume:
        known = (previous or {}).get("checksums") or {}
        todo = [
            f
            for f in frames
            if not frame_is_complete(job.output, kinds, f, ext, config.debug, reuse.verify, known)
        ]
        result.frames_skipped = len(frames) - len(todo)
        if result.frames_skipped and progress:
            progress(result.frames_skipped)
    need_exr = bool(kinds)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch", suffix=TMP_MARK, dir=job.output))
    pending: deque[Future[dict[str, str]]] = deque()
    sums = kept_checksums(
        job.output, previous, [f for f in frames if f not in set(todo)], kinds, ext, config.debug
    )
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsim-gt") as pool:
            for f in todo:
                rgb_tmp = scratch / f"rgb_{f:06d}{ext}"
                exr_tmp = scratch / f"passes_{f:06d}.exr" if need_exr else None
                state = worker.render_frame(f, rgb_tmp, exr_tmp, config.file_format, config.bit_depth)
                result.simulation_steps = state.get("simulation_steps", 0)
                result.simulation_seconds = state.get("simulation_seconds", 0.0)
                frame_cams = FrameCameras(cams[f], cams[f - 1], cams[f + 1], scale)
                pending.append(pool.submit(_finish_frame, job.output, f, rgb_tmp, exr_tmp, info["layer"], kinds,
                                           frame_cams, config, ext))  # fmt: skip
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


def _finish_frame(
    out: Path,
    frame: int,
    rgb_tmp: Path,
    exr_tmp: Path | None,
    layer: str,
    kinds: tuple[str, ...],
    cams: FrameCameras,
    config: RenderConfig,
    ext: str,
) -> dict[str, str]:
    """Ground truth first, RGB frame last: a frame's PNG at its final path implies the rest is there.
    Returns the checksums of the frame's files (read back from the page cache: a few ms at 512x512)."""
    # Blender reports no error when a save fails: a full disk leaves a truncated file behind. So the
    # frame must decode, and the passes must hold every channel, before anything reaches a final path.
    try:
        if not rgb_tmp.is_file() or read_image(rgb_tmp).size == 0:
            raise DatasetError(f"no image at {rgb_tmp}")
        strip_image_metadata(rgb_tmp)
        if exr_tmp is not None:
            write_ground_truth(exr_tmp, layer, out, frame, kinds, cams, config.exr_codec, config.debug)
    except (DatasetError, KeyError) as exc:
        raise OutputWriteError(_unwritten(out, frame, exc)) from None
    if exr_tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(exr_tmp)
    move_into_place(rgb_tmp, out / relpath("frames", frame, ext))
    return {rel: checksum(out / rel) for rel in expected_files(kinds, frame, ext, config.debug)}


def _unwritten(out: Path, frame: int, exc: BaseException) -> str:
    try:
        free = f"{shutil.disk_usage(out).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    detail = f"missing channel {exc}" if isinstance(exc, KeyError) else str(exc)
    return f"Blender could not write frame {frame} completely (disk full? {free} in {out}): {detail}"


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
        "ground_truth": [k for k in JSON_KEYS if k != "frames" and JSON_KEYS[k] in meta["frames"][0]],
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
    config = job.config
    kinds, ext = config.ground_truth, frame_ext_of(config)
    sums = meta.get("checksums") or {}
    return all(
        frame_is_complete(folder, kinds, f, ext, config.debug, verify, sums) for f in range(first, last + 1)
    )
