"""Export camsim sequences in the BOP format (BOP-scenewise: bop_toolkit's docs/bop_datasets_format.md).

Each sequence becomes one BOP scene, OUTPUT/SPLIT/SCENE_ID (6 digits, numbered from 0 per split folder),
with one image per frame (im_id = the frame's 0-based index in its sequence):

- `rgb/IM_ID.png` (or .jpg): the frames (8-bit, hard-linked or copied; 16-bit frames rounded to 8 bits).
- `depth/IM_ID.png`: 16-bit planar z-depth; value x `depth_scale` = millimetres (BOP's definition), 0 = no
  depth (background). camsim's depth is planar z in metres, so it is only scaled and rounded (error <=
  depth_scale / 2 mm).
- `mask_visib/IM_ID_GT_ID.png`: 255 where the segmentation is the object (exact), GT_ID its index in the
  frame's scene_gt list.
- `mask/IM_ID_GT_ID.png`: the amodal silhouette (255 where the object's geometry covers the pixel centre with
  nothing in front), from the render's amodal masks (`--render-config.amodal-masks`: objects.json
  `amodal_file_path`, camsim.amodal); not written for sequences rendered without them. A visible pixel the
  amodal mask lacks (a pixel-centre tie on a triangle edge) is added to it, and the notes count them.
- `scene_camera.json`: per image `cam_K` (row-wise; the principal point moved by -0.5 px: BOP, as OpenCV,
  puts pixel centres at integer coordinates, camsim at +0.5), `depth_scale`, `cam_R_w2c` and `cam_t_w2c`
  (mm): world to OpenCV camera (x right, y down, looking along +z), converted from camsim's OpenGL axes.
- `scene_gt.json`: per image the objects in view (visible, or annotation projected_pixels > 0), except
  those drawn several times (`instances` > 1) or without an amodal count, which the notes name:
  `obj_id`, `cam_R_m2c`, `cam_t_m2c` (mm) from objects.json `pose_camera` in OpenCV axes, and camsim's
  `camsim_object_id`. The model frame is the object's own frame with its scale taken out (the rotation
  must be a rotation): the export record lists each object's scale, so a model file made from the object
  (in its local coordinates x scale, mm) lines up with the poses. Models are not exported.
- `scene_gt_info.json`: `bbox_obj` (amodal box), `bbox_visib`, `px_count_all` (amodal pixel count: with
  mask/, its pixels),
  `px_count_valid`, `px_count_visib`, `visib_fract` as bop_toolkit's scripts/calc_gt_info.py defines them
  (boxes `[x, y, x_last - x, y_last - y]` over pixel indices, as misc.calc_2d_bbox; both -1 when nothing is
  visible). The visible mask is the segmentation's, not a depth test. camsim counts the amodal silhouette
  inside the frame; calc_gt_info also counts its truncated part, so for objects the frame cuts
  (annotations' `truncated`) `px_count_all`, `visib_fract` and `bbox_obj` describe the part in the frame.

`obj_id` is the object's category id (the same id for a category name in every scene of the export): BOP's
obj_id names an object model, and camsim has one model per category only when the scenes use one mesh per
category; the instance is `camsim_object_id`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camsim import amodal, transforms
from camsim.errors import DatasetError, OutputWriteError, UserInputError
from camsim.export.common import (
    RECORD,
    Objects,
    Progress,
    Source,
    amodal_files,
    camsim_version,
    category_ids,
    check_output,
    find_sources,
    other_splits,
    read_objects,
    read_segmentation,
    refuse_holes,
    require,
    staging_folder,
    swap_into_place,
    write_frame,
)
from camsim.export.nerfstudio import quantise_depth, valid_depth
from camsim.fileio import write_bytes_atomic, write_image, write_json_atomic

EXPORT_FORMAT = "camsim-bop/1"
"""`format` of the export's camsim_export.json."""
CV_FROM_GL = np.diag([1.0, -1.0, -1.0])
"""OpenGL camera axes (y up, looking along -z) to OpenCV's (y down, looking along +z)."""
UINT16_MAX = 65535
ORTHONORMAL_TOLERANCE = 1e-6
SPLIT_DIR = re.compile(r"^(train|val|test)(_[A-Za-z0-9]+)?$")
NO_BBOX = [-1, -1, -1, -1]
_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")


