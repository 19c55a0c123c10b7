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

from camsim import __version__, amodal, transforms
from camsim.annotations import DEFAULT_CATEGORY, Annotator, category_lookup, category_table
from camsim.blender.protocol import SceneSettings
from camsim.blender.worker import BlenderWorker
from camsim.config import GPU_BACKENDS, RenderSettings
from camsim.cpus import available_cpus
from camsim.encoding import encodings_record
from camsim.passes import blender_passes

if TYPE_CHECKING:  # jobs.py sits above this module (it runs render_sequence); only the type comes from there
    from camsim.jobs import SequenceJob
from camsim.errors import DatasetError, SceneError, UserInputError
from camsim.fileio import (
    TMP_MARK,
    clean_temporaries,
    make_output_dir,
    read_exr,
    write_json_atomic,
)
from camsim.groundtruth import FrameCameras
from camsim.layout import SequenceLayout
from camsim.lens_remap import SequenceLens
from camsim.lens_render import lens_settings, transforms_keys
from camsim.passes import FRAME, RENDERED, SEGMENTATION
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
from camsim.rig import CameraView
from camsim.sceneflow import FrameObjects, coverage_warning, object_matrices

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
    `threads` comes from how the run executes (default: every core). Scene flow turns motion blur off: its
    depth and ids must be those of the frame's instant."""
    return SceneSettings.pick(
        {**config.to_json(), "threads": threads or available_cpus(), "gpu_index": gpu_index,
         "passes": blender_passes(config.ground_truth),
         "annotations": config.annotations and config.segmentations,  # annotations need the segmentation
         **({"use_motion_blur": False} if config.scene_flows else {})}
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
    worker: BlenderWorker, job: SequenceJob, start: int, end: int, camera: str | None = None
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """Camera states of frames start-1..end+1 (the neighbours give the first and last frame's flow), and
    the rigid objects' motion over them; `camera`: that camera object's (a rig's), not the scene camera's.

    A camera cut (timeline markers switching cameras) inside the range is refused: flow and poses do not
    continue across it. At the range's ends the neighbour is taken with the same camera, so the flow of
    the first and last frame stays that camera's."""
    frames = list(range(start - 1, end + 2))
    reply = worker.cameras(frames, camera)
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


def sequence_annotator(
    config: RenderSettings,
    info: dict[str, Any],
    seq_lens: SequenceLens | None = None,
    root: Path | None = None,
) -> Annotator | None:
    """The annotator of a sequence: with annotations asked for, segmentation written and objects to annotate
    (or amodal masks, which a frame gets even without objects); through a distortion's render window; writing
    amodal masks into `root` when asked for."""
    ids = [int(i) for i in info.get("segmentation_objects", {})]
    amodal_masks = bool(getattr(config, "amodal_masks", False))
    if not (config.annotations and config.segmentations and (ids or amodal_masks)):
        return None
    lens, window = (seq_lens.lens, seq_lens.window) if seq_lens is not None else (None, None)
    return Annotator(ids, float(info.get("metres_per_unit", 1.0)), lens, window,
                     root if amodal_masks else None)  # fmt: skip


def categories_key(info: dict[str, Any]) -> dict[str, Any]:
    """transforms.json's `categories` ({"1": name}, annotations.category_table); nothing without objects."""
    objects = info.get("segmentation_objects") or {}
    return {"categories": category_table(objects)[0]} if objects else {}


def annotate_kept(
    worker: BlenderWorker,
    annotator: Annotator,
    layout: SequenceLayout,
    cams: dict[int, dict[str, Any]],
    frames: list[int],
    scratch: Path,
    camera: str | None,
) -> None:
    """Annotate the frames that were not rendered now (a resume keeps them): the objects' data from the
    worker without a render, the segmentation from the frame's file."""
    for f in frames:
        if f in annotator.frames:
            continue
        path = scratch / f"objects_{f:06d}.bin"
        reported = worker.frame_objects(f, path, camera).objects
        seg = read_exr(layout.root / layout.relpath(SEGMENTATION, f), SEGMENTATION.channels)
        annotator.annotate(f, reported, path, seg, cams[f])


def scene_flow_warnings(info: dict[str, Any]) -> list[str]:
    """What a render with scene flow warns of that `info` does not say yet: the objects it leaves NaN (not
    rigid), by id and name (a rig's cameras share one `info`)."""
    text = coverage_warning(info.get("segmentation_objects", {}))
    return [text] if text and text not in info.get("warnings", []) else []


def frame_objects(mats: dict[int, dict[int, np.ndarray]] | None, f: int) -> FrameObjects | None:
    """The rigid objects' matrices at frame f and its neighbours (scene flow), None without scene flow."""
    return None if mats is None else FrameObjects(mats[f], mats[f - 1], mats[f + 1])


def _by_id(table: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Entries of an id-keyed table (ids as ints or strings) in id order, keys as strings."""
    return [(str(k), v) for k, v in sorted(table.items(), key=lambda kv: int(kv[0]))]


def _scaled(m: list[list[float]], scale: float) -> list[list[float]]:
    """A 4x4 matrix with its translation in metres (Blender units x scale)."""
    return [[*row[:3], row[3] * scale] for row in m[:3]] + [list(m[3])]


def objects_record(
    info: dict[str, Any],
    motion: dict[str, Any],
    frames: list[int],
    scale: float,
    annotations: dict[int, dict[str, Any]] | None = None,
    amodal_masks: bool = False,
) -> dict[str, Any]:
    """objects.json: which objects are rigid, deforming, of which category; a static rigid object's matrix
    once, a moving one's per frame (translations in metres); each frame's `annotations` when given, and its
    `amodal_file_path` with `amodal_masks`."""
    index = {f: k for k, f in enumerate(motion["frames"])}
    described = info.get("segmentation_objects", {})
    _, category_of = category_table(described)
    objects = {}
    for i, o in _by_id(described):
        entry: dict[str, Any] = {
            "name": o["name"],
            "library": o.get("library"),
            "rigid": bool(o.get("rigid")),
            "deforming": bool(o.get("deforming")),
            "category": o.get("category") or DEFAULT_CATEGORY,
            "category_id": category_of[i],
        }
        if i in motion["static"]:
            entry["matrix_world"] = _scaled(motion["static"][i], scale)
        objects[i] = entry
    return {
        "format": "camsim-objects/2",
        "objects": objects,
        "frames": [
            {"frame_number": f,
             "matrix_world": {i: _scaled(ms[index[f]], scale) for i, ms in motion["moving"].items()},
             **({"annotations": annotations[f]} if annotations is not None else {}),
             **({"amodal_file_path": amodal.relpath(f)} if amodal_masks else {})}
            for f in frames
        ],
    }  # fmt: skip


def build_transforms(
    job: SequenceJob,
    info: dict[str, Any],
    cams: dict[int, dict[str, Any]],
    frames: list[int],
    checksums: dict[str, str] | None = None,
    stereo: bool = False,
) -> dict[str, Any]:
    """The transforms.json of a finished sequence (pure); `stereo`: of a rectified pair's left camera."""
    config = job.settings
    first = cams[frames[0]]
    layout = SequenceLayout.of(job.output, config, stereo)
    fps = float(info["fps"])
    intr = ("fl_x", "fl_y", "cx", "cy")
    animated_lens = any(any(abs(cams[f][k] - first[k]) > 1e-9 for k in intr) for f in frames)
    lens_keys = transforms_keys(config, cams, frames)
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
        "camera_model": lens_keys.pop("camera_model"),
        "fl_x": first["fl_x"],
        "fl_y": first["fl_y"],
        "cx": first["cx"],
        "cy": first["cy"],
        "w": first["w"],
        "h": first["h"],
        **lens_keys,  # k1, k2, p1, p2 (a distortion: k3, render_window; a fisheye: its keys, fisheye_fov)
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
        "conventions": transforms.conventions_for(lens_settings(config)),
        **({"encodings": encodings_record(layout.encodings)} if layout.encodings else {}),
        "settings_hash": settings_hash(config.to_json()),
        "segmentation_ids": dict(_by_id(info["segmentation_ids"])),
        "segmentation_objects": {
            k: {kk: vv for kk, vv in v.items() if kk not in ("rigid", "deforming", "category")}
            for k, v in _by_id(info.get("segmentation_objects", {}))
        },
        **categories_key(info),
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
    if config.cameras:  # a rig: a sequence per camera in job.output/CAMERA/, and rig.json
        from camsim.render_rig import render_rig  # it builds on this module

        return render_rig(worker, job, info, start, end, progress, on_total, t0)
    return render_folder(worker, job, info, start, end, progress, on_total, t0)


def render_folder(
    worker: BlenderWorker,
    job: SequenceJob,
    info: dict[str, Any],
    start: int,
    end: int,
    progress: ProgressFn | None = None,
    on_total: Callable[[int], None] | None = None,
    t0: float | None = None,
    view: CameraView | None = None,
) -> SequenceResult:
    """Render frames start..end of the scene open in `worker` (`info`: its scene info) into job.output: through
    the scene camera, or through one camera of a rig (`view`, its states already read by render_rig)."""
    t0 = time.perf_counter() if t0 is None else t0
    config = job.settings
    reuse = job.reuse
    wanted = record_for(job, start, end)
    check_folder(job.output, wanted, reuse)
    if reuse.overwrite and holds_output(job.output):
        log.info("%s: removing the render it held (--overwrite)", job.output)
        clear_outputs(job.output)
    previous = _read_meta(job.output) if reuse.resume else None
    prepare_output(job.output)
    if read_record(job.output) != wanted or not (job.output / RECORD_FILE).is_file():
        write_json_atomic(job.output / RECORD_FILE, wanted.to_json())
    if config.scene_flows:
        info["warnings"] = [*info.get("warnings", []), *scene_flow_warnings(info)]
    report_warnings(job, info)
    frames = list(range(start, end + 1))
    result = SequenceResult(job, frames_total=len(frames), scene_info=info)
    if on_total:
        on_total(len(frames))
    scale = float(info.get("metres_per_unit", 1.0))
    if view is None:
        cams, motion = sequence_cameras(worker, job, start, end)
        cams = {f: {**c, "transform_matrix": _scaled(c["transform_matrix"], scale)} for f, c in cams.items()}
    else:
        cams, motion = view.cams, view.motion
    stereo = view is not None and view.stereo

    mats = object_matrices(motion, scale) if config.scene_flows else None
    seq_lens = SequenceLens.plan(config, cams, frames)  # distortion or fisheye; None: the pinhole
    layout = SequenceLayout.of(job.output, config, stereo)
    layout.make_folders()

    todo = frames
    if reuse.resume:
        known = (previous or {}).get("checksums") or {}
        todo = [f for f in frames if not layout.frame_is_complete(f, reuse.verify, known)]
        result.frames_skipped = len(frames) - len(todo)
        if result.frames_skipped and progress:
            progress(result.frames_skipped)
    need_exr = bool(layout.kinds)
    annotator = sequence_annotator(config, info, seq_lens, job.output)
    lookup = category_lookup(category_table(info.get("segmentation_objects", {}))[1])
    scratch = Path(tempfile.mkdtemp(prefix=".scratch", suffix=TMP_MARK, dir=job.output))
    pending: deque[Future[dict[str, str]]] = deque()
    sums = layout.kept_checksums(previous, [f for f in frames if f not in set(todo)])
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsim-gt") as pool:
            for f in todo:
                rgb_tmp = scratch / f"rgb_{f:06d}{layout.frame_ext}"
                exr_tmp = scratch / f"passes_{f:06d}.exr" if need_exr else None
                geometry_tmp = scratch / f"objects_{f:06d}.bin" if annotator else None
                window = seq_lens.window_list if seq_lens else None  # distortion: Blender's frame is a PNG
                state = worker.render_frame(
                    f, rgb_tmp, exr_tmp, "PNG" if window else config.file_format, config.bit_depth,
                    view.name if view else None, geometry_tmp, window,
                )  # fmt: skip
                result.simulation_steps = state.simulation_steps
                result.simulation_seconds = state.simulation_seconds
                rendered = seq_lens.states(cams, f) if seq_lens else (cams[f], cams[f - 1], cams[f + 1])
                frame_cams = FrameCameras(*rendered, scale, frame_objects(mats, f), categories=lookup,
                                          lens=seq_lens.frame(cams, f) if seq_lens else None)  # fmt: skip
                annotate = annotator.converted(f, state.objects, geometry_tmp, cams[f]) if annotator else None
                pending.append(
                    pool.submit(layout.write_frame, f, rgb_tmp, exr_tmp, info["layer"], frame_cams, annotate)
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
        meta = build_transforms(job, info, cams, frames, sums, stereo)
        # A repair of a complete sequence rewrites only its damaged frames (and transforms.json only when a
        # re-rendered file's bytes differ from the lost one's: its checksum changed).
        if json.loads(json.dumps(meta)) != previous:
            if "objects_file_path" in meta:
                if annotator is not None:  # frames kept from an earlier run are annotated without a render
                    camera = view.name if view else None
                    annotate_kept(worker, annotator, layout, cams, frames, scratch, camera)
                amodal_masks = annotator is not None and annotator.amodal_root is not None
                write_json_atomic(
                    job.output / meta["objects_file_path"],
                    objects_record(
                        info, motion, frames, scale, annotator.frames if annotator else None, amodal_masks
                    ),
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
    """A finished render of exactly `job` (scene, frames, settings) whose every file is whole; of a rig, its
    rig.json and every camera's folder (render_rig.rig_is_complete)."""
    if job.settings.cameras:
        from camsim.render_rig import rig_is_complete  # it builds on this module

        return rig_is_complete(folder, job, verify)
    return folder_is_complete(folder, job, verify)


def folder_is_complete(folder: Path, job: SequenceJob, verify: bool = False, stereo: bool = False) -> bool:
    """One sequence folder holds a finished render of `job` whose every file is whole; `stereo`: the left
    camera's folder of a rectified pair (with disparity)."""
    if job.frame_start is None or job.frame_end is None:
        return False
    meta = _read_meta(folder)
    first, last = job.frame_start, job.frame_end
    if meta is None or [f.get("frame_number") for f in meta["frames"]] != list(range(first, last + 1)):
        return False
    record = read_record(folder)
    if record is None or difference(record, record_for(job, first, last)) is not None:
        return False
    layout = SequenceLayout.of(folder, job.settings, stereo)
    sums = meta.get("checksums") or {}
    return all(layout.frame_is_complete(f, verify, sums) for f in range(first, last + 1))
