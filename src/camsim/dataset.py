"""Read camsim sequences (IMG or NPY, optionally bit-packed) as indexable, picklable datasets.

`Dataset.from_path` opens one sequence folder (or its `transforms.json`) or a folder holding many
sequences (concatenated). Items are plain dicts of numpy arrays, so `torch.utils.data.DataLoader`
works on them without this module importing torch. NPY arrays are memory-mapped lazily in each
process (the open maps are dropped when pickled), so reading one frame never decodes a whole file.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim import transforms
from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK, read_exr, read_exr_parts, read_image


@dataclass(frozen=True)
class Modality:
    """One kind of per-frame array: where transforms.json names it and how it is stored."""

    name: str
    """Key of the array in an item dict."""
    key: str
    """Key in transforms.json (per frame for IMG, top level for NPY)."""
    channels: tuple[str, ...]
    """EXR channel names, in the order of the last axis."""
    folder: str
    """Sub-folder of a rendered sequence holding the IMG files."""


GROUND_TRUTH: tuple[Modality, ...] = (
    Modality("depth", "depth_file_path", ("Y",), "depths"),
    Modality("normal", "normal_file_path", ("R", "G", "B"), "normals"),
    Modality("flow", "flow_file_path", ("R", "G", "B", "A"), "flows"),
    Modality("segmentation", "segmentation_file_path", ("Y",), "segmentations"),
    Modality("linear", "linear_file_path", ("R", "G", "B"), "linear"),
)
FRAME = Modality("frame", "file_path", ("R", "G", "B"), "frames")
MODALITIES: tuple[Modality, ...] = (FRAME, *GROUND_TRUTH)
BY_NAME: dict[str, Modality] = {m.name: m for m in MODALITIES}


def read_frame_file(path: str | os.PathLike[str], modality: Modality = FRAME) -> np.ndarray:
    """Decode one per-frame file by its suffix: PNG/JPEG, EXR (named channels) or .npy.

    Frames come back HxWxC (a channel axis is added to grey images); single-channel ground truth
    (depth, segmentation) comes back HxW, as in the EXR files.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".exr":
        arr = read_exr(path, modality.channels if modality is not FRAME else frame_exr_channels(path))
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from exc
    else:
        arr = read_image(path)
    return _normalise_shape(arr, modality)