# ------------------------------------------------------------------------------------------------ pure


def camera_matrix(K: np.ndarray) -> np.ndarray:
    """BOP's cam_K of camsim's K: the principal point moved by -0.5 px (pixel centres at integers)."""
    out = np.array(K, dtype=np.float64)
    out[0, 2] -= 0.5
    out[1, 2] -= 0.5
    return out


def world_to_camera(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cam_R_w2c, cam_t_w2c in mm) of a camsim camera-to-world matrix (OpenGL axes, metres)."""
    w2c = np.linalg.inv(np.asarray(c2w, dtype=np.float64))
    return CV_FROM_GL @ w2c[:3, :3], CV_FROM_GL @ w2c[:3, 3] * 1000.0


def model_to_camera(pose_camera: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cam_R_m2c, cam_t_m2c in mm, scale) of an object-to-camera matrix (OpenGL camera axes, metres).

    The matrix's 3x3 part is R x diag(scale); the scale is taken out (a mirrored object gets a negative x
    scale, so R stays a rotation). ValueError when the part is sheared (no rotation fits)."""
    m = np.asarray(pose_camera, dtype=np.float64)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise ValueError("pose_camera must be a 4x4 matrix of finite numbers")
    scale = np.linalg.norm(m[:3, :3], axis=0)
    if (scale <= 0).any():
        raise ValueError("the object's scale is zero on an axis")
    if np.linalg.det(m[:3, :3]) < 0:
        scale[0] = -scale[0]
    rot = m[:3, :3] / scale
    if np.abs(rot.T @ rot - np.eye(3)).max() > ORTHONORMAL_TOLERANCE:
        raise ValueError("the object's matrix is sheared (non-uniform scale under a rotated parent)")
    return CV_FROM_GL @ rot, CV_FROM_GL @ m[:3, 3] * 1000.0, scale


def bop_bbox(mask: np.ndarray) -> list[int]:
    """bop_toolkit's misc.calc_2d_bbox of a mask's pixels: `[x_min, y_min, x_max - x_min, y_max - y_min]`
    over pixel indices; NO_BBOX for an empty mask."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return list(NO_BBOX)
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0]), int(rows[-1] - rows[0])]


def bop_bbox_of_edges(box: list[int] | None) -> list[int]:
    """calc_2d_bbox's box of camsim's `[x0, y0, x1, y1]` (pixel edges, x1 and y1 exclusive)."""
    if box is None:
        return list(NO_BBOX)
    x0, y0, x1, y1 = (int(v) for v in box)
    return [x0, y0, x1 - 1 - x0, y1 - 1 - y0]


def choose_depth_scale(max_depth_m: float) -> float:
    """Millimetres per depth unit: the smallest of 0.1, 0.2, 0.5, 1, 2, 5, ... that holds `max_depth_m`
    in 65535 units (0.1 mm, as most BOP datasets, up to 6.5535 m)."""
    if not np.isfinite(max_depth_m) or max_depth_m <= 0:
        return 0.1
    exponent = -1
    while True:
        for mantissa in (1, 2, 5):
            scale = float(f"{mantissa}e{exponent}")
            if max_depth_m * 1000.0 / scale <= UINT16_MAX:
                return scale
        exponent += 1


def gt_info(
    visible: np.ndarray,
    projected_pixels: int,
    bbox_amodal: list[int] | None,
    depth: np.ndarray,
    amodal_mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """One scene_gt_info entry: `visible` is the object's mask from the segmentation, `depth` the written
    depth image (0 = none). `px_count_valid` counts the amodal pixels with a depth: all of them but the
    visible ones written as 0, since an occluded pixel shows the occluder's surface (exact unless a depth
    beyond the range was written as 0 in the frame: then an upper bound). With `amodal_mask` (the mask/
    written), the amodal count and box are its own."""
    visib = int(visible.sum())
    total = int(projected_pixels) if amodal_mask is None else int(amodal_mask.sum())
    box = bop_bbox_of_edges(bbox_amodal) if amodal_mask is None else bop_bbox(amodal_mask)
    return {
        "bbox_obj": box if visib > 0 else list(NO_BBOX),
        "bbox_visib": bop_bbox(visible),
        "px_count_all": total,
        "px_count_valid": max(total - int((visible & (depth == 0)).sum()), 0),
        "px_count_visib": visib,
        "visib_fract": visib / total if total > 0 else 0.0,
    }


def bop_json(content: dict[int, Any]) -> bytes:
    """BOP's JSON layout (bop_toolkit inout.save_json): one line per image id, keys in order."""
    lines = [f'  "{k}": {json.dumps(v, sort_keys=True)}' for k, v in sorted(content.items())]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def _flat(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a).ravel()]


