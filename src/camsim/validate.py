"""Check a dataset on disk: schema, files, shapes, NaNs, counts; optionally geometric consistency; repair.

`validate_dataset` returns a report and never prints. `purge=True` deletes corrupted files and the
transforms.json of every sequence that lost (or lacks) files, so `create-datasets --allow-skips`
resumes exactly those sequences and re-renders exactly the frames whose files are gone.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from camsim import transforms
from camsim.dataset import (
    BY_NAME,
    FRAME,
    MODALITIES,
    Modality,
    SequenceDataset,
    find_sequence_dirs,
    read_frame_file,
    sequence_name,
)
from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK

log = logging.getLogger(__name__)

Status = Literal["ok", "incomplete", "corrupted"]
ProblemKind = Literal["missing", "corrupted", "schema", "inconsistent"]


@dataclass
class Problem:
    """One thing wrong, tied to the file to blame (transforms.json for sequence-level problems)."""

    path: Path
    kind: ProblemKind
    message: str


@dataclass
class Consistency:
    """Ground truth checked against itself: depth + poses + intrinsics vs forward flow, and flow cycles."""

    pairs: int
    """Consecutive frame pairs compared."""
    epe: float
    """Mean end-point error (px) between forward flow and reprojected depth, on static pixels."""
    epe_median: float
    static_fraction: float
    """Share of checked pixels on surfaces judged static (segments whose median error is small)."""
    cycle_median: float
    """Median |forward + backward(next)| (px): 0 for a consistent flow pair."""
    cycle_outliers: float
    """Share of pixels whose forward-backward cycle misses by more than 1 px (occlusions add some)."""
    ok: bool
    bad_pairs: list[tuple[int, str]] = field(default_factory=list)
    """(index of the first frame, why) for every inconsistent frame pair."""
    reason: str = ""


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
        if any(p.kind in ("corrupted", "schema", "inconsistent") for p in self.problems):
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


def check_array(modality: Modality, arr: np.ndarray, hw: tuple[int, int] | None) -> str | None:
    """Why `arr` is not a valid frame of `modality` (shape, dtype, NaNs), or None when it is."""
    name = modality.name
    if hw is not None and tuple(arr.shape[:2]) != hw:
        return f"{name} is {arr.shape[1] if arr.ndim > 1 else '?'}x{arr.shape[0]}, expected {hw[1]}x{hw[0]}"
    nch = len(modality.channels)
    if modality is FRAME:
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
            return f"frame has shape {arr.shape}, expected HxWx(1-4)"
        if arr.dtype.kind == "f":
            return "frame has NaNs" if np.isnan(arr).any() else None
        if arr.dtype not in (np.uint8, np.uint16, np.bool_):
            return f"frame has dtype {arr.dtype}, expected uint8 or uint16"
        return None
    expected = arr.shape[:2] if nch == 1 else (*arr.shape[:2], nch)
    if arr.ndim != len(expected) or tuple(arr.shape) != tuple(expected):
        return f"{name} has shape {arr.shape}, expected {nch} channel(s)"
    if name == "segmentation":
        if arr.dtype.kind != "u":
            return f"segmentation has dtype {arr.dtype}, expected uint32"
        return None
    if arr.dtype.kind != "f":
        return f"{name} has dtype {arr.dtype}, expected float"
    if np.isnan(arr).any():
        return f"{name} has {int(np.isnan(arr).sum())} NaN values"
    if name == "depth" and (arr < 0).any():
        return "depth has negative values"
    if name in ("flow", "normal") and not np.isfinite(arr).all():
        return f"{name} has infinite values"
    return None


# ------------------------------------------------------------------------------------ finding sequences


# ------------------------------------------------------------------------------------------ checking


_NUMBER = re.compile(r"_(\d+)\.[A-Za-z0-9]+$")


def _check_img_files(
    rep: SequenceReport, seq: SequenceDataset, progress: Callable[[int], None] | None
) -> None:
    meta = seq.meta
    hw = (meta["h"], meta["w"]) if "h" in meta and "w" in meta else None
    names = [m.name for m in MODALITIES if any(m.key in fr for fr in meta["frames"])]
    for i, fr in enumerate(meta["frames"]):
        for name in names:
            m = BY_NAME[name]
            if m.key not in fr:
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
                arr = read_frame_file(path, m)
            except DatasetError as exc:
                rep.problems.append(Problem(path, "corrupted", f"cannot decode: {exc}"))
                continue
            if hw is None:
                hw = tuple(arr.shape[:2])  # type: ignore[assignment]
            why = check_array(m, arr, hw)
            if why:
                rep.problems.append(Problem(path, "corrupted", why))
            elif name == "segmentation":
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
    for m in MODALITIES:
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
    for m in MODALITIES:
        folder = root / m.folder
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file() and TMP_MARK not in p.name)
        if m is FRAME:
            count = len(files)
        for path in files:
            try:
                arr = read_frame_file(path, m)
            except DatasetError as exc:
                rep.problems.append(Problem(path, "corrupted", f"cannot decode: {exc}"))
                continue
            why = check_array(m, arr, None)
            if why:
                rep.problems.append(Problem(path, "corrupted", why))
            if progress and m is FRAME:
                progress(1)
    rep.frames = count


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
    (_check_npy_files if seq.is_npy else _check_img_files)(rep, seq, progress)
    if "events_file_path" in meta:
        rep.format = "events" if "frame" not in seq.modalities() else rep.format
        _check_events(rep, transforms.resolve_path(root, meta["events_file_path"]), meta)
    if consistency and not rep.problems:
        names = seq.modalities()
        if (
            "depth" in names
            and "flow" in names
            and len(seq) > 1
            and all(k in meta or k in meta["frames"][0] for k in ("fl_x", "fl_y", "cx", "cy"))
        ):
            c = rep.consistency = check_consistency(seq)
            for i, why in c.bad_pairs:
                rep.problems.append(
                    Problem(seq.file_for("flow", i), "inconsistent", f"frames {i}->{i + 1}: {why}")
                )
            if not c.ok and not c.bad_pairs:
                rep.problems.append(Problem(tj, "inconsistent", c.reason))
        else:
            rep.warnings.append("consistency check skipped: needs depth, flow, intrinsics and two frames")
    return rep


# ------------------------------------------------------------------------------------- consistency


def reprojection_flow(
    depth: np.ndarray, c2w_a: np.ndarray, k_a: np.ndarray, c2w_b: np.ndarray, k_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flow (HxWx2, px) that static surfaces seen with `depth` in camera a have into camera b, and
    a mask of pixels in front of camera b."""
    h, w = depth.shape
    d = np.where(np.isfinite(depth), depth, 1.0)
    pts = transforms.unproject(d, c2w_a, k_a).reshape(-1, 3)
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


