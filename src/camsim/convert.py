"""Lossless conversion between the IMG layout (a file per frame) and the NPY layout (one array each).

NPY arrays are written frame by frame into a memory map (never the whole sequence in memory) under a
temporary name and renamed into place; transforms.json is written last, as everywhere in camsim.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from camsim import transforms
from camsim.errors import DatasetError, UserInputError
from camsim.fileio import atomic_path, make_output_dir, write_bytes_atomic, write_exr, write_image
from camsim.loader import SequenceDataset, find_sequences
from camsim.passes import FRAME, PASSES, Pass, by_name

log = logging.getLogger(__name__)

Progress = Callable[[int], None] | None


def _check_dst(src: Path, dst: Path, overwrite: bool) -> None:
    if dst.resolve() == src.resolve():
        raise UserInputError(f"output folder {dst} is the input folder")
    if (dst / "transforms.json").exists() and not overwrite:
        raise UserInputError(f"{dst} already holds a transforms.json (pass --overwrite to replace it)")
    make_output_dir(dst)


def _as_hwc(arr: np.ndarray) -> np.ndarray:
    return arr[..., None] if arr.ndim == 2 else arr


def _as_bits(arr: np.ndarray, where: str) -> np.ndarray:
    """A binary frame as uint8 0/1: frames of 0 and 1, or of 0 and 255 (how binary PNGs are written)."""
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    top = int(arr.max()) if arr.size else 0
    if arr.dtype == np.uint8 and (top <= 1 or (top == 255 and not np.any((arr != 0) & (arr != 255)))):
        return (arr > 0).astype(np.uint8)
    raise UserInputError(
        f"{where}: bit-packing needs binary frames (uint8 values 0 and 1, or 0 and 255), got {arr.dtype} "
        f"with maximum {top}"
    )


def _is_binary(meta: dict[str, Any]) -> bool:
    """Frames of 0/1 detections: bit-packed, or a single-bit SPAD dataset."""
    return bool(meta.get("bitpack")) or meta.get("spad_levels") == 1


def img_to_npy(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    bitpack: bool = False,
    bitpack_dim: int = 2,
    overwrite: bool = False,
    progress: Progress = None,
) -> Path:
    """Convert one IMG sequence to NPY: `frames.npy` (N,H,W,C) (+ `depths.npy` etc.); returns dst.

    With `bitpack`, binary frames (0/1, or 0/255 as binary PNGs hold them) are packed with `np.packbits`
    on axis `bitpack_dim` of (N,H,W,C).
    """
    src, dst = Path(src), Path(dst)
    seq = SequenceDataset(src)
    if seq.is_npy:
        raise UserInputError(f"{src} is already an NPY sequence")
    if not 0 <= bitpack_dim <= 3:
        raise UserInputError(f"--bitpack-dim must be 0, 1, 2 or 3 (an axis of N,H,W,C), got {bitpack_dim}")
    _check_dst(src, dst, overwrite)
    n = len(seq)
    if n == 0:
        raise DatasetError(f"{src}: no frames to convert")
    meta = copy.deepcopy(seq.meta)
    for key in transforms.FILE_KEYS:  # they describe the source's files, not the ones written here
        meta.pop(key, None)
    _drop_unconverted(meta, seq.modalities(), src)
    for name in seq.modalities():
        m = by_name(name)
        first = _as_hwc(seq.read(name, 0))
        packed = bitpack and m is FRAME
        if packed:
            _write_packed(seq, dst / m.npy_name, first, bitpack_dim, progress)
        else:
            with atomic_path(dst / m.npy_name) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=(n, *first.shape))
                for i in range(n):
                    arr = first if i == 0 else _as_hwc(seq.read(name, i))
                    if arr.shape != first.shape or arr.dtype != first.dtype:
                        raise DatasetError(
                            f"{seq.file_for(name, i)}: {arr.shape} {arr.dtype} differs from frame 0 "
                            f"({first.shape} {first.dtype})"
                        )
                    out[i] = arr
                    if progress and m is FRAME:
                        progress(1)
                out.flush()
                del out
        for fr in meta["frames"]:
            fr.pop(m.key, None)
        meta[m.key] = m.npy_name
        if m is FRAME:
            meta.setdefault("h", int(first.shape[0]))
            meta.setdefault("w", int(first.shape[1]))
            meta["channels"] = int(first.shape[2])
    if bitpack:
        meta["bitpack"] = True
        meta["bitpack_dim"] = bitpack_dim
    _copy_sidecars(seq, dst, meta)
    transforms.write(dst / "transforms.json", meta)
    return dst


def _write_packed(seq: SequenceDataset, path: Path, first: np.ndarray, dim: int, progress: Progress) -> None:
    n = len(seq)
    shape = ((n + 7) // 8, *first.shape) if dim == 0 else (n, *np.packbits(first, axis=dim - 1).shape)
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        group: list[np.ndarray] = []
        for i in range(n):
            arr = first if i == 0 else _as_hwc(seq.read("frame", i))
            where = str(seq.file_for("frame", i))
            if arr.shape != first.shape:
                raise DatasetError(f"{where}: shape {arr.shape} differs from frame 0 ({first.shape})")
            arr = _as_bits(arr, where)
            if dim == 0:
                group.append(arr)
                if len(group) == 8 or i == n - 1:
                    out[i // 8] = np.packbits(np.stack(group), axis=0)[0]
                    group = []
            else:
                out[i] = np.packbits(arr, axis=dim - 1)
            if progress:
                progress(1)
        out.flush()
        del out


def _drop_unconverted(meta: dict[str, Any], names: list[str], src: Path) -> None:
    """Remove the per-frame paths of kinds not converted (`names` are): those on some frames only. A
    converted sequence never names a file it does not hold."""
    for m in PASSES:
        if m.name not in names and any(m.key in fr for fr in meta["frames"]):
            log.warning("%s: %s is not on every frame; it is left out of the conversion", src, m.key)
            for fr in meta["frames"]:
                fr.pop(m.key, None)


def _is_png(m: Pass, arr: np.ndarray) -> bool:
    """Whether npy-to-img writes a frame of `m` as a PNG: images of up to 16 bits, and masks; else an EXR."""
    if m.ext:
        return m.ext == ".png"
    return arr.dtype.kind in "ub" and arr.dtype.itemsize <= 2


def _write_frame_file(path: Path, arr: np.ndarray, m: Pass) -> None:
    if m.ext == ".png" and arr.dtype == np.bool_ and not m.is_image:  # a mask: 0 and 255, as written
        write_image(path, arr.astype(np.uint8) * np.uint8(255))
        return
    if _is_png(m, arr):
        img = arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
        write_image(path, img.astype(np.uint8) if arr.dtype == np.bool_ else img)
        return
    hwc = _as_hwc(arr)
    names = m.channels if m.channels is not None else ("R", "G", "B", "A")[: hwc.shape[2]]
    if m.channels is None and hwc.shape[2] == 1:
        names = ("Y",)
    if len(names) != hwc.shape[2]:
        raise DatasetError(f"{m.name}: {hwc.shape[2]} channels, expected {len(names)} ({', '.join(names)})")
    write_exr(path, {c: hwc[..., k] for k, c in enumerate(names)})


def npy_to_img(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    overwrite: bool = False,
    progress: Progress = None,
) -> Path:
    """Convert one NPY sequence (bit-packed or not) to the IMG layout of a rendered sequence.

    Binary frames (bit-packed, or single-bit SPAD) become 8-bit PNGs of 0 and 255, as an image viewer and
    `emulate spad --mode img` show them; `img_to_npy --bitpack` reads them back as bits.
    """
    src, dst = Path(src), Path(dst)
    seq = SequenceDataset(src)
    if not seq.is_npy:
        raise UserInputError(f"{src} is not an NPY sequence (its transforms.json has no top-level file_path)")
    _check_dst(src, dst, overwrite)
    meta = copy.deepcopy(seq.meta)
    for key in transforms.FILE_KEYS:  # they describe the source's files, not the ones written here
        meta.pop(key, None)
    names = seq.modalities()
    _drop_unconverted(meta, names, src)
    binary = _is_binary(meta)
    for i, fr in enumerate(meta["frames"]):
        number = int(fr.get("frame_number", i))
        for name in names:
            m = by_name(name)
            if m.only_where and not fr.get(m.only_where):
                continue  # a kind only some frames hold (hole masks: interpolated frames)
            arr = seq.read(name, i)
            if binary and m is FRAME and arr.dtype.kind in "ub":
                arr = _as_bits(arr, str(src)) * np.uint8(255)
            rel = m.relpath(number, ".png" if _is_png(m, arr) else ".exr")
            (dst / m.folder).mkdir(parents=True, exist_ok=True)
            _write_frame_file(dst / rel, arr, m)
            fr[m.key] = rel
        if progress:
            progress(1)
    for name in names:
        meta.pop(by_name(name).key, None)
    for key in ("bitpack", "bitpack_dim", "channels"):
        meta.pop(key, None)
    _copy_sidecars(seq, dst, meta)
    transforms.write(dst / "transforms.json", meta)
    return dst


def _copy_sidecars(seq: SequenceDataset, dst: Path, meta: dict) -> None:
    """Per-sequence files that describe the frames (objects.json) travel with a lossless conversion."""
    for key in transforms.SIDECAR_KEYS:
        if key in meta:
            src = transforms.resolve_path(seq.root, meta[key])
            if not src.is_file():
                raise DatasetError(f"{src}: listed as {key} in transforms.json but missing")
            write_bytes_atomic(transforms.resolve_path(dst, meta[key]), src.read_bytes())


def convert_tree(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    fn: Callable[..., Path],
    **kwargs: Any,
) -> list[Path]:
    """Apply a sequence conversion to `src` (one sequence) or every sequence under it, mirroring paths."""
    src, dst = Path(src), Path(dst)
    seqs = find_sequences(src)
    if not seqs:
        raise UserInputError(f"no transforms.json under {src}")
    out = []
    for s in seqs:
        target = dst / s.relative_to(src)
        log.debug("converting %s -> %s", s, target)
        out.append(fn(s, target, **kwargs))
    return out