# ------------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class ScenePlan:
    source: Source
    objects: Objects
    folder: str
    """Its folder below the output: SPLIT/SCENE_ID."""
    amodal: tuple[Path, ...] | None = None
    """Each frame's amodal mask file (camsim.amodal); None: the sequence has none (no mask/)."""


@dataclass(frozen=True)
class BopPlan:
    """Everything checked before anything is written."""

    input: Path
    output: Path
    scenes: tuple[ScenePlan, ...]
    obj_ids: dict[str, int]
    """Category name -> obj_id (1..K in name order)."""
    depth_scale: float | None
    """Millimetres per depth unit; None: chosen per scene from its farthest depth."""
    max_depth: float | None
    link: bool
    replace: bool
    stage: str | None
    split: str | None
    split_type: str | None

    @property
    def frames(self) -> int:
        return sum(len(s.source.dataset) for s in self.scenes)

    @property
    def steps(self) -> int:
        """One per frame written, plus one per frame scanned for the depth range."""
        return self.frames * (1 if self.depth_scale is not None else 2)


def _check_pinhole(source: Source) -> None:
    meta = source.meta
    model = meta.get("camera_model", "OPENCV")
    if model not in ("OPENCV", "PINHOLE") or any(float(meta.get(k, 0.0) or 0.0) != 0.0 for k in _DISTORTION):
        raise DatasetError(
            f"{source.folder}: camera model {model} with distortion; BOP's cam_K describes a pinhole camera"
        )
    for i, fr in enumerate(meta["frames"]):
        if not all(k in fr or k in meta for k in ("fl_x", "fl_y", "cx", "cy")):
            raise DatasetError(f"{source.folder}: frames[{i}] has no intrinsics (fl_x, fl_y, cx, cy)")


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not (np.isfinite(value) and value > 0):
        raise UserInputError(f"{flag} must be a positive number, got {value}")


def plan_bop(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    stage: str | None = None,
    split: str | None = None,
    split_type: str | None = None,
    overwrite: bool = False,
    link: bool = True,
    depth_scale: float | None = None,
    max_depth: float | None = None,
) -> BopPlan:
    """Check the inputs and the output folder (reads transforms.json and objects.json; writes nothing).

    Raises UserInputError (DatasetError for a sequence that cannot be exported) with a one-line reason: no
    depth or segmentation, no per-object annotations, lens distortion, interpolation holes."""
    src, out = Path(input), Path(os.path.abspath(output))
    _positive(depth_scale, "--depth-scale")
    _positive(max_depth, "--max-depth")
    if split_type is not None and not re.fullmatch(r"[A-Za-z0-9]+", split_type):
        raise UserInputError(f"--split-type must be letters and digits (BOP's SPLITTYPE), got {split_type!r}")
    sources = find_sources(src, stage, split)
    replace = check_output([src], out, overwrite, EXPORT_FORMAT, lambda n: bool(SPLIT_DIR.match(n)))
    plans, counters = [], {}
    for s in sources:
        require(s, ("frame", "depth", "segmentation"), "a BOP scene has RGB-D images and visible masks")
        refuse_holes(s)
        _check_pinhole(s)
        objects = read_objects(s)
        if objects.annotations is None:
            raise DatasetError(
                f"{s.folder}: objects.json has no per-frame annotations (object poses); render it with a camsim "
                "that writes them"
            )
        base = s.split or "train"
        folder = base + (f"_{split_type}" if split_type else "")
        scene_id = counters.get(folder, 0)
        counters[folder] = scene_id + 1
        plans.append(ScenePlan(s, objects, f"{folder}/{scene_id:06d}", amodal_files(s)))
    ids = category_ids((p.objects for p in plans), other_splits(src, stage, split))
    return BopPlan(
        src, out, tuple(plans), ids, depth_scale, max_depth, link, replace, stage, split, split_type
    )