def interior_mask(depth: np.ndarray, seg: np.ndarray | None, rel_jump: float = 0.02) -> np.ndarray:
    """Pixels with finite depth whose 4 neighbours lie on the same surface (no edge blending)."""
    ok = np.isfinite(depth) & (depth > 0)
    d = np.where(ok, depth, np.inf)
    out = ok.copy()
    for axis in (0, 1):
        for shift in (1, -1):
            nd = np.roll(d, shift, axis=axis)
            with np.errstate(invalid="ignore"):
                same = np.isfinite(nd) & (np.abs(nd - d) <= rel_jump * np.minimum(d, nd))
            if seg is not None:
                same &= np.roll(seg, shift, axis=axis) == seg
            out &= same
    out[[0, -1], :] = False
    out[:, [0, -1]] = False
    return out


def check_consistency(
    seq: SequenceDataset,
    max_epe: float = 0.5,
    static_tolerance: float = 1.0,
    min_static_fraction: float = 0.25,
    max_cycle_outliers: float = 0.5,
) -> Consistency:
    """Compare forward flow with depth reprojected by the poses on static surfaces; check flow cycles.

    Judged per frame pair, so one bad flow file is caught. A segment (object id) counts as static in
    a pair when its median error is under `static_tolerance` px, so moving objects do not count
    against the sequence; flow that disagrees everywhere leaves few static pixels and fails on
    `min_static_fraction`.
    """
    has_seg = "segmentation" in seq.modalities()
    errs_static: list[np.ndarray] = []
    n_checked = n_static = 0
    cycles: list[np.ndarray] = []
    bad: list[tuple[int, str]] = []
    nxt = seq.read("flow", 0)
    for i in range(len(seq) - 1):
        flow, nxt = nxt, seq.read("flow", i + 1)
        depth = seq.read("depth", i)
        seg = seq.read("segmentation", i) if has_seg else None
        mask = interior_mask(depth, seg)
        pred, front = reprojection_flow(
            depth,
            transforms.pose(seq.meta, i),
            transforms.intrinsics(seq.meta, i),
            transforms.pose(seq.meta, i + 1),
            transforms.intrinsics(seq.meta, i + 1),
        )
        mask &= front
        err = np.linalg.norm(flow[..., :2] - pred, axis=-1)
        labels = seg if seg is not None else np.zeros(depth.shape, np.uint32)
        pair_static: list[np.ndarray] = []
        pair_checked = 0
        for lab in np.unique(labels[mask]):
            e = err[mask & (labels == lab)]
            pair_checked += e.size
            if np.median(e) < static_tolerance:
                pair_static.append(e)
        static = np.concatenate(pair_static) if pair_static else np.zeros(0)
        h, w = depth.shape
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        back, inside = bilinear(nxt[..., 2:4], u + flow[..., 0], v + flow[..., 1])
        cyc = np.linalg.norm(flow[..., :2] + back, axis=-1)[mask & inside]
        reasons = []
        if pair_checked and static.size < min_static_fraction * pair_checked:
            reasons.append(
                f"flow disagrees with depth and poses on {1 - static.size / pair_checked:.0%} of pixels"
            )
        elif static.size and static.mean() > max_epe:
            reasons.append(f"end-point error {static.mean():.3f} px on static surfaces (limit {max_epe})")
        if cyc.size and (cyc > 1.0).mean() > max_cycle_outliers:
            reasons.append(f"forward-backward cycle misses by >1 px on {(cyc > 1.0).mean():.0%} of pixels")
        if reasons:
            bad.append((i, "; ".join(reasons)))
        errs_static.extend(pair_static)
        n_checked += pair_checked
        n_static += static.size
        cycles.append(cyc)
    static_all = np.concatenate(errs_static) if errs_static else np.zeros(0)
    cyc_all = np.concatenate(cycles) if cycles else np.zeros(0)
    res = Consistency(
        pairs=len(seq) - 1,
        epe=float(static_all.mean()) if static_all.size else float("nan"),
        epe_median=float(np.median(static_all)) if static_all.size else float("nan"),
        static_fraction=n_static / n_checked if n_checked else 0.0,
        cycle_median=float(np.median(cyc_all)) if cyc_all.size else float("nan"),
        cycle_outliers=float((cyc_all > 1.0).mean()) if cyc_all.size else 0.0,
        ok=not bad and n_checked > 0,
        bad_pairs=bad,
    )
    if n_checked == 0:
        res.reason = "no pixels with finite depth to check"
    elif bad:
        res.reason = f"{len(bad)} of {res.pairs} frame pairs inconsistent"
    return res


# ------------------------------------------------------------------------------------------ repair


def purge_sequence(rep: SequenceReport) -> list[Path]:
    """Delete corrupted files and, if the sequence lost or lacks any, its transforms.json.

    Left without transforms.json, the sequence counts as incomplete and `--allow-skips` resumes it,
    keeping the frames whose files all still exist and decode.
    """
    doomed = {p.path for p in rep.problems if p.kind in ("corrupted", "schema") and p.path.is_file()}
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