def frame_exr_channels(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Channel order of an EXR frame: R, G, B(, A) when present, else Y, else whatever it has."""
    names = set(read_exr_parts(path))
    rgba = tuple(c for c in ("R", "G", "B", "A") if c in names)
    if rgba:
        return rgba
    return ("Y",) if "Y" in names else tuple(sorted(names))


def _normalise_shape(arr: np.ndarray, modality: Modality) -> np.ndarray:
    if modality is FRAME:
        return arr[..., None] if arr.ndim == 2 else arr
    if len(modality.channels) == 1 and arr.ndim == 3 and arr.shape[-1] == 1:
        return arr[..., 0]
    return arr


def unpack_bits(packed: np.ndarray, axis: int, count: int, index: int) -> np.ndarray:
    """Unpack frame `index` of an (N, H, W, C) array bit-packed (np.packbits, big bit order) on `axis`.

    Only the packed bytes of that frame are touched: one row of the memory map.
    """
    if axis == 0:
        byte = np.asarray(packed[index // 8])
        return ((byte >> (7 - index % 8)) & 1).astype(np.uint8)
    return np.unpackbits(np.asarray(packed[index]), axis=axis - 1, count=count)


SEQUENCE_FOLDERS = frozenset(m.folder for m in MODALITIES)
"""Sub-folders that mark a folder as a (possibly incomplete) sequence."""


def find_sequence_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """Sequence folders under root: those with a transforms.json and those that look like a started one
    (frames/, depths/, ... or .npy files but no transforms.json yet)."""
    out: list[Path] = []

    def visit(d: Path) -> None:
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        names = {e.name for e in entries}
        subdirs = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
        if "transforms.json" in names or subdirs & SEQUENCE_FOLDERS or any(n.endswith(".npy") for n in names):
            out.append(d)
            return
        for e in sorted(entries, key=lambda e: e.name):
            if e.is_dir(follow_symlinks=False) and e.name != "debug":
                visit(Path(e.path))

    visit(Path(root))
    return sorted(out)


def sequence_name(root: Path, folder: Path) -> str:
    """How a sequence is named in tables, videos and items: its path below the dataset root."""
    return str(folder.relative_to(root)) if folder != root else folder.name


def find_sequences(root: str | os.PathLike[str]) -> list[Path]:
    """Folders under `root` (or `root` itself) that hold a transforms.json, sorted."""
    root = Path(root)
    if (root / "transforms.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("transforms.json") if TMP_MARK not in p.name)


class Dataset:
    """Base of the sequence readers: `len()`, integer and slice indexing, iteration."""

    @staticmethod
    def from_path(path: str | os.PathLike[str]) -> SequenceDataset | MultiSequenceDataset:
        """Open a sequence folder, its transforms.json, or a folder of sequences (concatenated)."""
        p = Path(path)
        if p.is_file() and p.name.endswith(".json"):
            return SequenceDataset(p.parent, transforms_name=p.name)
        if not p.is_dir():
            raise DatasetError(f"no dataset at {p}")
        if (p / "transforms.json").is_file():
            return SequenceDataset(p)
        seqs = find_sequences(p)
        if not seqs:
            raise DatasetError(f"no transforms.json under {p}")
        return MultiSequenceDataset([SequenceDataset(s, name=sequence_name(p, s)) for s in seqs])

    def __len__(self) -> int:
        raise NotImplementedError

    def item(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        """An item dict for an integer index; a list of them for a slice."""
        if isinstance(index, slice):
            return [self.item(i) for i in range(*index.indices(len(self)))]
        i = int(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for {n} frames")
        return self.item(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self.item(i)


class SequenceDataset(Dataset):
    """One sequence. Item keys: frame (HxWxC), pose (4x4 camera-to-world, OpenGL axes), K (3x3),
    time (s), index, frame_number, sequence, and each ground truth present (depth HxW, normal HxWx3,
    flow HxWx4, segmentation HxW uint32, linear HxWx3)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        name: str | None = None,
        transforms_name: str = "transforms.json",
        meta: dict[str, Any] | None = None,
        check: bool = True,
    ) -> None:
        """`meta`: an already validated transforms.json; `check`: open NPY arrays now to check lengths."""
        self.root = Path(root)
        self.name = name if name is not None else self.root.name
        self.meta = meta if meta is not None else transforms.read(self.root / transforms_name)
        self.is_npy = "file_path" in self.meta
        self._arrays: dict[str, np.ndarray] = {}
        self._modalities: list[str] | None = None
        if check:
            self._check_npy_lengths()

    # Pickling drops the open memory maps: each worker process maps the files itself.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = {}
        return state

    def __len__(self) -> int:
        return len(self.meta["frames"])

    @property
    def width(self) -> int | None:
        return self.meta.get("w")

    @property
    def height(self) -> int | None:
        return self.meta.get("h")

    @property
    def fps(self) -> float | None:
        return self.meta.get("fps")

    def modalities(self) -> list[str]:
        """Names of the arrays every item carries (frame first)."""
        if self._modalities is None:
            frames = self.meta["frames"]
            self._modalities = [
                m.name
                for m in MODALITIES
                if m.key in self.meta or (frames and all(m.key in fr for fr in frames))
            ]
        return list(self._modalities)

    def ground_truth(self) -> list[str]:
        return [m for m in self.modalities() if m != "frame"]

    def file_for(self, modality: str, index: int) -> Path:
        """The file holding `modality` of frame `index` (the shared .npy for NPY modalities)."""
        m = BY_NAME[modality]
        rel = self.meta.get(m.key) or self.meta["frames"][index].get(m.key)
        if rel is None:
            raise DatasetError(f"{self.root}: frame {index} has no {modality}")
        return transforms.resolve_path(self.root, rel)

    def array(self, modality: str) -> np.ndarray:
        """The memory-mapped (N, H, W, C) array of an NPY modality, opened once per process."""
        arr = self._arrays.get(modality)
        if arr is None:
            m = BY_NAME[modality]
            path = transforms.resolve_path(self.root, self.meta[m.key])
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise DatasetError(f"missing {path}") from None
            except (OSError, ValueError) as exc:
                raise DatasetError(f"cannot read {path}: {exc}") from exc
            self._arrays[modality] = arr
        return arr

    @property
    def bitpack_dim(self) -> int | None:
        if not self.meta.get("bitpack"):
            return None
        dim = self.meta.get("bitpack_dim", 2)
        if not isinstance(dim, int) or isinstance(dim, bool):  # a hostile or broken transforms.json
            raise DatasetError(f"{self.root}: 'bitpack_dim' must be an integer axis, got {dim!r}")
        return dim % 4

    def _bitpack_count(self, dim: int) -> int:
        if dim == 0:
            return len(self)
        key = {1: "h", 2: "w"}.get(dim, "channels")
        if key not in self.meta:
            raise DatasetError(f"{self.root}: bit-packed on axis {dim} but transforms.json has no '{key}'")
        count = self.meta[key]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise DatasetError(f"{self.root}: '{key}' must be a positive integer, got {count!r}")
        return count

    def _check_npy_lengths(self) -> None:
        if not self.is_npy:
            return
        for m in MODALITIES:
            if m.key not in self.meta:
                continue
            arr = self.array(m.name)
            packed = m is FRAME and self.bitpack_dim is not None
            expect = len(m.channels)
            shape_ok = arr.ndim == 4 and (m is FRAME or arr.shape[3] == expect)
            shape_ok = shape_ok or (arr.ndim == 3 and expect == 1 and m is not FRAME)
            if not (packed or shape_ok):
                want = "(N, H, W, C)" if m is FRAME else f"(N, H, W, {expect})"
                raise DatasetError(
                    f"{self.root}: {self.meta[m.key]} has shape {arr.shape}; {m.name} needs {want}"
                )
            n = arr.shape[0]
            if m is FRAME and self.bitpack_dim == 0:
                n = min(n * 8, len(self))
            if n < len(self):
                raise DatasetError(
                    f"{self.root}: {self.meta[m.key]} holds {n} frames, transforms.json {len(self)}"
                )

    def read(self, modality: str, index: int) -> np.ndarray:
        """One frame of one modality, decoded."""
        m = BY_NAME[modality]
        if m.key in self.meta:
            arr = self.array(modality)
            dim = self.bitpack_dim if m is FRAME else None
            if dim is not None:
                if arr.dtype != np.uint8 or arr.ndim != 4:
                    raise DatasetError(f"{self.root}: bit-packed frames must be a 4-D uint8 array, "
                                       f"got {arr.dtype} {arr.shape}")  # fmt: skip
                return unpack_bits(arr, dim, self._bitpack_count(dim), index)
            return _normalise_shape(np.array(arr[index]), m)
        return read_frame_file(self.file_for(modality, index), m)

    def item(self, index: int) -> dict[str, Any]:
        fr = self.meta["frames"][index]
        out: dict[str, Any] = {
            "index": index,
            "frame_number": int(fr.get("frame_number", index)),
            "time": float(fr["time"]) if "time" in fr else index / float(self.meta.get("fps") or 1.0),
            "pose": transforms.pose(self.meta, index),
            "sequence": self.name,
        }
        if all(k in fr or k in self.meta for k in ("fl_x", "fl_y", "cx", "cy")):
            out["K"] = transforms.intrinsics(self.meta, index)
        for name in self.modalities():
            out[name] = self.read(name, index)
        return out


class MultiSequenceDataset(Dataset):
    """Several sequences end to end; item `i` is frame `i - offset` of the sequence it falls in."""

    def __init__(self, sequences: list[SequenceDataset]) -> None:
        if not sequences:
            raise DatasetError("no sequences to concatenate")
        self.sequences = sequences
        self.offsets = np.cumsum([0, *(len(s) for s in sequences)]).tolist()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[SequenceDataset, int]:
        """The sequence holding global `index` and the index inside it."""
        k = bisect.bisect_right(self.offsets, index) - 1
        return self.sequences[k], index - self.offsets[k]

    def item(self, index: int) -> dict[str, Any]:
        seq, local = self.locate(index)
        return seq.item(local)


# ---------------------------------------------------------------------------------------------- info


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
