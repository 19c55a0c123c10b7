"""Export camsim sequences as a COCO instance-segmentation dataset that `pycocotools.coco.COCO` loads as-is.

OUTPUT/annotations.json holds one image per frame and one annotation per object visible in it, from the
instance segmentation (exact: the mask is the set of pixels whose segmentation id is the object's):

- `segmentation`: compressed RLE (`pycocotools.mask.encode` of the Fortran-ordered uint8 mask, `counts`
  as text), so `COCO.annToMask` returns the segmentation's mask bit for bit; `area` is its pixel count and
  `bbox` its extent `[x, y, w, h]` in pixels (pixel edges: x = first column, w = columns spanned), the
  values `pycocotools.mask.area` and `toBbox` give, so detections copied from it load with
  `COCO.loadRes` and score AP 1 in `COCOeval`; `iscrowd` 0, or 1 where the annotations say the object is
  drawn several times in the frame (instances share an id, so the mask covers them all: a crowd region).
- `category_id`: the object's category (objects.json `category`, or transforms.json `categories` for its
  `category_id`), one COCO id per category name over all exported sequences.
- Video fields (mmtracking's CocoVID layout): `videos` (one per sequence), images' `video_id` and
  `frame_id` (0-based index in the sequence), annotations' `instance_id` (one per object per sequence: a
  track); camsim's own `sequence`, `frame_number` (images) and `camsim_object_id` (annotations).

Frames are hard-linked (or copied) into OUTPUT/images/SEQUENCE/frame_NNNNNN.png; 16-bit frames are rounded
to 8 bits, since COCO readers (PIL) decode 8-bit images.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from camsim import transforms
from camsim.errors import OutputWriteError
from camsim.export.common import (
    RECORD,
    Objects,
    Progress,
    Source,
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
from camsim.fileio import write_bytes_atomic, write_json_atomic

EXPORT_FORMAT = "camsim-coco/1"
"""`format` of the export's camsim_export.json (and `info.version` of annotations.json)."""
ANNOTATIONS = "annotations.json"
IMAGES = "images"
SUPERCATEGORY = "object"


# ------------------------------------------------------------------------------------------------ pure


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed RLE of a boolean HxW mask, JSON-ready (`counts` as text), as COCO stores it."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def mask_bbox(mask: np.ndarray) -> list[int]:
    """`[x, y, w, h]` of a non-empty mask in pixels: first column and row, columns and rows spanned."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    return [int(cols[0]), int(rows[0]), int(cols[-1] + 1 - cols[0]), int(rows[-1] + 1 - rows[0])]


def frame_annotations(
    segmentation: np.ndarray,
    category_of: Callable[[int], int],
    crowd: Callable[[int], bool] = lambda k: False,
) -> list[dict[str, Any]]:
    """One annotation per object id in a segmentation (0 = background), in id order: `camsim_object_id`,
    `category_id`, `segmentation` (RLE), `area`, `bbox`, `iscrowd` (1 where `crowd(id)`: the id's pixels
    are several instances)."""
    out = []
    for k in np.unique(segmentation):
        if k == 0:
            continue
        mask = segmentation == k
        out.append(
            {
                "camsim_object_id": int(k),
                "category_id": category_of(int(k)),
                "segmentation": encode_mask(mask),
                "area": int(mask.sum()),
                "bbox": mask_bbox(mask),
                "iscrowd": int(crowd(int(k))),
            }
        )
    return out


def image_stem(frame_number: int) -> str:
    return f"frame_{frame_number:06d}"


# ------------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class SequencePlan:
    source: Source
    objects: Objects


@dataclass(frozen=True)
class CocoPlan:
    """Everything checked before anything is written."""

    input: Path
    output: Path
    sequences: tuple[SequencePlan, ...]
    categories: dict[str, int]
    """Category name -> COCO id (1..K in name order)."""
    link: bool
    replace: bool
    stage: str | None
    split: str | None

    @property
    def frames(self) -> int:
        return sum(len(s.source.dataset) for s in self.sequences)

    @property
    def steps(self) -> int:
        return self.frames


def _owned(name: str) -> bool:
    return name in (ANNOTATIONS, IMAGES)


def plan_coco(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    stage: str | None = None,
    split: str | None = None,
    overwrite: bool = False,
    link: bool = True,
) -> CocoPlan:
    """Check the inputs and the output folder (reads transforms.json and objects.json; writes nothing).

    Raises UserInputError (DatasetError for a sequence that cannot be exported) with a one-line reason: no
    segmentation, interpolation holes, an object without a category."""
    src, out = Path(input), Path(os.path.abspath(output))
    sources = find_sources(src, stage, split)
    replace = check_output([src], out, overwrite, EXPORT_FORMAT, _owned)
    plans = []
    for s in sources:
        require(s, ("frame", "segmentation"), "COCO instance masks come from the segmentation")
        refuse_holes(s)
        plans.append(SequencePlan(s, read_objects(s)))
    cats = category_ids((p.objects for p in plans), other_splits(src, stage, split))
    return CocoPlan(src, out, tuple(plans), cats, link, replace, stage, split)


# ------------------------------------------------------------------------------------------------ write


@dataclass
class CocoExport:
    """What an export holds."""

    output: Path
    images: int = 0
    annotations: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    sequences: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def annotation_file(self) -> Path:
        return self.output / ANNOTATIONS


def _export_sequence(
    plan: SequencePlan,
    video_id: int,
    categories: dict[str, int],
    dest: Path,
    link: bool,
    doc: dict[str, Any],
    track_ids: Iterator[int],
    tick: Progress,
) -> None:
    """Append one sequence's images and annotations to `doc`, writing its frames below `dest`."""
    ds, name = plan.source.dataset, plan.source.name
    folder = dest / IMAGES / name
    folder.mkdir(parents=True, exist_ok=True)
    numbers = transforms.frame_numbers(ds.meta)
    tracks: dict[int, int] = {}
    h, w = int(ds.meta["h"]), int(ds.meta["w"])

    def category_of(k: int) -> int:
        return categories[plan.objects.category(k, f"{ds.root}: segmentation")]

    for i in range(len(ds)):
        file = write_frame(ds, i, folder, image_stem(int(numbers[i])), link)
        image_id = len(doc["images"]) + 1
        doc["images"].append(
            {
                "id": image_id,
                "file_name": f"{IMAGES}/{name}/{file}",
                "width": w,
                "height": h,
                "video_id": video_id,
                "frame_id": i,
                "sequence": name,
                "frame_number": int(numbers[i]),
            }
        )
        drawn = plan.objects.annotations[i] if plan.objects.annotations is not None else {}

        def crowd(k: int, drawn: dict[int, dict[str, Any]] = drawn) -> bool:
            n = drawn.get(k, {}).get("instances")
            return isinstance(n, int) and n > 1

        for ann in frame_annotations(read_segmentation(ds, i), category_of, crowd):
            k = ann["camsim_object_id"]
            if k not in tracks:
                tracks[k] = next(track_ids)
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": image_id,
                    **ann,
                    "video_id": video_id,
                    "instance_id": tracks[k],
                    "sequence": name,
                }
            )
        tick(1)


