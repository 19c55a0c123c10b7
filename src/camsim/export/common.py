"""What the COCO and BOP exporters share: the sequences to export, their objects and categories, 8-bit
frames, and the staged output folder.

- `find_sources`: INPUT is one sequence, a folder of sequences (each named by its path below INPUT), or a
  create-datasets folder (DATASETS with dataset.json): one stage (default `render`) and optionally one split,
  read through `camsim.loader.Dataset.from_stage`, so the export sees exactly what the loader sees.
- `read_objects`: every object's category (objects.json `category`, else the name `categories` gives its
  `category_id`) and the per-frame `annotations` (docs/FORMAT.md, objects.json). A sequence rendered before
  categories were recorded has neither: every object is category "object" (the same default the renderer
  gives an object without a `category` property or collection), and the export says so.
- `category_ids`: one id per category name over every exported sequence (1..K in sorted name order), so
  "chair" has one id in the whole export whatever id each sequence gave it.
- `write_frame`: an 8-bit PNG/JPEG frame is hard-linked (or copied); anything else is written as an 8-bit
  PNG (16-bit values rounded).
- `check_output`, `staging_folder`, `swap_into_place`: an export is written beside OUTPUT and moved into
  place when complete; OUTPUT must be new, empty, or (with --overwrite) a previous export of the same format.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim import transforms
from camsim.errors import DatasetError, UserInputError
from camsim.fileio import TMP_MARK, write_image
from camsim.loader import Dataset, SequenceDataset, find_sequences
from camsim.manifest import has_manifest, read_manifest

RECORD = "camsim_export.json"
"""The file every COCO and BOP export writes at its top: what it is (`format`) and where it came from."""
DEFAULT_CATEGORY = "object"
"""The category of an object in a sequence that records none (rendered before categories existed)."""
_NO_CATEGORIES = (
    "{name}: no categories recorded (rendered before camsim recorded them): every object is category "
    f"'{DEFAULT_CATEGORY}'"
)

Progress = Callable[[int], None]


# ------------------------------------------------------------------------------------------------ sources


@dataclass(frozen=True)
class Source:
    """One sequence to export."""

    dataset: SequenceDataset
    name: str
    """Its name in the export: the manifest key SCENE/SEQ, its path below INPUT, or its folder's name."""
    split: str | None
    """Its split in the manifest (None without a manifest or without splits)."""

    @property
    def folder(self) -> Path:
        return self.dataset.root

    @property
    def meta(self) -> dict[str, Any]:
        return self.dataset.meta


def find_sources(
    input: str | os.PathLike[str], stage: str | None = None, split: str | None = None
) -> list[Source]:
    """The sequences below `input` (see the module docstring). UserInputError/DatasetError with one line."""
    src = Path(input)
    if not src.is_dir():
        raise UserInputError(
            f"{src} is not a folder (a sequence, a folder of sequences or a DATASETS folder)"
        )
    if has_manifest(src):
        stage = stage or "render"
        if stage == "imu":
            raise UserInputError("the imu stage holds IMU samples, not images: choose another --stage")
        ds = Dataset.from_stage(src, stage, split)
        manifest = read_manifest(src)
        assert manifest is not None and not isinstance(ds, SequenceDataset)
        sequences = ds.sequences  # type: ignore[union-attr]
        return [Source(s, s.name, manifest.sequences[s.name].split) for s in sequences]
    if stage is not None or split is not None:
        raise UserInputError(
            f"--stage and --split read a create-datasets folder (with dataset.json); {src} has none"
        )
    seqs = find_sequences(src)
    if not seqs:
        raise UserInputError(f"{src} is not a camsim sequence (no transforms.json in it or below it)")
    return [
        Source(SequenceDataset(s), s.name if s == src else s.relative_to(src).as_posix(), None) for s in seqs
    ]


def other_splits(input: str | os.PathLike[str], stage: str | None, split: str | None) -> list[Source]:
    """The stage's sequences outside `split` when exporting one split of a DATASETS folder (else none):
    their categories count too, so every split's export gives a category the same id."""
    src = Path(input)
    if split is None or not has_manifest(src):
        return []
    every = find_sources(src, stage, None)
    return [s for s in every if s.split != split]


def has_holes(meta: dict[str, Any]) -> int:
    """How many frames of an interpolated sequence have pixels neither neighbour saw (unknown labels)."""
    count = 0
    for fr in meta["frames"]:
        value = fr.get("hole_fraction")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            count += 1
    return count


