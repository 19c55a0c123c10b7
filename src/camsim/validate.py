"""Check a dataset on disk: schema, files, shapes, NaNs, counts; optionally geometric consistency; repair.

`validate_dataset` returns a report and never prints. `purge=True` deletes corrupted files and the
transforms.json of every sequence that lost (or lacks) files, so `create-datasets --allow-skips`
resumes exactly those sequences and re-renders exactly the frames whose files are gone.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from camsim import transforms
from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK, checksum
from camsim.loader import SequenceDataset, find_sequence_dirs, sequence_name
from camsim.passes import FRAME, PASSES, SEGMENTATION, Pass

log = logging.getLogger(__name__)

Status = Literal["ok", "incomplete", "corrupted"]
ProblemKind = Literal["missing", "corrupted", "schema", "inconsistent", "unlisted"]


@dataclass
class Problem:
    """One thing wrong, tied to the file to blame (transforms.json for sequence-level problems)."""

    path: Path
    kind: ProblemKind
    message: str


@dataclass
class Consistency:
    """Ground truth checked against itself: depth + poses + intrinsics (+ the object poses of
    objects.json) vs forward flow, and flow cycles."""

    pairs: int
    """Consecutive frame pairs compared."""
    epe: float
    """Mean end-point error (px) between forward flow and reprojected depth, on pixels whose motion is
    known: surfaces judged static and objects with recorded poses."""
    epe_median: float
    static_fraction: float
    """Share of checked pixels whose motion is known: on segments judged static (median error small)
    or on objects with recorded poses."""
    cycle_median: float
    """Median |forward + backward(next)| (px): 0 for a consistent flow pair."""
    cycle_outliers: float
    """Share of pixels whose forward-backward cycle misses by more than 1 px (occlusions add some)."""
    ok: bool
    bad_pairs: list[tuple[int, str]] = field(default_factory=list)
    """(index of the first frame, why) for every inconsistent frame pair."""
    reason: str = ""
    """Why nothing was checked (then `checked` is 0 and `ok` stays true), or a summary of the failures."""
    checked: int = 0
    """Interior surface pixels judged, over all pairs."""
    rigid_fraction: float = 0.0
    """Share of checked pixels on objects whose motion objects.json records."""
    excluded: int = 0
    """Interior pixels left out: objects that objects.json lists without a pose (deforming, instanced)."""


@dataclass
class SequenceReport:
    path: Path
    name: str
    frames: int = 0
    format: str = "IMG"
    has_transforms: bool = True
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    consistency: Consistency | None = None
    purged: list[Path] = field(default_factory=list)

    @property
    def status(self) -> Status:
        if any(p.kind in ("corrupted", "schema", "inconsistent", "unlisted") for p in self.problems):
            return "corrupted"
        if not self.has_transforms or self.problems:
            return "incomplete"
        return "ok"


@dataclass
class ValidationReport:
    root: Path
    sequences: list[SequenceReport]

    @property
    def ok(self) -> bool:
        return bool(self.sequences) and all(s.status == "ok" for s in self.sequences)

    def counts(self) -> dict[Status, int]:
        out: dict[Status, int] = {"ok": 0, "incomplete": 0, "corrupted": 0}
        for s in self.sequences:
            out[s.status] += 1
        return out

    @property
    def problems(self) -> list[Problem]:
        return [p for s in self.sequences for p in s.problems]


# ------------------------------------------------------------------------------------- array checks


def check_array(kind: Pass, arr: np.ndarray, hw: tuple[int, int] | None) -> str | None:
    """Why `arr` is not a valid frame of `kind` (size, then the kind's own check: shape, dtype, NaNs), or
    None when it is."""
    if hw is not None and tuple(arr.shape[:2]) != hw:
        w = arr.shape[1] if arr.ndim > 1 else "?"
        return f"{kind.name} is {w}x{arr.shape[0]}, expected {hw[1]}x{hw[0]}"
    return kind.check(arr)


# ------------------------------------------------------------------------------------- objects.json


@dataclass(frozen=True)
class ObjectPoses:
    """A sequence's objects.json: the ids it describes and, per frame, the object-to-world matrix of
    each object that moves rigidly and is drawn once (translation in metres, like depth and poses)."""

    ids: frozenset[int]
    """Every id objects.json lists; those without a matrix (deforming, instanced) are not judged."""
    matrices: tuple[dict[int, np.ndarray], ...]
    """One {id: 4x4 object-to-world} per frame of transforms.json, same order."""

    def motions(self, i: int, j: int) -> dict[int, np.ndarray]:
        """World-space motion M(j) @ inv(M(i)) of every id with an invertible matrix at frames i and j."""
        a, b = self.matrices[i], self.matrices[j]
        out = {}
        for k in sorted(a.keys() & b.keys()):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[k] = b[k] @ np.linalg.inv(a[k])
        return out


def _matrix(m: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (4, 4) or not np.isfinite(arr).all():
        raise DatasetError(f"{where} must be a 4x4 list of finite numbers")
    return arr


def _by_id(mapping: Any, what: str) -> dict[int, Any]:
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and k.isdigit() for k in mapping):
        raise DatasetError(f"{what} must map integer ids to values")
    return {int(k): v for k, v in mapping.items()}


def parse_objects(data: Any, frame_numbers: list[Any]) -> ObjectPoses:
    """Check a parsed objects.json against the frames of its transforms.json and collect the matrices.

    A rigid object's matrix comes from `frames[i].matrix_world` or, for one that does not move, once
    from its `objects` entry (`matrix_world`); an object marked `"rigid": false` gets none.
    """
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("camsim-objects/"):
        raise DatasetError("not a camsim-objects file (no 'format': 'camsim-objects/1')")
    objects = _by_id(data.get("objects"), "'objects'")
    fixed: dict[int, np.ndarray] = {}
    not_rigid: set[int] = set()
    for k, entry in objects.items():
        if not isinstance(entry, dict):
            raise DatasetError(f"objects[{k}] must be an object")
        if entry.get("rigid") is False:
            not_rigid.add(k)
        elif "matrix_world" in entry:
            fixed[k] = _matrix(entry["matrix_world"], f"objects[{k}].matrix_world")
    frames = data.get("frames")
    if not isinstance(frames, list) or len(frames) != len(frame_numbers):
        got = len(frames) if isinstance(frames, list) else "no"
        raise DatasetError(f"{got} frames, transforms.json has {len(frame_numbers)}")
    ids = set(objects)
    matrices = []
    for i, (fr, number) in enumerate(zip(frames, frame_numbers, strict=True)):
        if not isinstance(fr, dict):
            raise DatasetError(f"frames[{i}] must be an object")
        if isinstance(number, int) and fr.get("frame_number", number) != number:
            raise DatasetError(
                f"frames[{i}] is frame {fr.get('frame_number')}, transforms.json says {number}"
            )
        own = _by_id(fr.get("matrix_world", {}), f"frames[{i}].matrix_world")
        frame = dict(fixed)
        frame.update({k: _matrix(m, f"frames[{i}].matrix_world[{k}]") for k, m in own.items()})
        ids.update(own)
        matrices.append({k: m for k, m in frame.items() if k not in not_rigid})
    return ObjectPoses(frozenset(ids), tuple(matrices))


def _check_objects(rep: SequenceReport, seq: SequenceDataset) -> ObjectPoses | None:
    """Read the objects.json that transforms.json names (a missing or broken one is a problem)."""
    try:
        path = transforms.resolve_path(seq.root, seq.meta["objects_file_path"])
    except DatasetError as exc:
        rep.problems.append(Problem(seq.root / "transforms.json", "schema", f"objects_file_path: {exc}"))
        return None
    if not path.is_file():
        rep.problems.append(Problem(path, "missing", "missing objects file"))
        return None
    try:
        data = json.loads(path.read_bytes())
        return parse_objects(data, [fr.get("frame_number") for fr in seq.meta["frames"]])
    except (OSError, ValueError, RecursionError, DatasetError) as exc:
        rep.problems.append(Problem(path, "corrupted", f"objects file: {exc}"))
        return None


# ------------------------------------------------------------------------------------------ checking


_NUMBER = re.compile(r"_(\d+)\.[A-Za-z0-9]+$")


def _check_img_files(
    rep: SequenceReport, seq: SequenceDataset, progress: Callable[[int], None] | None
) -> None:
    """Every per-frame file transforms.json lists (of an NPY sequence: those not stored as arrays)."""
    meta = seq.meta
    hw = (meta["h"], meta["w"]) if "h" in meta and "w" in meta else None
    kinds = [m for m in PASSES if m.key not in meta and any(m.key in fr for fr in meta["frames"])]
    for i, fr in enumerate(meta["frames"]):
        for m in kinds:
            name = m.name
            if m.key not in fr:
                if m.only_where and not fr.get(m.only_where):
                    continue  # a kind only some frames hold (hole masks: interpolated frames)
                rep.problems.append(
                    Problem(seq.root / "transforms.json", "schema", f"frames[{i}] has no {m.key}")
                )
                continue
            path = transforms.resolve_path(seq.root, fr[m.key])
            number = _NUMBER.search(path.name)
            if number and "frame_number" in fr and int(number.group(1)) != fr["frame_number"]:
                rep.problems.append(
                    Problem(
                        path,
                        "schema",
                        f"file name says frame {int(number.group(1))}, "
                        f"transforms.json frame_number {fr['frame_number']}",
                    )
                )
            if not path.is_file():
                rep.problems.append(Problem(path, "missing", f"missing {name} of frame {i}"))
                continue
            try:
                arr = m.decode(path)
            except DatasetError as exc:
                rep.problems.append(Problem(path, "corrupted", f"cannot decode: {exc}"))
                continue
            if hw is None:
                hw = tuple(arr.shape[:2])  # type: ignore[assignment]
            why = check_array(m, arr, hw)
            if why:
                rep.problems.append(Problem(path, "corrupted", why))
            elif m is SEGMENTATION:
                _check_ids(rep, seq.meta, arr, path)
        if progress:
            progress(1)


def _check_ids(rep: SequenceReport, meta: dict[str, Any], ids: np.ndarray, path: Path) -> None:
    known = {int(k) for k in meta.get("segmentation_ids", {})}
    if not known:
        return
    unknown = set(np.unique(ids).tolist()) - known - {0}
    if unknown:
        rep.warnings.append(f"{path}: ids {sorted(unknown)[:5]} not in segmentation_ids")


def _check_npy_files(
    rep: SequenceReport, seq: SequenceDataset, progress: Callable[[int], None] | None
) -> None:
    meta, n = seq.meta, len(seq)
    hw = (meta["h"], meta["w"]) if "h" in meta and "w" in meta else None
    readable = []
    for m in PASSES:
        if m.key not in meta:
            continue
        path = transforms.resolve_path(seq.root, meta[m.key])
        if not path.is_file():
            rep.problems.append(Problem(path, "missing", f"missing {m.name} array"))
            continue
        try:
            arr = seq.array(m.name)
        except DatasetError as exc:
            rep.problems.append(Problem(path, "corrupted", str(exc)))
            continue
        length = arr.shape[0] * 8 if (m is FRAME and seq.bitpack_dim == 0) else arr.shape[0]
        if (
            arr.ndim not in (3, 4)
            or length < n
            or (m is FRAME and seq.bitpack_dim == 0 and arr.shape[0] != (n + 7) // 8)
        ):
            rep.problems.append(Problem(path, "corrupted", f"shape {arr.shape} does not hold {n} frames"))
            continue
        readable.append(m)
    for i in range(n):
        for m in list(readable):
            try:
                arr = seq.read(m.name, i)
            except (DatasetError, ValueError) as exc:
                rep.problems.append(Problem(seq.file_for(m.name, i), "corrupted", f"frame {i}: {exc}"))
                readable.remove(m)
                continue
            why = check_array(m, arr, hw)
            if why:
                rep.problems.append(Problem(seq.file_for(m.name, i), "corrupted", f"frame {i}: {why}"))
                readable.remove(m)
        if progress:
            progress(1)


def _check_events(rep: SequenceReport, path: Path, meta: dict[str, Any]) -> None:
    """events.h5: an `events` dataset of int rows (t_us, x, y, p), coordinates inside the sensor."""
    if not path.is_file():
        rep.problems.append(Problem(path, "missing", "missing events file"))
        return
    import h5py

    try:
        with h5py.File(path, "r") as f:
            ds = f["events"]
            if ds.ndim != 2 or ds.shape[1] != 4 or ds.dtype.kind not in "iu":
                rep.problems.append(
                    Problem(path, "corrupted", f"events are {ds.shape} {ds.dtype}, expected (M, 4) int")
                )
                return
            w, h = meta.get("w"), meta.get("h")
            step = 1 << 20
            last_t = None
            for start in range(0, ds.shape[0], step):
                ev = np.asarray(ds[start : start + step])
                bad_xy = (
                    w and h and ((ev[:, 1] < 0) | (ev[:, 1] >= w) | (ev[:, 2] < 0) | (ev[:, 2] >= h)).any()
                )
                t = ev[:, 0]
                unsorted = (np.diff(t) < 0).any() or (last_t is not None and len(t) and t[0] < last_t)
                if bad_xy or unsorted:
                    why = "coordinates outside the sensor" if bad_xy else "timestamps not sorted"
                    rep.problems.append(Problem(path, "corrupted", f"events {start}..: {why}"))
                    return
                if len(t):
                    last_t = t[-1]
    except (OSError, KeyError) as exc:
        rep.problems.append(Problem(path, "corrupted", f"cannot read events: {exc}"))


def _check_loose_files(rep: SequenceReport, root: Path, progress: Callable[[int], None] | None) -> None:
    """A sequence without a usable transforms.json: every file that is there must still decode."""
    count = 0
    for m in PASSES:
        folder = root / m.folder
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file() and TMP_MARK not in p.name)
        if m is FRAME:
            count = len(files)
        for path in files:
            try:
                arr = m.decode(path)
            except DatasetError as exc:
                rep.problems.append(Problem(path, "corrupted", f"cannot decode: {exc}"))
                continue
            why = check_array(m, arr, None)
            if why:
                rep.problems.append(Problem(path, "corrupted", why))
            if progress and m is FRAME:
                progress(1)
    rep.frames = count


RENDER_FOLDERS = (*(p.folder for p in PASSES), "debug")
"""Folders of per-frame files: every file in them must be listed by the sequence's transforms.json."""


def _listed_files(meta: dict[str, Any]) -> set[str]:
    keys = lambda d: (v for k, v in d.items() if k == "file_path" or k.endswith("_file_path"))  # noqa: E731
    listed = {v for v in keys(meta) if isinstance(v, str)}
    for fr in meta["frames"]:
        listed.update(v for v in keys(fr) if isinstance(v, str))
    return {str(PurePosixPath(v.replace("\\", "/"))) for v in listed}


def check_unlisted(rep: SequenceReport, root: Path, meta: dict[str, Any]) -> None:
    """Files in per-frame folders that transforms.json does not list: stale frames of another render, which
    a reader would never see and a tool globbing the folder would mix in. A debug PNG counts as listed
    when the file it colorizes is (debug/depths/depth_000012.png for depths/depth_000012.exr)."""
    listed = _listed_files(meta)
    stems = {str(PurePosixPath(p).with_suffix("")) for p in listed if PurePosixPath(p).name}  # not "."
    for name in RENDER_FOLDERS:
        folder = root / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or TMP_MARK in path.name:
                continue
            rel = path.relative_to(root).as_posix()
            if rel in listed:
                continue
            if name == "debug" and str(PurePosixPath(rel).relative_to("debug").with_suffix("")) in stems:
                continue
            rep.problems.append(
                Problem(path, "unlisted", "not listed in transforms.json (left by another render?)")
            )


def check_checksums(rep: SequenceReport, root: Path, meta: dict[str, Any]) -> None:
    """Files whose bytes changed since they were written (transforms.json `checksums`): damage a decoder
    does not see (OpenEXR decodes a ZIP chunk altered in place without an error)."""
    reported = {p.path for p in rep.problems}
    for rel, expected in (meta.get("checksums") or {}).items():
        path = transforms.resolve_path(root, rel)
        if path in reported:
            continue
        if not path.is_file():
            rep.problems.append(Problem(path, "missing", "missing (listed in checksums)"))
        elif checksum(path) != expected:
            rep.problems.append(
                Problem(path, "corrupted", f"checksum {checksum(path)} differs from {expected}")
            )


def check_sequence(
    root: Path,
    name: str,
    consistency: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SequenceReport:
    """Validate one sequence folder (with or without transforms.json)."""
    rep = SequenceReport(path=root, name=name)
    tj = root / "transforms.json"
    temporaries = [p for p in root.rglob(f"*{TMP_MARK}*") if p.is_file()]
    if temporaries:
        rep.warnings.append(f"{len(temporaries)} temporary file(s) left by an interrupted write")
    if not tj.is_file():
        rep.has_transforms = False
        _check_loose_files(rep, root, progress)
        return rep
    try:
        meta = transforms.read(tj)
    except DatasetError as exc:
        rep.problems.append(Problem(tj, "schema", str(exc)))
        _check_loose_files(rep, root, progress)
        return rep
    seq = SequenceDataset(root, name=name, meta=meta, check=False)
    rep.frames = len(seq)
    rep.format = "NPY" if seq.is_npy else "IMG"
    if rep.frames == 0:
        rep.problems.append(Problem(tj, "schema", "transforms.json lists no frames"))
        return rep
    numbers = [fr.get("frame_number") for fr in meta["frames"]]
    if all(isinstance(x, int) for x in numbers) and any(b <= a for a, b in itertools.pairwise(numbers)):
        rep.problems.append(Problem(tj, "schema", "frame_number values are not increasing"))
    start, end = meta.get("frame_start"), meta.get("frame_end")
    if isinstance(start, int) and isinstance(end, int) and rep.frames != end - start + 1:
        rep.problems.append(
            Problem(
                tj, "schema", f"{rep.frames} frames listed, frame range {start}..{end} has {end - start + 1}"
            )
        )
    # Arrays named at the top level (every kind of an NPY sequence; the loader reads one in an IMG sequence
    # too), then the files listed per frame.
    _check_npy_files(rep, seq, progress if seq.is_npy else None)
    _check_img_files(rep, seq, None if seq.is_npy else progress)
    check_unlisted(rep, root, meta)
    check_checksums(rep, root, meta)
    if "events_file_path" in meta:
        rep.format = "events" if "frame" not in seq.modalities() else rep.format
        _check_events(rep, transforms.resolve_path(root, meta["events_file_path"]), meta)
    objects = _check_objects(rep, seq) if "objects_file_path" in meta else None
    if consistency and not rep.problems:
        names = seq.modalities()
        if (
            "depth" in names
            and "flow" in names
            and len(seq) > 1
            and all(k in meta or k in meta["frames"][0] for k in ("fl_x", "fl_y", "cx", "cy"))
        ):
            c = rep.consistency = check_consistency(seq, objects)
            for i, why in c.bad_pairs:
                rep.problems.append(
                    Problem(seq.file_for("flow", i), "inconsistent", f"frames {i}->{i + 1}: {why}")
                )
            if c.checked == 0:
                rep.warnings.append(f"consistency not checked: {c.reason}")
        else:
            rep.warnings.append("consistency check skipped: needs depth, flow, intrinsics and two frames")
    return rep


# ------------------------------------------------------------------------------------- consistency


def reprojection_flow(
    depth: np.ndarray,
    c2w_a: np.ndarray,
    k_a: np.ndarray,
    c2w_b: np.ndarray,
    k_b: np.ndarray,
    labels: np.ndarray | None = None,
    motions: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flow (HxWx2, px) that surfaces seen with `depth` in camera a have into camera b, and a mask of
    pixels in front of camera b. Surfaces are static, except pixels whose id in `labels` has a world
    motion in `motions` (4x4, X_b = T @ X_a)."""
    h, w = depth.shape
    d = np.where(np.isfinite(depth), depth, 1.0)
    pts = transforms.unproject(d, c2w_a, k_a).reshape(-1, 3)
    if labels is not None and motions:
        flat = labels.reshape(-1)
        for lab, t in motions.items():
            sel = flat == lab
            pts[sel] = pts[sel] @ t[:3, :3].T + t[:3, 3]
    uv, z = transforms.project(pts, c2w_b, k_b)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    flow = uv.reshape(h, w, 2) - np.stack([u, v], axis=-1)
    return flow, (z.reshape(h, w) > 1e-9)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample HxWxC `img` at continuous pixel coordinates (pixel centres at +0.5); returns values, inside."""
    h, w = img.shape[:2]
    fx, fy = x - 0.5, y - 0.5
    inside = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
    fx, fy = np.clip(fx, 0, w - 1), np.clip(fy, 0, h - 1)
    x0, y0 = (
        np.minimum(np.floor(fx).astype(int), w - 2).clip(0),
        np.minimum(np.floor(fy).astype(int), h - 2).clip(0),
    )
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    top = img[y0, x0] * (1 - ax) + img[y0, x1] * ax
    bottom = img[y1, x0] * (1 - ax) + img[y1, x1] * ax
    return top * (1 - ay) + bottom * ay, inside


def interior_mask(depth: np.ndarray, seg: np.ndarray | None, curvature: float = 0.02) -> np.ndarray:
    """Pixels inside a surface: finite depth, the same id as their 4 neighbours, and smooth inverse depth.

    On a plane 1/z is affine in pixel coordinates, so its second difference through a pixel (along x
    and along y) is zero however steep the plane is: grazing floors at low resolution stay in. A
    silhouette or a step puts a jump on one side only, which shows as a second difference beyond
    `curvature` times 1/z, and takes the pixel out (flow there mixes two surfaces). Image borders,
    which lack a neighbour, are out too.
    """
    ok = np.isfinite(depth) & (depth > 0)
    q = np.zeros(depth.shape)
    q[ok] = 1.0 / depth[ok].astype(np.float64)
    out = ok.copy()
    out[[0, -1], :] = False
    out[:, [0, -1]] = False
    for axis in (0, 1):
        before, after = np.roll(q, 1, axis=axis), np.roll(q, -1, axis=axis)
        out &= np.roll(ok, 1, axis=axis) & np.roll(ok, -1, axis=axis)
        out &= np.abs(before - 2.0 * q + after) <= curvature * q
        if seg is not None:
            out &= (np.roll(seg, 1, axis=axis) == seg) & (np.roll(seg, -1, axis=axis) == seg)
    return out


@dataclass
class PairJudgement:
    """How the checked pixels of one frame pair split (see `judge_pair`)."""

    checked: int
    """Interior pixels judged (objects without recorded poses left out)."""
    known: np.ndarray
    """End-point errors of the pixels whose motion is known (static segments and objects with poses);
    inf where the prediction left the next camera's front."""
    rigid: int
    """Of those, pixels on objects with recorded poses."""
    excluded: int
    """Interior pixels of objects listed without a pose (deforming, instanced): not judged."""


def judge_pair(
    err: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    posed: set[int] | frozenset[int],
    unjudged: set[int] | frozenset[int],
    static_tolerance: float,
) -> PairJudgement:
    """Split the `mask` pixels of a pair by what is known of their motion.

    `err` is |flow - predicted flow| per pixel (inf where the prediction left the next camera's front).
    Pixels of `unjudged` ids are left out; pixels of `posed` ids (objects with recorded poses, whose
    prediction includes their own motion) are all known; every other segment counts as static, and
    known, when its median error is under `static_tolerance` px, else as a moving object.
    """
    excl = mask & np.isin(labels, list(unjudged))
    checked = mask & ~excl
    rigid = checked & np.isin(labels, list(posed))
    known = rigid.copy()
    rest = checked & ~rigid
    for lab in np.unique(labels[rest]):
        seg = rest & (labels == lab)
        if np.median(err[seg]) < static_tolerance:
            known |= seg
    return PairJudgement(
        checked=int(checked.sum()), known=err[known], rigid=int(rigid.sum()), excluded=int(excl.sum())
    )


def check_consistency(
    seq: SequenceDataset,
    objects: ObjectPoses | None = None,
    max_epe: float = 0.5,
    static_tolerance: float = 1.0,
    min_static_fraction: float = 0.25,
    max_cycle_outliers: float = 0.5,
) -> Consistency:
    """Compare forward flow with depth moved by the poses (of the camera and, from `objects`, of rigid
    objects); check flow cycles.

    Judged per frame pair, so one bad flow file is caught, on interior surface pixels (`interior_mask`;
    the world background has no depth to move). A pixel's motion is predicted from the camera poses and,
    when its id has recorded matrices at both frames, the object's own motion; ids that `objects` lists
    without matrices (deforming, instanced) are not judged. Ids it does not list (or every id, without
    objects.json) are judged by segment: static when the median error is under `static_tolerance` px,
    else a moving object that does not count against the sequence. A pair fails when the known pixels
    (static segments and posed objects) miss by more than `max_epe` px on average, or make up less than
    `min_static_fraction` of the judged pixels (flow that disagrees everywhere, a camera cut), or when
    its forward-backward cycles miss by >1 px on more than `max_cycle_outliers` of the pixels.
    """
    has_seg = "segmentation" in seq.modalities()
    errs_known: list[np.ndarray] = []
    n_interior = n_checked = n_known = n_rigid = n_excluded = 0
    cycles: list[np.ndarray] = []
    bad: list[tuple[int, str]] = []
    nxt = seq.read("flow", 0)
    for i in range(len(seq) - 1):
        flow, nxt = nxt, seq.read("flow", i + 1)
        depth = seq.read("depth", i)
        seg = seq.read("segmentation", i) if has_seg else None
        labels = seg if seg is not None else np.zeros(depth.shape, np.uint32)
        motions = objects.motions(i, i + 1) if objects is not None and seg is not None else {}
        unjudged = (objects.ids - set(motions)) if objects is not None and seg is not None else set()
        mask = interior_mask(depth, seg)
        pred, front = reprojection_flow(
            depth,
            transforms.pose(seq.meta, i),
            transforms.intrinsics(seq.meta, i),
            transforms.pose(seq.meta, i + 1),
            transforms.intrinsics(seq.meta, i + 1),
            labels,
            motions,
        )
        err = np.where(front, np.linalg.norm(flow[..., :2] - pred, axis=-1), np.inf)
        pair = judge_pair(err, mask, labels, frozenset(motions), unjudged, static_tolerance)
        known = pair.known[np.isfinite(pair.known)]  # surfaces that left the camera's front disagree
        h, w = depth.shape
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        back, inside = bilinear(nxt[..., 2:4], u + flow[..., 0], v + flow[..., 1])
        cyc = np.linalg.norm(flow[..., :2] + back, axis=-1)[mask & inside]
        reasons = []
        if pair.checked and known.size < min_static_fraction * pair.checked:
            reasons.append(
                f"flow disagrees with depth and poses on {1 - known.size / pair.checked:.0%} of pixels"
            )
        elif known.size and known.mean() > max_epe:
            what = "static and posed surfaces" if pair.rigid else "static surfaces"
            reasons.append(f"end-point error {known.mean():.3f} px on {what} (limit {max_epe})")
        if cyc.size and (cyc > 1.0).mean() > max_cycle_outliers:
            reasons.append(f"forward-backward cycle misses by >1 px on {(cyc > 1.0).mean():.0%} of pixels")
        if reasons:
            bad.append((i, "; ".join(reasons)))
        errs_known.append(known)
        n_interior += int(mask.sum())
        n_checked += pair.checked
        n_known += known.size
        n_rigid += pair.rigid
        n_excluded += pair.excluded
        cycles.append(cyc)
    known_all = np.concatenate(errs_known) if errs_known else np.zeros(0)
    cyc_all = np.concatenate(cycles) if cycles else np.zeros(0)
    res = Consistency(
        pairs=len(seq) - 1,
        epe=float(known_all.mean()) if known_all.size else float("nan"),
        epe_median=float(np.median(known_all)) if known_all.size else float("nan"),
        static_fraction=n_known / n_checked if n_checked else 0.0,
        cycle_median=float(np.median(cyc_all)) if cyc_all.size else float("nan"),
        cycle_outliers=float((cyc_all > 1.0).mean()) if cyc_all.size else 0.0,
        ok=not bad,
        bad_pairs=bad,
        checked=n_checked,
        rigid_fraction=n_rigid / n_checked if n_checked else 0.0,
        excluded=n_excluded,
    )
    if n_interior == 0:
        res.reason = "no interior surface pixels"
    elif n_checked == 0:
        res.reason = "only objects without recorded poses (deforming or instanced) in view"
    elif bad:
        res.reason = f"{len(bad)} of {res.pairs} frame pairs inconsistent"
    return res


# ------------------------------------------------------------------------------------------ repair


def purge_sequence(rep: SequenceReport) -> list[Path]:
    """Delete corrupted files and files no transforms.json lists and, if the sequence lost or lacks any
    listed file, its transforms.json.

    Left without transforms.json, the sequence counts as incomplete and `--allow-skips` resumes it,
    keeping the frames whose files all still exist and decode.
    """
    doomed = {
        p.path for p in rep.problems if p.kind in ("corrupted", "schema", "unlisted") and p.path.is_file()
    }
    if any(p.kind in ("missing", "corrupted", "schema") for p in rep.problems):
        tj = rep.path / "transforms.json"
        if tj.is_file():
            doomed.add(tj)
    doomed.update(p for p in rep.path.rglob(f"*{TMP_MARK}*") if p.is_file())
    removed = []
    for p in sorted(doomed):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
            log.info("purged %s", p)
    rep.purged = removed
    return removed


def validate_dataset(
    path: str | os.PathLike[str],
    consistency: bool = False,
    purge: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate every sequence under `path` (a sequence folder or a folder of them)."""
    root = Path(path)
    if root.is_file() and root.name == "transforms.json":
        root = root.parent
    if not root.is_dir():
        raise DatasetError(f"no dataset at {root}")
    reports = []
    for d in find_sequence_dirs(root):
        name = sequence_name(root, d)
        rep = check_sequence(d, name, consistency=consistency, progress=progress)
        if purge:
            purge_sequence(rep)
        reports.append(rep)
    if not reports:
        raise DatasetError(f"no sequences under {root} (no transforms.json and no frames/ folder)")
    return ValidationReport(root=root, sequences=reports)


def total_frames(path: str | os.PathLike[str]) -> int:
    """Frames that validation will visit (for a progress bar): frames in transforms.json or on disk."""
    total = 0
    for d in find_sequence_dirs(Path(path)):
        try:
            total += len(transforms.read(d)["frames"])
        except DatasetError:
            folder = d / "frames"
            total += sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
    return total
