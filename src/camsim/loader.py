"""Read camsim sequences (IMG or NPY, optionally bit-packed) as indexable, picklable datasets.

`Dataset.from_path` opens one sequence folder (or its `transforms.json`), a folder holding many
sequences (concatenated), a folder of images without `transforms.json` (PNG/JPEG/EXR, natural sort
order) or a single `.npy` file of shape (N, H, W[, C]). `modalities=("frame", "depth")` (or "rgb" for
"frame") decodes only those; the other files are never opened. Indexing follows VisionSim
(`camsim.indexing`): `ds[i]`, `ds[a:b]`, `ds[[0, 3, 5]]`, `ds[i, y0:y1, x0:x1]`.

Items are plain dicts of numpy arrays, so `torch.utils.data.DataLoader` works on them without this
module importing torch. NPY arrays are memory-mapped lazily in each process (the open maps are dropped
when pickled), so reading one frame never decodes a whole file. Bad input raises `DatasetError`s.

One module, over 400 lines: the dataset classes share the IMG / NPY / bit-packed / image-folder decoding
paths; index parsing is in indexing.py and summaries in summary.py.
"""

from __future__ import annotations

import bisect
import functools
import operator
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from camsim import passes, transforms
from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK
from camsim.indexing import Crop, DatasetIndexError, parse_index
from camsim.manifest import MANIFEST, check_stage, has_manifest, read_manifest, stage_folder
from camsim.passes import FRAME, PASSES, RENDERED, Pass

if TYPE_CHECKING:
    from camsim.imu_dataset import ImuDataset

__all__ = ["Dataset", "DatasetIndexError", "ImuDataset", "MultiSequenceDataset", "SequenceDataset"]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr")
"""Files `Dataset.from_path` reads from a folder of images (one frame each)."""


def modality(name: str) -> Pass:
    """The kind called `name` (or one of its aliases), or a DatasetError listing the known ones."""
    return passes.by_name(name)


def resolve_modalities(names: Iterable[str] | str) -> tuple[str, ...]:
    """Canonical names of the requested modalities, in the order asked, without repeats."""
    if isinstance(names, str):
        names = (names,)
    try:
        names = tuple(names)
    except TypeError:
        raise DatasetError(f"modalities must be a list of names, got {names!r}") from None
    out: list[str] = []
    for n in names:
        name = modality(n).name
        if name not in out:
            out.append(name)
    return tuple(out)


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders numbers by value: frame_2 before frame_10."""
    parts = re.split(r"(\d+)", name)
    return (tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), name)


def image_files(folder: str | os.PathLike[str]) -> list[str]:
    """Names of the image files directly in `folder` (IMAGE_SUFFIXES, not hidden, not temporaries), in
    natural sort order. EXR mixed with PNG/JPEG is refused: one item would be float, the next uint8."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc.strerror}") from None
    names = [
        e.name
        for e in entries
        if e.name.lower().endswith(IMAGE_SUFFIXES)
        and not e.name.startswith(".")
        and TMP_MARK not in e.name
        and e.is_file()
    ]
    exr = {n.lower().endswith(".exr") for n in names}
    if len(exr) > 1:
        raise DatasetError(f"{folder} mixes EXR and PNG/JPEG images; put them in separate folders")
    return sorted(names, key=natural_key)


def _modality_of(name: str | Pass) -> Pass:
    return name if isinstance(name, Pass) else modality(name)


def read_frame_file(path: str | os.PathLike[str], modality: Pass = FRAME) -> np.ndarray:
    """Decode one per-frame file of a kind (its `decode`: by suffix, PNG/JPEG, EXR with named channels or
    .npy). Frames come back HxWxC (a channel axis is added to grey images); single-channel kinds (depth,
    segmentation, hole masks) come back HxW, as in their files."""
    return modality.decode(path)


