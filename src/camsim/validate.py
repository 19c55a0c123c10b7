"""Check a dataset on disk: schema, files, shapes, NaNs, counts; optionally geometric consistency; repair.

`validate_dataset` returns a report and never prints. `purge=True` deletes corrupted files and the
transforms.json of every sequence that lost (or lacks) files, so `create-datasets --allow-skips`
resumes exactly those sequences and re-renders exactly the frames whose files are gone.

One module, over 400 lines: every file-level check of a sequence (schema, files, arrays, events, objects,
unlisted files, checksums) and the repair that follows from them share one report type; the geometry lives
in consistency.py.
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
from camsim.consistency import Consistency, ObjectPoses, check_consistency, parse_objects
from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK, checksum
from camsim.loader import SequenceDataset, find_sequence_dirs, sequence_name
from camsim.manifest import MANIFEST
from camsim.passes import FRAME, PASSES, SEGMENTATION, SEMANTIC, Pass

log = logging.getLogger(__name__)

Status = Literal["ok", "incomplete", "corrupted"]
ProblemKind = Literal["missing", "corrupted", "schema", "inconsistent", "unlisted", "manifest"]
"""`manifest`: the files disagree with DATASETS/dataset.json (another settings hash)."""


@dataclass
class Problem:
    """One thing wrong, tied to the file to blame (transforms.json for sequence-level problems)."""

    path: Path
    kind: ProblemKind
    message: str


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
    marker: str = "transforms.json"
    """The file written last, whose presence means complete (an IMU output's: params.json)."""

    @property
    def status(self) -> Status:
        if any(
            p.kind in ("corrupted", "schema", "inconsistent", "unlisted", "manifest") for p in self.problems
        ):
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
            elif m is SEMANTIC:
                _check_ids(rep, seq.meta, arr, path, "categories")
        if progress:
            progress(1)


def _check_ids(
    rep: SequenceReport, meta: dict[str, Any], ids: np.ndarray, path: Path, table: str = "segmentation_ids"
) -> None:
    """Warn of ids that the table of transforms.json (segmentation_ids, or categories for semantic maps) lacks."""
    known = {int(k) for k in meta.get(table, {})}
    if not known:
        return
    unknown = set(np.unique(ids).tolist()) - known - {0}
    if unknown:
        rep.warnings.append(f"{path}: ids {sorted(unknown)[:5]} not in {table}")


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
            why = (
                _itof_taps_check(meta, arr, hw)
                if (m is FRAME and "itof" in meta)
                else check_array(m, arr, hw)
            )
            if why:
                rep.problems.append(Problem(seq.file_for(m.name, i), "corrupted", f"frame {i}: {why}"))
                readable.remove(m)
        if progress:
            progress(1)


def _itof_taps_check(meta: dict[str, Any], arr: np.ndarray, hw: tuple[int, int] | None) -> str | None:
    """An iToF frame: HxWxT uint16 taps, T = transforms.json `itof.tap_frequencies_mhz` (every tap of every
    frequency), not an image of 1 to 4 channels."""
    taps = len(meta["itof"].get("tap_frequencies_mhz") or [])
    if hw is not None and tuple(arr.shape[:2]) != hw:
        return (
            f"iToF taps are {arr.shape[1] if arr.ndim > 1 else '?'}x{arr.shape[0]}, expected {hw[1]}x{hw[0]}"
        )
    if arr.ndim != 3 or arr.shape[2] != taps:
        return f"iToF taps have shape {arr.shape}, expected HxWx{taps}"
    if arr.dtype != np.uint16:
        return f"iToF taps have dtype {arr.dtype}, expected uint16"
    return None


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


# ------------------------------------------------------------------------------------------ repair


def purge_sequence(rep: SequenceReport) -> list[Path]:
    """Delete corrupted files and files no transforms.json lists and, if the sequence lost or lacks any
    listed file, its transforms.json (an IMU output's params.json: the file written last).

    Left without transforms.json, the sequence counts as incomplete and `--allow-skips` resumes it,
    keeping the frames whose files all still exist and decode.
    """
    doomed = {
        p.path for p in rep.problems if p.kind in ("corrupted", "schema", "unlisted") and p.path.is_file()
    }
    if any(p.kind in ("missing", "corrupted", "schema") for p in rep.problems):
        tj = rep.path / rep.marker
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
    """Validate every sequence under `path` (a sequence folder or a folder of them); of a create-datasets
    folder (with dataset.json), every stage against its files and the manifest (`validate_datasets`)."""
    root = Path(path)
    if root.is_file() and root.name == "transforms.json":
        root = root.parent
    if not root.is_dir():
        raise DatasetError(f"no dataset at {root}")
    if (root / MANIFEST).is_file():
        from camsim.validate_datasets import validate_datasets

        return validate_datasets(root, consistency=consistency, purge=purge, progress=progress)
    from camsim.validate_rig import check_rig, rig_roots  # it builds on this module

    rigs = rig_roots(root)  # a rig's folder (--render-config.cameras): one report, its cameras and rig.json
    plain = [d for d in find_sequence_dirs(root) if d.parent not in rigs and d not in rigs]
    reports = []
    for d in sorted([*rigs, *plain]):
        name = sequence_name(root, d)
        if d in rigs:
            rep = check_rig(d, name, consistency, progress)
        else:
            rep = check_sequence(d, name, consistency=consistency, progress=progress)
        if purge:
            purge_sequence(rep)
        reports.append(rep)
    if not reports:
        raise DatasetError(f"no sequences under {root} (no transforms.json and no frames/ folder)")
    return ValidationReport(root=root, sequences=reports)


def total_frames(path: str | os.PathLike[str]) -> int:
    """Frames that validation will visit (for a progress bar): frames in transforms.json or on disk."""
    if (Path(path) / MANIFEST).is_file():
        from camsim.validate_datasets import total_units

        return total_units(path)
    total = 0
    for d in find_sequence_dirs(Path(path)):
        try:
            total += len(transforms.read(d)["frames"])
        except DatasetError:
            folder = d / "frames"
            total += sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
    return total