# ------------------------------------------------------------------------------------------------ write


@dataclass
class BopExport:
    """What an export holds."""

    output: Path
    scenes: int = 0
    images: int = 0
    instances: int = 0
    """scene_gt entries over all images."""
    obj_ids: dict[str, int] = field(default_factory=dict)
    depth_scales: set[float] = field(default_factory=set)
    dropped_depths: int = 0
    truncated: int = 0
    """Instances the frame cuts: their px_count_all, visib_fract and bbox_obj cover the part in the frame."""
    notes: list[str] = field(default_factory=list)


def _annotation(anns: dict[int, dict[str, Any]], k: int, where: str) -> dict[str, Any]:
    ann = anns.get(k)
    if ann is None:
        raise DatasetError(f"{where}: object {k} is in the segmentation but has no annotation")
    for key in ("pose_camera", "projected_pixels"):
        if key not in ann:
            raise DatasetError(f"{where}: the annotation of object {k} has no '{key}'")
    n = ann["projected_pixels"]
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise DatasetError(f"{where}: object {k} 'projected_pixels' must be a count or null, got {n!r}")
    box = ann.get("bbox_amodal")
    if box is not None and not (
        isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)
    ):
        raise DatasetError(f"{where}: object {k} 'bbox_amodal' must be [x0, y0, x1, y1] or null")
    return ann


def _left_out(ann: dict[str, Any]) -> str | None:
    """Why an object in view gets no scene_gt entry (None: it gets one): BOP needs one pose per instance
    and its amodal pixel count."""
    n = ann.get("instances", 1)
    if n not in (None, 1):
        return f"it is drawn {n} times (its instances share one id; BOP needs one pose each)"
    if ann["pose_camera"] is None:
        return "it has no pose"
    if ann["projected_pixels"] is None:
        return "its rendered surface is not a mesh camsim projects (no amodal pixel count)"
    return None


def _depth(ds: Any, i: int, shape: tuple[int, int]) -> np.ndarray:
    z = ds.read("depth", i)
    if z.shape != shape:
        raise DatasetError(f"{ds.root}: depth of frame {i} is {z.shape}, transforms.json says {shape}")
    return z


def _scene_depth_scale(plan: ScenePlan, max_depth: float | None, tick: Progress) -> float:
    ds = plan.source.dataset
    shape = (int(ds.meta["h"]), int(ds.meta["w"]))
    far = 0.0
    for i in range(len(ds)):
        z = _depth(ds, i, shape)
        ok = valid_depth(z)
        if max_depth is not None:
            ok &= z <= max_depth
        if ok.any():
            far = max(far, float(z[ok].max()))
        tick(1)
    return choose_depth_scale(far)