def require(source: Source, kinds: Iterable[str], why: str) -> None:
    """DatasetError unless every frame of the sequence has each kind (frame, depth, segmentation, ...)."""
    have = source.dataset.available_modalities()
    missing = [k for k in kinds if k not in have]
    if missing:
        raise DatasetError(f"{source.folder}: no {', '.join(missing)} for every frame; {why}")
    for key in ("w", "h"):
        if key not in source.meta:
            raise DatasetError(f"{source.folder}: transforms.json has no '{key}'")


def refuse_holes(source: Source) -> None:
    """Interpolation holes have no ground truth: an export of their labels would be a guess."""
    n = has_holes(source.meta)
    if n:
        raise DatasetError(
            f"{source.folder}: {n} interpolated frame(s) have hole pixels whose segmentation is unknown; "
            "export the rendered sequences instead (--stage render)"
        )


# ------------------------------------------------------------------------------------------------ objects


@dataclass(frozen=True)
class Objects:
    """A sequence's objects as the exporters need them."""

    categories: dict[int, str]
    """camsim object id -> category name (every id of segmentation_ids and objects.json)."""
    names: dict[int, str]
    """camsim object id -> object name."""
    annotations: tuple[dict[int, dict[str, Any]], ...] | None
    """Per frame: object id -> its annotation (objects.json `frames[i].annotations`); None when the
    sequence has none (rendered before annotations existed, or an interpolated sequence)."""
    recorded: bool = True
    """False when the sequence records no categories (every object is DEFAULT_CATEGORY)."""
    deforming: frozenset[int] = frozenset()
    """Objects objects.json marks `deforming` (armatures, shape keys): no rigid model follows their pose."""
    instanced: frozenset[int] = frozenset()
    """Objects transforms.json's segmentation_objects says are instanced (`instanced_by`): their id may
    cover several instances in a frame (the annotations' `instances` says how many)."""

    def category(self, object_id: int, where: str) -> str:
        try:
            return self.categories[object_id]
        except KeyError:
            if not self.recorded:
                return DEFAULT_CATEGORY
            raise DatasetError(f"{where}: object id {object_id} has no category") from None

    def note(self, name: str) -> str | None:
        return None if self.recorded else _NO_CATEGORIES.format(name=name)


def _ids(mapping: Any, where: str) -> dict[int, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and k.isdigit() for k in mapping):
        raise DatasetError(f"{where} must map integer ids to values")
    return {int(k): v for k, v in mapping.items()}


def _objects_json(source: Source) -> dict[str, Any] | None:
    rel = source.meta.get("objects_file_path")
    if not rel:
        return None
    path = transforms.resolve_path(source.folder, rel)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DatasetError(f"{source.folder}: transforms.json names {rel}, which is missing") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("camsim-objects/"):
        raise DatasetError(f"{path} is not a camsim-objects file")
    return data


def read_objects(source: Source) -> Objects:
    """Categories and annotations of a sequence (module docstring). DatasetError for a malformed file or an
    object without a category in a sequence that records categories."""
    where = str(source.folder)
    data = _objects_json(source)
    named = _ids(source.meta.get("categories"), f"{where}: transforms.json 'categories'")
    if not all(isinstance(v, str) for v in named.values()):
        raise DatasetError(f"{where}: transforms.json 'categories' must map ids to names")
    seg_ids = _ids(source.meta.get("segmentation_ids"), f"{where}: 'segmentation_ids'")
    objects = _ids(data.get("objects") if data else None, f"{where}: objects.json 'objects'")
    categories: dict[int, str] = {}
    names = {k: str(v) for k, v in seg_ids.items()}
    recorded = bool(named) or any(
        isinstance(o, dict) and ("category" in o or "category_id" in o) for o in objects.values()
    )
    for k, o in objects.items():
        if not isinstance(o, dict):
            raise DatasetError(f"{where}: objects.json objects[{k}] must be an object")
        if isinstance(o.get("name"), str):
            names[k] = o["name"]
        if isinstance(o.get("category"), str):
            categories[k] = o["category"]
        elif "category_id" in o:
            cid = o["category_id"]
            if not isinstance(cid, int) or isinstance(cid, bool) or cid not in named:
                raise DatasetError(f"{where}: objects[{k}].category_id {cid!r} is not in 'categories'")
            categories[k] = named[cid]
    if recorded and data is None:
        raise DatasetError(
            f"{where}: transforms.json has categories but no objects.json says which object has which (an "
            "interpolated sequence drops it); export the rendered sequences (--stage render)"
        )
    if recorded:
        missing = sorted(set(seg_ids) - set(categories))
        if missing:
            raise DatasetError(f"{where}: object id(s) {missing} have no category in objects.json")
    else:
        categories = dict.fromkeys(set(seg_ids) | set(objects), DEFAULT_CATEGORY)
    deforming = frozenset(k for k, o in objects.items() if o.get("deforming") is True)
    drawn = _ids(source.meta.get("segmentation_objects"), f"{where}: 'segmentation_objects'")
    instanced = frozenset(k for k, o in drawn.items() if isinstance(o, dict) and o.get("instanced_by"))
    return Objects(
        categories,
        names,
        _annotations(data, source),
        recorded=recorded,
        deforming=deforming,
        instanced=instanced,
    )