def unpack_bits(packed: np.ndarray, axis: int, count: int, index: int) -> np.ndarray:
    """Unpack frame `index` of an (N, H, W, C) array bit-packed (np.packbits, big bit order) on `axis`.

    Only the packed bytes of that frame are touched: one row of the memory map.
    """
    if axis == 0:
        byte = np.asarray(packed[index // 8])
        return ((byte >> (7 - index % 8)) & 1).astype(np.uint8)
    return np.unpackbits(np.asarray(packed[index]), axis=axis - 1, count=count)


SEQUENCE_FOLDERS = frozenset(p.folder for p in (FRAME, *RENDERED))
"""Sub-folders that mark a folder as a (possibly incomplete) sequence: those a render writes."""


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
    """Base of the sequence readers: `len()`, VisionSim-style indexing, iteration."""

    @staticmethod
    def from_path(
        path: str | os.PathLike[str],
        modalities: Iterable[str] | str | None = None,
        *,
        stage: str | None = None,
        split: str | None = None,
    ) -> SequenceDataset | MultiSequenceDataset | ImuDataset:
        """Open a sequence folder, its transforms.json, a folder of sequences (concatenated), a folder of
        images (PNG/JPEG/EXR frames in natural sort order), a `.npy` file of shape (N, H, W[, C]), an IMU
        output or a folder of them (an `ImuDataset` of samples), or a create-datasets folder (DATASETS with
        dataset.json).

        `modalities`: names of the arrays to decode (camsim.passes: "frame" or "rgb", "depth", "normal",
        "flow", "segmentation", "linear", "hole_mask", "raw"); None: every one the sequence has. A requested
        modality that a sequence lacks is a DatasetError.

        `stage` ("render", "interpolate", "spad", "rgb", "events", "imu"; default "render") and `split`
        ("train", "val", "test"; default every sequence) read DATASETS through its dataset.json: the
        sequences of that split whose stage is complete, in the manifest's order, named SCENE/SEQ (a rig's
        cameras: SCENE/SEQ/CAMERA each, in render order).
        """
        p = Path(path)
        if stage is not None or split is not None or (p.is_dir() and has_manifest(p)):
            return Dataset.from_stage(p, stage or "render", split, modalities)
        if p.is_file():
            if p.suffix.lower() == ".json":
                return SequenceDataset(p.parent, transforms_name=p.name, modalities=modalities)
            if p.suffix.lower() == ".npy":
                return SequenceDataset.from_npy(p, modalities=modalities)
            raise DatasetError(f"{p} is not a transforms.json, a .npy file or a folder")
        if not p.is_dir():
            raise DatasetError(f"no dataset at {p}")
        if (p / "transforms.json").is_file():
            return SequenceDataset(p, modalities=modalities)
        from camsim.imu_dataset import ImuDataset, is_imu_output

        if is_imu_output(p):
            if modalities is not None:
                raise DatasetError(f"{p}: an IMU output has no modalities to choose (items are samples)")
            return ImuDataset.from_folder(p)
        seqs = find_sequences(p)
        if seqs:
            return MultiSequenceDataset(
                [SequenceDataset(s, name=sequence_name(p, s), modalities=modalities) for s in seqs]
            )
        if image_files(p):
            return SequenceDataset.from_images(p, modalities=modalities)
        imu = sorted(f.parent for f in p.rglob("params.json") if is_imu_output(f.parent))
        if imu and modalities is None:  # a folder of IMU outputs (`camsim emulate imu DATASET OUT`)
            return ImuDataset([(f, sequence_name(p, f)) for f in imu])
        raise DatasetError(f"no transforms.json and no images ({', '.join(IMAGE_SUFFIXES)}) under {p}")

    @staticmethod
    def from_stage(
        datasets_dir: str | os.PathLike[str],
        stage: str = "render",
        split: str | None = None,
        modalities: Iterable[str] | str | None = None,
    ) -> MultiSequenceDataset | ImuDataset:
        """The sequences of `split` (None: all) whose `stage` is complete in DATASETS/dataset.json, in its
        order, concatenated (the "imu" stage: an ImuDataset of samples). DatasetError for a folder without
        dataset.json, an unknown stage or split (naming the choices), or nothing complete to read."""
        root = Path(datasets_dir)
        check_stage(stage)
        manifest = read_manifest(root) if root.is_dir() else None
        if manifest is None:
            raise DatasetError(
                f"no {MANIFEST} in {root}: stage= and split= read a create-datasets folder; "
                "open a stage folder (e.g. DATASETS/renders) without them"
            )
        if stage not in manifest.stages:
            raise DatasetError(f"{root} has no {stage} stage (it has: {', '.join(manifest.stages)})")
        if stage == "interpolate" and not manifest.keep_interpolated:
            raise DatasetError(f"{root}: interpolated frames were not kept (--no-keep-interpolated)")
        if split is not None and split not in manifest.split_names():
            if not manifest.splits:
                raise DatasetError(f"{root} has no splits (made without --splits): pass split=None")
            raise DatasetError(f"unknown split {split!r}; splits: {', '.join(manifest.split_names())}")
        keys = manifest.outputs(stage, split)  # a rig's stage after the render: one per camera
        if not keys:
            where = f" in split {split}" if split else ""
            raise DatasetError(f"no complete {stage} sequences{where} in {root}")
        folders = [(stage_folder(root, stage, k), k) for _, k in keys]
        if stage == "imu":
            from camsim.imu_dataset import ImuDataset

            if modalities is not None:
                raise DatasetError("the imu stage has no modalities to choose (items are IMU samples)")
            return ImuDataset(folders)
        from camsim.rig import camera_folders  # a rig's render (--render-config.cameras): one per camera

        if stage == "render":
            rigs = {f: [(c, f"{k}/{n}") for c, n in camera_folders(f)] for f, k in folders}
            folders = [s for f, k in folders for s in (rigs[f] or [(f, k)])]
        return MultiSequenceDataset([SequenceDataset(f, name=k, modalities=modalities) for f, k in folders])

    def __len__(self) -> int:
        raise NotImplementedError

    def item(self, index: int, crop: Crop | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """An item dict for an integer index; a list of them for a slice, a list or an array of indices.

        `ds[i, rows, cols]` (integers or slices, as in numpy) crops every per-pixel array of the item(s);
        `K` and flow follow the crop (see `camsim.indexing`). Bad indices raise DatasetError, indices
        out of range DatasetIndexError (also an IndexError).
        """
        idx = parse_index(key, len(self))
        items = [self.item(i, idx.crop) for i in idx.frames]
        return items[0] if idx.single else items

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self.item(i)


class SequenceDataset(Dataset):
    """One sequence. Item keys: frame (HxWxC), pose (4x4 camera-to-world, OpenGL axes), K (3x3),
    time (s), index, frame_number, sequence, and each kind present (camsim.passes: depth HxW, normal HxWx3,
    flow HxWx4, segmentation HxW uint32, linear HxWx3; hole_mask HxW bool of an interpolated sequence, all
    False on its source frames; raw HxWxC uint16 of an emulated RGB sensor)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        name: str | None = None,
        transforms_name: str = "transforms.json",
        meta: dict[str, Any] | None = None,
        check: bool = True,
        modalities: Iterable[str] | str | None = None,
        source: str = "transforms",
    ) -> None:
        """`meta`: an already validated transforms.json; `check`: open NPY arrays now to check lengths;
        `modalities`: decode only these (None: all present); `source`: "transforms", "images" (a folder
        of images, see from_images) or "npy" (a bare array, see from_npy)."""
        self.root = Path(root)
        self.name = name if name is not None else self.root.name
        self.meta = meta if meta is not None else transforms.read(self.root / transforms_name)
        self.source = source
        self.is_npy = "file_path" in self.meta
        self._arrays: dict[str, np.ndarray] = {}
        self._modalities: list[str] | None = None
        self._selected: tuple[str, ...] | None = None
        if modalities is not None:
            wanted = resolve_modalities(modalities)
            have = self.available_modalities()
            missing = [m for m in wanted if m not in have]
            if missing:
                raise DatasetError(
                    f"{self.root}: no {', '.join(missing)} in this sequence (it has: {', '.join(have) or 'none'})"
                )
            self._selected = wanted
        if check:
            self._check_npy_lengths()

    @classmethod
    def from_images(
        cls, folder: str | os.PathLike[str], modalities: Iterable[str] | str | None = None
    ) -> SequenceDataset:
        """A folder of PNG/JPEG/EXR frames without transforms.json, in natural sort order (frame_2 before
        frame_10). Items carry index, frame_number (= index), sequence and frame (HxWxC)."""
        folder = Path(folder)
        names = image_files(folder)
        if not names:
            raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        meta = {"frames": [{"file_path": n} for n in names]}
        return cls(folder, name=folder.name, meta=meta, check=False, modalities=modalities, source="images")

    @classmethod
    def from_npy(
        cls, path: str | os.PathLike[str], modalities: Iterable[str] | str | None = None
    ) -> SequenceDataset:
        """One .npy file of shape (N, H, W) or (N, H, W, C) as N frames (memory-mapped, never loaded
        whole). Items carry index, frame_number (= index), sequence and frame (HxWxC)."""
        path = Path(path)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from exc
        if not isinstance(arr, np.ndarray) or arr.ndim not in (3, 4) or arr.dtype.kind not in "biuf":
            what = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise DatasetError(
                f"{path}: a .npy dataset must be numeric (N, H, W) or (N, H, W, C), got {what}"
            )
        # One shared (empty) record per frame: pickles as one object however long the array.
        meta = {"file_path": path.name, "frames": [{}] * arr.shape[0]}
        ds = cls(path.parent, name=path.stem, meta=meta, check=False, modalities=modalities, source="npy")
        ds._arrays["frame"] = arr
        return ds

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
        return transforms.fps(self.meta)

    def available_modalities(self) -> list[str]:
        """Names of the arrays the sequence holds for every frame (frame first). A kind that only some
        frames hold (`Pass.only_where`: hole masks) counts when any frame has one; the others read as zeros."""
        if self._modalities is None:
            frames = self.meta["frames"]
            self._modalities = [
                m.name
                for m in PASSES
                if m.key in self.meta
                or (frames and (any if m.only_where else all)(m.key in fr for fr in frames))
            ]
        return list(self._modalities)

    def modalities(self) -> list[str]:
        """Names of the arrays every item carries (frame first): the chosen ones, else all available."""
        have = self.available_modalities()
        if self._selected is None:
            return have
        return [m for m in have if m in self._selected]

    def ground_truth(self) -> list[str]:
        return [m for m in self.modalities() if m != "frame"]

    def _path(self, rel: str) -> Path:
        if self.source != "transforms":  # names listed from the folder by us, not read from a file
            return self.root / rel
        return transforms.resolve_path(self.root, rel)

    def _check_frame(self, index: int) -> int:
        n = len(self)
        try:
            i = operator.index(index)
        except TypeError:
            raise DatasetError(f"frame index must be an integer, got {index!r}") from None
        if not -n <= i < n:
            raise DatasetIndexError(f"{self.root}: frame {index} out of range for {n} frames")
        return i + n if i < 0 else i

    def file_for(self, modality: str, index: int) -> Path:
        """The file holding `modality` of frame `index` (the shared .npy for NPY modalities)."""
        m = _modality_of(modality)
        rel = self.meta.get(m.key) or self.meta["frames"][self._check_frame(index)].get(m.key)
        if rel is None:
            raise DatasetError(f"{self.root}: frame {index} has no {m.name}")
        return self._path(rel)

    def array(self, modality: str) -> np.ndarray:
        """The memory-mapped (N, H, W, C) array of an NPY modality, opened once per process."""
        m = _modality_of(modality)
        arr = self._arrays.get(m.name)
        if arr is None:
            if m.key not in self.meta:
                raise DatasetError(f"{self.root}: {m.name} is not stored as one .npy array")
            path = self._path(self.meta[m.key])
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise DatasetError(f"missing {path}") from None
            except (OSError, ValueError) as exc:
                raise DatasetError(f"cannot read {path}: {exc}") from exc
            self._arrays[m.name] = arr
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
        """Every array named at the top level (of an IMG sequence too: a kind may be one array there)."""
        chosen = self.modalities()
        for m in PASSES:
            if m.key not in self.meta or m.name not in chosen:
                continue
            arr = self.array(m.name)
            packed = m is FRAME and self.bitpack_dim is not None
            expect = len(m.channels or ())
            shape_ok = arr.ndim == 4 and (m.is_image or arr.shape[3] == expect)
            shape_ok = shape_ok or (arr.ndim == 3 and expect == 1 and not m.is_image)
            if not (packed or shape_ok):
                want = "(N, H, W, C)" if m.is_image else f"(N, H, W, {expect})"
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

    def read(self, modality: str, index: int, crop: Crop | None = None) -> np.ndarray:
        """One frame of one modality, decoded (only the rows and columns of `crop`, if given)."""
        m = _modality_of(modality)
        index = self._check_frame(index)
        if m.key in self.meta:
            arr = self.array(m.name)
            dim = self.bitpack_dim if m is FRAME else None
            if dim is not None:
                if arr.dtype != np.uint8 or arr.ndim != 4:
                    raise DatasetError(f"{self.root}: bit-packed frames must be a 4-D uint8 array, "
                                       f"got {arr.dtype} {arr.shape}")  # fmt: skip
                out = unpack_bits(arr, dim, self._bitpack_count(dim), index)
                return crop.apply(out) if crop else out
            view = m.shaped(arr[index])  # still a memory map: a crop reads only its rows
            return crop.apply(view) if crop else np.array(view)
        if m.only_where and m.key not in self.meta["frames"][index]:
            out = np.zeros(self._size(index), np.dtype(m.dtype))  # e.g. a source frame has no holes
        else:
            out = m.decode(self.file_for(m.name, index))
        return crop.apply(out) if crop else out

    def _size(self, index: int) -> tuple[int, int]:
        """Height and width of the pictures (transforms.json's h, w, else the first modality's shape)."""
        h, w = self.meta.get("h"), self.meta.get("w")
        if h and w:
            return h, w
        names = [n for n in self.modalities() or self.available_modalities() if not modality(n).only_where]
        if not names:
            raise DatasetError(f"{self.root}: picture size unknown (no h, w and no images) to crop K")
        return self.read(names[0], index).shape[:2]

    @functools.cached_property
    def _clock(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every frame's frame_number and time (None: the sequence has no times), read once by the rule of
        `transforms.frame_times`."""
        has_times = transforms.has_frame_times(self.meta)
        return transforms.frame_numbers(self.meta), transforms.frame_times(self.meta) if has_times else None

    def item(self, index: int, crop: Crop | None = None) -> dict[str, Any]:
        """Frame `index` as a dict: index, frame_number, time, pose, sequence, K and each chosen modality
        (pose and K when the sequence has them; time when it has times or an fps, `transforms.TIME_RULE`)."""
        index = self._check_frame(index)
        fr = self.meta["frames"][index]
        numbers, times = self._clock
        out: dict[str, Any] = {"index": index, "frame_number": int(numbers[index])}
        if times is not None:
            out["time"] = float(times[index])
        if "transform_matrix" in fr:
            out["pose"] = transforms.pose(self.meta, index)
        out["sequence"] = self.name
        if all(k in fr or k in self.meta for k in ("fl_x", "fl_y", "cx", "cy")):
            K = transforms.intrinsics(self.meta, index)
            out["K"] = crop.intrinsics(K, *self._size(index)) if crop else K
        for name in self.modalities():
            arr = self.read(name, index, crop)
            out[name] = crop.flow(arr) if crop and name == "flow" else arr
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

    def modalities(self) -> list[str]:
        """Names of the arrays every item carries: those all sequences have (or the chosen ones)."""
        common = self.sequences[0].modalities()
        return [m for m in common if all(m in s.modalities() for s in self.sequences[1:])]

    def item(self, index: int, crop: Crop | None = None) -> dict[str, Any]:
        seq, local = self.locate(index)
        return seq.item(local, crop)


def __getattr__(name: str) -> Any:
    """`camsim.loader.ImuDataset` (defined in camsim.imu_dataset, which builds on this module)."""
    if name == "ImuDataset":
        from camsim.imu_dataset import ImuDataset

        return ImuDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