def _export_scene(
    plan: ScenePlan, bop: BopPlan, dest: Path, result: BopExport, tick: Progress
) -> dict[str, Any]:
    """Write one scene below `dest`; returns its entry of the export record."""
    ds, name = plan.source.dataset, plan.source.name
    shape = (int(ds.meta["h"]), int(ds.meta["w"]))
    scale_mm = (
        bop.depth_scale if bop.depth_scale is not None else _scene_depth_scale(plan, bop.max_depth, tick)
    )
    unit_m = scale_mm / 1000.0
    for sub in ("rgb", "depth", "mask_visib", *(("mask",) if plan.amodal else ())):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    annotations = plan.objects.annotations
    assert annotations is not None
    scene_camera: dict[int, Any] = {}
    scene_gt: dict[int, Any] = {}
    scene_gt_info: dict[int, Any] = {}
    scales: dict[int, np.ndarray | None] = {}
    occluded_without_depth = 0
    ties = 0
    left_out: dict[int, str] = {}
    for i in range(len(ds)):
        where = f"{ds.root}: frame {i}"
        stem = f"{i:06d}"
        write_frame(ds, i, dest / "rgb", stem, bop.link)
        depth, dropped = quantise_depth(_depth(ds, i, shape), unit_m, max_depth=bop.max_depth)
        write_image(dest / "depth" / f"{stem}.png", depth)
        result.dropped_depths += dropped
        R, t = world_to_camera(transforms.pose(ds.meta, i))
        scene_camera[i] = {
            "cam_K": _flat(camera_matrix(transforms.intrinsics(ds.meta, i))),
            "depth_scale": scale_mm,
            "cam_R_w2c": _flat(R),
            "cam_t_w2c": _flat(t),
        }
        seg = read_segmentation(ds, i)
        masks = amodal.read_masks(plan.amodal[i], *shape) if plan.amodal else None
        anns = annotations[i]
        seen = {int(k) for k in np.unique(seg) if k != 0}
        in_view = sorted(
            seen
            | {
                k
                for k, a in anns.items()
                if isinstance(a.get("projected_pixels"), int) and a["projected_pixels"] > 0
            }
        )
        gts, infos = [], []
        for k in in_view:
            ann = _annotation(anns, k, where)
            why = _left_out(ann)
            if why:
                left_out.setdefault(k, why)
                continue
            gt_id = len(gts)
            try:
                R, t, scale = model_to_camera(ann["pose_camera"])
            except ValueError as exc:
                name_k = plan.objects.names.get(k, str(k))
                raise DatasetError(
                    f"{where}: object {k} ({name_k}): {exc}; a BOP pose is a rotation"
                ) from None
            previous = scales.get(k, scale)
            scales[k] = scale if previous is not None and np.allclose(previous, scale, rtol=1e-6) else None
            obj_id = bop.obj_ids[plan.objects.category(k, where)]
            gts.append(
                {"obj_id": obj_id, "cam_R_m2c": _flat(R), "cam_t_m2c": _flat(t), "camsim_object_id": k}
            )
            visible = seg == k
            if int(visible.sum()) > ann["projected_pixels"]:
                raise DatasetError(
                    f"{where}: object {k} covers {int(visible.sum())} pixels in the segmentation but its "
                    f"annotation projects it onto {ann['projected_pixels']}"
                )
            write_image(dest / "mask_visib" / f"{stem}_{gt_id:06d}.png", visible.astype(np.uint8) * 255)
            full = None
            if masks is not None:
                full = masks.get(k, np.zeros(shape, dtype=bool))
                if int(full.sum()) != ann["projected_pixels"]:
                    raise DatasetError(
                        f"{where}: object {k}'s amodal mask has {int(full.sum())} pixels, its annotation "
                        f"projected_pixels {ann['projected_pixels']}"
                    )
                tied = visible & ~full
                if tied.any():
                    ties += int(tied.sum())
                    full = full | visible
                write_image(dest / "mask" / f"{stem}_{gt_id:06d}.png", full.astype(np.uint8) * 255)
            info = gt_info(visible, ann["projected_pixels"], ann.get("bbox_amodal"), depth, full)
            if dropped and info["px_count_all"] > info["px_count_visib"]:
                occluded_without_depth += 1
            result.truncated += bool(ann.get("truncated"))
            infos.append(info)
        scene_gt[i], scene_gt_info[i] = gts, infos
        result.instances += len(gts)
        tick(1)
    write_bytes_atomic(dest / "scene_camera.json", bop_json(scene_camera))
    write_bytes_atomic(dest / "scene_gt.json", bop_json(scene_gt))
    write_bytes_atomic(dest / "scene_gt_info.json", bop_json(scene_gt_info))
    result.images += len(ds)
    result.depth_scales.add(scale_mm)
    if occluded_without_depth:
        result.notes.append(
            f"{name}: {occluded_without_depth} instance(s) are partly occluded in frames with depths beyond the "
            "range written as 0: their px_count_valid counts every occluded pixel as having depth"
        )
    if ties:
        result.notes.append(
            f"{name}: {ties} visible pixel(s) lie outside their object's amodal mask (a pixel centre on a "
            "triangle edge, decided one way by Cycles and the other by camsim): mask/ and px_count_all include them"
        )
    for k, why in sorted(left_out.items()):
        result.notes.append(
            f"{name}: object {k} ({plan.objects.names.get(k, k)}) is left out of scene_gt in frames where {why}"
        )
    deforming = sorted(plan.objects.deforming & set(scales))
    if deforming:
        result.notes.append(
            f"{name}: object(s) {deforming} deform: their poses place the object's frame only"
        )
    moving_scale = sorted(k for k, s in scales.items() if s is None)
    if moving_scale:
        result.notes.append(f"{name}: object(s) {moving_scale} change scale: no rigid model fits their poses")
    return {
        "sequence": name,
        "source_split": plan.source.split,
        "frames": len(ds),
        "frame_numbers": [int(n) for n in transforms.frame_numbers(ds.meta)],
        "depth_scale": scale_mm,
        "objects": {
            str(k): {
                "name": plan.objects.names.get(k, str(k)),
                "category": plan.objects.category(k, name),
                "obj_id": bop.obj_ids[plan.objects.category(k, name)],
                "scale": None if s is None else [round(v, 12) for v in _flat(s)],
            }
            for k, s in sorted(scales.items())
        },
    }