def amodal_files(source: Source) -> tuple[Path, ...] | None:
    """Each frame's amodal mask file (objects.json `frames[i].amodal_file_path`, camsim.amodal); None when the
    sequence has none. DatasetError when only some frames name one or a named file is missing."""
    data = _objects_json(source)
    frames = data.get("frames") if data else None
    if not isinstance(frames, list):
        return None
    rels = [fr.get("amodal_file_path") if isinstance(fr, dict) else None for fr in frames]
    if not any(rels):
        return None
    where = f"{source.folder}: objects.json"
    if len(rels) != len(source.meta["frames"]) or not all(isinstance(r, str) for r in rels):
        raise DatasetError(f"{where}: some frames name no amodal_file_path")
    paths = tuple(transforms.resolve_path(source.folder, str(r)) for r in rels)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"{where} names amodal masks that are missing: {', '.join(missing[:3])}")
    return paths


def _annotations(data: dict[str, Any] | None, source: Source) -> tuple[dict[int, dict[str, Any]], ...] | None:
    """objects.json `frames[i].annotations` checked against the sequence's frames; None when absent."""
    frames = data.get("frames") if data else None
    if not isinstance(frames, list) or not any(isinstance(f, dict) and "annotations" in f for f in frames):
        return None
    where = f"{source.folder}: objects.json"
    meta_frames = source.meta["frames"]
    if len(frames) != len(meta_frames):
        raise DatasetError(f"{where} has {len(frames)} frames, transforms.json {len(meta_frames)}")
    out = []
    for i, (fr, mf) in enumerate(zip(frames, meta_frames, strict=True)):
        if not isinstance(fr, dict) or "annotations" not in fr:
            raise DatasetError(f"{where}: frames[{i}] has no annotations")
        if "frame_number" in mf and fr.get("frame_number", mf["frame_number"]) != mf["frame_number"]:
            raise DatasetError(
                f"{where}: frames[{i}] is frame {fr.get('frame_number')}, not {mf['frame_number']}"
            )
        anns = _ids(fr["annotations"], f"{where}: frames[{i}].annotations")
        if not all(isinstance(a, dict) for a in anns.values()):
            raise DatasetError(f"{where}: frames[{i}].annotations must hold one object per id")
        out.append(anns)
    return tuple(out)


def category_ids(objects: Iterable[Objects], others: Iterable[Source] = ()) -> dict[str, int]:
    """One id per category name over the exported sequences' objects and the `others` (the other splits of
    a DATASETS folder; one that cannot be read is left out): 1..K in sorted name order (0 is background)."""
    names = {name for o in objects for name in o.categories.values()}
    for s in others:
        try:
            names.update(read_objects(s).categories.values())
        except DatasetError:
            continue
    return {name: i + 1 for i, name in enumerate(sorted(names or {DEFAULT_CATEGORY}))}


# ------------------------------------------------------------------------------------------------ frames


def _png_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, bit depth) of a PNG file, None when it is not one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(25)
    except OSError:
        return None
    if len(head) < 25 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24]


