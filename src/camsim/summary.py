"""What a dataset holds, at a glance (`camsim info`): sequences, frames, resolution, ground truth, size, fps.

Reads transforms.json files only; never decodes a frame.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from camsim.errors import DatasetError
from camsim.loader import SequenceDataset, find_sequence_dirs, sequence_name
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