def export_bop(plan: BopPlan, progress: Progress | None = None) -> BopExport:
    """Write the planned export into a staging folder beside the output, which replaces the output folder
    only once everything is written: a failure leaves the output as it was."""
    tick: Progress = progress or (lambda n: None)
    out = plan.output
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_folder(out)
    except OSError as exc:
        raise OutputWriteError(f"cannot write next to {out}: {exc.strerror or exc}") from exc
    result = BopExport(out, scenes=len(plan.scenes), obj_ids=dict(plan.obj_ids))
    try:
        scenes = {}
        for scene in plan.scenes:
            scenes[scene.folder] = _export_scene(scene, plan, staging / scene.folder, result, tick)
            note = scene.objects.note(scene.source.name)
            if note:
                result.notes.append(note)
        if result.truncated:
            result.notes.append(
                f"{result.truncated} instance(s) are cut by the frame: their px_count_all, visib_fract and "
                "bbox_obj describe the part inside it (bop_toolkit's calc_gt_info counts the part outside too)"
            )
        write_json_atomic(staging / RECORD, _record(plan, scenes, result.notes))
        swap_into_place(staging, out)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            if staging.exists():
                shutil.rmtree(staging)
    return result


def _record(plan: BopPlan, scenes: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "camsim_version": camsim_version(),
        "source": str(plan.input),
        "stage": plan.stage,
        "split": plan.split,
        "split_type": plan.split_type,
        "obj_ids": {str(i): n for n, i in plan.obj_ids.items()},
        "models": "not exported; a model of object K in mm is its local geometry x metres_per_unit x 1000 x "
        "scenes[...].objects[K].scale (per axis)",
        "masks": "mask_visib (from the segmentation); mask (amodal) for the scenes rendered with amodal masks: "
        + (", ".join(s.folder for s in plan.scenes if s.amodal) or "none"),
        "scenes": scenes,
        "notes": notes,
    }