def export_coco(plan: CocoPlan, progress: Progress | None = None) -> CocoExport:
    """Write the planned export into a staging folder beside the output, which replaces the output folder
    only once everything is written: a failure leaves the output as it was."""
    tick: Progress = progress or (lambda n: None)
    out = plan.output
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_folder(out)
    except OSError as exc:
        raise OutputWriteError(f"cannot write next to {out}: {exc.strerror or exc}") from exc
    result = CocoExport(out, categories=dict(plan.categories), sequences=len(plan.sequences))
    doc: dict[str, Any] = {
        "info": {
            "description": f"camsim export of {plan.input.name}",
            "version": EXPORT_FORMAT,
            "contributor": f"camsim {camsim_version()}",
        },
        "licenses": [],
        "categories": [
            {"id": i, "name": n, "supercategory": SUPERCATEGORY} for n, i in plan.categories.items()
        ],
        "videos": [{"id": v + 1, "name": s.source.name} for v, s in enumerate(plan.sequences)],
        "images": [],
        "annotations": [],
    }
    track_ids = itertools.count(1)
    try:
        for v, seq in enumerate(plan.sequences):
            _export_sequence(seq, v + 1, plan.categories, staging, plan.link, doc, track_ids, tick)
            note = seq.objects.note(seq.source.name)
            if note:
                result.notes.append(note)
            if seq.objects.annotations is None and seq.objects.instanced:
                result.notes.append(
                    f"{seq.source.name}: object(s) {sorted(seq.objects.instanced)} are instanced and the sequence "
                    "has no annotations to count their instances: one annotation may cover several (iscrowd 0)"
                )
        write_bytes_atomic(staging / ANNOTATIONS, json.dumps(doc, separators=(",", ":")).encode())
        write_json_atomic(staging / RECORD, _record(plan, doc, result.notes))
        swap_into_place(staging, out)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            if staging.exists():
                shutil.rmtree(staging)
    result.images, result.annotations = len(doc["images"]), len(doc["annotations"])
    return result


def _record(plan: CocoPlan, doc: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    images: dict[int, int] = {}
    for im in doc["images"]:
        images[im["video_id"]] = images.get(im["video_id"], 0) + 1
    return {
        "format": EXPORT_FORMAT,
        "camsim_version": camsim_version(),
        "source": str(plan.input),
        "stage": plan.stage,
        "split": plan.split,
        "annotation_file": ANNOTATIONS,
        "categories": {str(i): n for n, i in plan.categories.items()},
        "sequences": {
            s.source.name: {"video_id": v + 1, "images": images.get(v + 1, 0), "split": s.source.split}
            for v, s in enumerate(plan.sequences)
        },
        "notes": notes,
    }