def to_uint8(frame: np.ndarray, where: str) -> np.ndarray:
    """An 8-bit image of a grey, RGB or RGBA frame (16-bit values rounded to the nearest 8-bit value)."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise DatasetError(f"{where}: frames of shape {frame.shape} are not grey, RGB or RGBA images")
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise DatasetError(f"{where}: frames of type {frame.dtype} are not 8- or 16-bit images")


def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:  # another file system, or links not allowed: copy
            pass
    shutil.copyfile(src, dst)


def write_frame(ds: SequenceDataset, i: int, folder: Path, stem: str, link: bool) -> str:
    """Write frame `i` as `folder/stem.png` (or `.jpg`): an 8-bit PNG/JPEG file is hard-linked (`link`,
    falling back to a copy) or copied as it is; anything else is decoded and written as an 8-bit PNG.
    Returns the file's name. DatasetError when the frame's size is not the sequence's."""
    shape = (int(ds.meta["h"]), int(ds.meta["w"]))
    where = f"{ds.root}: frame {i}"
    src = None if ds.is_npy else ds.file_for("frame", i)
    suffix = src.suffix.lower() if src is not None else ""
    if src is not None and suffix == ".png":
        head = _png_header(src)
        if head is not None and head[2] == 8:
            if (head[1], head[0]) != shape:
                raise DatasetError(
                    f"{where} is {head[0]}x{head[1]}, transforms.json says {shape[1]}x{shape[0]}"
                )
            _place(src, folder / f"{stem}.png", link)
            return f"{stem}.png"
    frame = ds.read("frame", i)
    if frame.shape[:2] != shape:
        raise DatasetError(
            f"{where} is {frame.shape[1]}x{frame.shape[0]}, transforms.json says {shape[1]}x{shape[0]}"
        )
    if src is not None and suffix in (".jpg", ".jpeg") and frame.dtype == np.uint8:
        _place(src, folder / f"{stem}.jpg", link)
        return f"{stem}.jpg"
    write_image(folder / f"{stem}.png", to_uint8(frame, where))
    return f"{stem}.png"


def read_segmentation(ds: SequenceDataset, i: int) -> np.ndarray:
    seg = ds.read("segmentation", i)
    shape = (int(ds.meta["h"]), int(ds.meta["w"]))
    if seg.shape != shape:
        raise DatasetError(
            f"{ds.root}: segmentation of frame {i} is {seg.shape}, transforms.json says {shape}"
        )
    return seg


# ------------------------------------------------------------------------------------------------ output


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def read_record(folder: Path) -> dict[str, Any] | None:
    """The camsim_export.json of a previous export in `folder`, None when there is none or it is unreadable."""
    try:
        data = json.loads((folder / RECORD).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def check_output(
    sources: Iterable[Path], out: Path, overwrite: bool, fmt: str, owned: Callable[[str], bool]
) -> bool:
    """Refuse an output that overlaps an input, is a file, or holds anything but a previous export of
    format `fmt` (replaced only with --overwrite; `owned(top-level name)` says which entries such an export
    writes). Returns whether the output folder exists (it will be replaced)."""
    real_out = Path(os.path.realpath(out))
    for src in sources:
        real_src = Path(os.path.realpath(src))
        if _is_within(real_out, real_src) or _is_within(real_src, real_out):
            raise UserInputError(f"output {out} overlaps the input {src}; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserInputError(f"output path exists and is not a folder: {out}")
    parent = out.parent if out.exists() else next(p for p in out.parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserInputError(f"cannot write to {parent}")
    if not out.exists():
        return False
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return True
    if not overwrite:
        raise UserInputError(f"{out} is not empty (pass --overwrite to replace a previous export there)")
    record = read_record(out)
    if record is None or record.get("format") != fmt:
        raise UserInputError(
            f"{out} does not hold a previous {fmt} export (no {RECORD}); refusing to replace it"
        )
    strangers = [n for n in entries if n != RECORD and not owned(n)]
    if strangers:
        raise UserInputError(
            f"{out} holds {strangers[0]}, which a {fmt} export does not write; refusing to replace it"
        )
    return True


def staging_folder(out: Path) -> Path:
    """A new hidden folder beside `out` (a temporary name readers and `clean_temporaries` recognise)."""
    while True:
        path = out.parent / f".{out.name}.{secrets.token_hex(4)}{TMP_MARK}"
        try:
            path.mkdir(parents=False)
            return path
        except FileExistsError:
            continue


def swap_into_place(staging: Path, out: Path) -> None:
    """Move the finished staging folder to `out`; an existing `out` is moved aside first, removed last."""
    old = None
    if out.exists():
        old = staging_folder(out)
        old.rmdir()
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def camsim_version() -> str:
    import camsim

    return camsim.__version__
