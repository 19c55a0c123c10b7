"""What a dataset holds, at a glance (`camsim info`): sequences, frames, resolution, ground truth, size, fps;
of a create-datasets folder (with dataset.json), each stage per split: sequences complete of planned, frames,
size on disk, failures.

Reads transforms.json and params.json files only; never decodes a frame. Returns data; the command prints.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from camsim.errors import DatasetError
from camsim.loader import SequenceDataset, find_sequence_dirs, sequence_name
from camsim.manifest import STAGES, Manifest, output_keys, read_manifest, stage_folder
from camsim.passes import FRAME


@dataclass(frozen=True)
class SequenceInfo:
    name: str
    format: str
    """IMG, NPY, NPY (bit-packed), or "incomplete" (no transforms.json yet)."""
    frames: int
    resolution: str
    fps: float | None
    ground_truth: tuple[str, ...]
    size_bytes: int


@dataclass(frozen=True)
class DatasetInfo:
    sequences: tuple[SequenceInfo, ...]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.sequences)

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.sequences)

    @property
    def incomplete(self) -> int:
        return sum(s.format == "incomplete" for s in self.sequences)


def _folder_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def describe(path: str | os.PathLike[str]) -> DatasetInfo:
    """Summarise every sequence under `path` from its transforms.json (no frame is decoded)."""
    root = Path(path)
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        raise DatasetError(f"no dataset at {root}")
    out = []
    for d in find_sequence_dirs(root):
        name = sequence_name(root, d)
        size = _folder_size(d)
        try:
            seq = SequenceDataset(d, name=name, check=False)
        except DatasetError:
            if (d / "transforms.json").exists():
                raise  # malformed, not merely unfinished: say so rather than count it as incomplete
            frames = d / FRAME.folder
            count = sum(1 for _ in frames.iterdir()) if frames.is_dir() else 0
            out.append(SequenceInfo(name, "incomplete", count, "?", None, (), size))
            continue
        fmt = (
            "IMG" if "frame" in seq.modalities() else "events" if "events_file_path" in seq.meta else "poses"
        )
        if seq.is_npy:
            fmt = "NPY (bit-packed)" if seq.meta.get("bitpack") else "NPY"
        gts = tuple(seq.ground_truth()) + (("events",) if "events_file_path" in seq.meta else ())
        res = f"{seq.width}x{seq.height}" if seq.width and seq.height else "?"
        out.append(SequenceInfo(name, fmt, len(seq), res, seq.fps, gts, size))
    return DatasetInfo(tuple(out))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# ------------------------------------------------------------------------------- create-datasets folders


@dataclass(frozen=True)
class StageSplitInfo:
    """One stage of one split (`split` None: every sequence of the stage)."""

    stage: str
    split: str | None
    planned: int
    """Sequences dataset.json lists (for this split)."""
    complete: int
    failed: int
    frames: int
    """Frames of the complete sequences (IMU: samples)."""
    size_bytes: int
    """On disk: the split's sequence folders; for the whole stage (`split` None) the stage folder."""


@dataclass(frozen=True)
class StageFailure:
    stage: str
    sequence: str
    error: str


@dataclass(frozen=True)
class DatasetsInfo:
    """A create-datasets folder by stage and split, from its dataset.json and the files it names."""

    root: Path
    manifest: Manifest
    rows: tuple[StageSplitInfo, ...]
    """Per stage (dataset.json's, in pipeline order): one row per split, then the stage's total."""
    failures: tuple[StageFailure, ...]

    @property
    def size_bytes(self) -> int:
        return sum(r.size_bytes for r in self.rows if r.split is None)


def _units(stage: str, folder: Path) -> int:
    """Frames of a complete output (IMU: samples, as params.json records them); 0 when unreadable."""
    name = "params.json" if stage == "imu" else "transforms.json"
    if stage == "render" and not (folder / name).is_file():
        from camsim.rig import frame_count  # a rig's render (--render-config.cameras): its cameras' frames

        return frame_count(folder)
    try:
        data = json.loads((folder / name).read_bytes())
        n = data["derived"]["samples"] if stage == "imu" else len(data["frames"])
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return 0
    return n if isinstance(n, int) else 0


def describe_datasets(path: str | os.PathLike[str]) -> DatasetsInfo:
    """Summarise a create-datasets folder from DATASETS/dataset.json; DatasetError when it has none."""
    root = Path(path)
    manifest = read_manifest(root)
    if manifest is None:
        raise DatasetError(f"no dataset.json in {root}")
    splits: list[str | None] = [*manifest.split_names(), None] if manifest.splits else [None]
    rows, failures = [], []
    for stage in (s for s in STAGES if s in manifest.stages):
        per_seq = {}
        for key, seq in manifest.sequences.items():
            folder = stage_folder(root, stage, key)
            status = seq.status(stage)
            outputs = output_keys(key, seq.stages.get(stage))  # a rig's stage after the render: its cameras'
            per_seq[key] = (
                status,
                sum(_units(stage, stage_folder(root, stage, k)) for k in outputs)
                if status == "complete"
                else 0,
                _folder_size(folder) if folder.is_dir() else 0,
            )
            if status == "failed":
                failures.append(StageFailure(stage, key, seq.stages[stage].error or "(no error recorded)"))
        stage_dir = stage_folder(root, stage)
        for split in splits:
            keys = [k for k, s in manifest.sequences.items() if split is None or s.split == split]
            rows.append(
                StageSplitInfo(
                    stage,
                    split,
                    planned=len(keys),
                    complete=sum(per_seq[k][0] == "complete" for k in keys),
                    failed=sum(per_seq[k][0] == "failed" for k in keys),
                    frames=sum(per_seq[k][1] for k in keys),
                    size_bytes=sum(per_seq[k][2] for k in keys)
                    if split is not None
                    else (_folder_size(stage_dir) if stage_dir.is_dir() else 0),
                )
            )
    return DatasetsInfo(root, manifest, tuple(rows), tuple(failures))
