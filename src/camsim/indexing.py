"""How `Dataset[...]` reads its index (as VisionSim does): frames first, then rows and columns of every picture.

`ds[i]` is one item, `ds[a:b]`, `ds[[0, 3, 5]]` (or an integer or boolean array) a list of items, and
`ds[i, y0:y1, x0:x1]` crops every per-pixel array of the item(s). Pure functions: nothing is read here.
A crop keeps the item consistent: `K` is moved (and scaled for strided slices) to the new pixel grid, and
flow, which is in pixels, is divided by the stride. Bad indices raise `DatasetError`s; out-of-range ones
raise `DatasetIndexError`, which is also an `IndexError`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from camsim.errors import DatasetError


class DatasetIndexError(DatasetError, IndexError):
    """An index outside the dataset (or outside the picture, for a crop)."""


INDEX_HELP = "an integer, a slice, a list or 1-D array of integers (or booleans), optionally followed by rows and columns"


def _as_int(x: Any) -> int | None:
    """`x` as a Python int when it is an integer scalar (not a bool), else None."""
    if isinstance(x, bool | np.bool_):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def _check_axis(entry: Any, axis: str) -> int | slice:
    if isinstance(entry, slice):
        for part in (entry.start, entry.stop, entry.step):
            if part is not None and _as_int(part) is None:
                raise DatasetError(f"{axis} slice bounds must be integers, got {entry!r}")
        if entry.step is not None and _as_int(entry.step) == 0:
            raise DatasetError(f"{axis} slice step cannot be zero")
        return entry
    i = _as_int(entry)
    if i is None:
        raise DatasetError(
            f"{axis} index must be an integer or a slice, got {type(entry).__name__} {entry!r}"
        )
    return i


@dataclass(frozen=True)
class Crop:
    """Rows and columns to keep of every per-pixel array (an integer drops that axis, as in numpy)."""

    rows: int | slice
    cols: int | slice

    @property
    def identity(self) -> bool:
        full = slice(None)
        return self.rows == full and self.cols == full

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """The cropped array (a copy; on a memory map only the kept rows are read)."""
        if arr.ndim < 2:
            raise DatasetError(f"cannot crop an array of shape {arr.shape}")
        h, w = arr.shape[:2]
        for idx, size, axis in ((self.rows, h, "row"), (self.cols, w, "column")):
            if isinstance(idx, int) and not -size <= idx < size:
                raise DatasetIndexError(f"{axis} {idx} out of range for {size} {axis}s")
        return np.array(arr[self.rows, self.cols])

    @staticmethod
    def _origin_step(idx: int | slice, size: int) -> tuple[int, int]:
        if isinstance(idx, int):
            return (idx + size if idx < 0 else idx), 1
        start, _, step = idx.indices(size)
        return start, step

    def intrinsics(self, K: np.ndarray, h: int, w: int) -> np.ndarray:
        """K of the cropped picture: new pixel j is old pixel x0 + s·j, so (pixel centres at +0.5)
        fx' = fx / s and cx' = (cx − x0 − 0.5) / s + 0.5, the same for rows."""
        x0, sx = self._origin_step(self.cols, w)
        y0, sy = self._origin_step(self.rows, h)
        out = np.array(K, dtype=np.float64)
        out[0, 0], out[0, 2] = K[0, 0] / sx, (K[0, 2] - x0 - 0.5) / sx + 0.5
        out[1, 1], out[1, 2] = K[1, 1] / sy, (K[1, 2] - y0 - 0.5) / sy + 0.5
        return out

    def flow(self, flow: np.ndarray) -> np.ndarray:
        """Flow (dx, dy[, dx, dy]) in pixels of the cropped grid: divided by the column and row strides."""
        sx = 1 if isinstance(self.cols, int) else self.cols.step or 1
        sy = 1 if isinstance(self.rows, int) else self.rows.step or 1
        if sx == 1 and sy == 1:
            return flow
        scale = np.array([1 / sx, 1 / sy] * (flow.shape[-1] // 2), dtype=flow.dtype)
        return flow * scale


@dataclass(frozen=True)
class Index:
    """A parsed `Dataset[...]` index: which frames, whether one item or a list, and the crop."""

    frames: tuple[int, ...]
    single: bool
    crop: Crop | None


def _frames(key: Any, n: int) -> tuple[tuple[int, ...], bool]:
    i = _as_int(key)
    if i is not None:
        if not -n <= i < n:
            raise DatasetIndexError(f"index {i} out of range for {n} frames")
        return ((i + n) if i < 0 else i,), True
    if isinstance(key, slice):
        _check_axis(key, "frame")
        return tuple(range(*key.indices(n))), False
    if isinstance(key, list | np.ndarray) or (hasattr(key, "tolist") and hasattr(key, "ndim")):
        try:
            arr = np.asarray(key.tolist() if not isinstance(key, list | np.ndarray) else key)
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"bad list of frame indices: {exc}") from None
        if arr.ndim != 1:
            raise DatasetError(f"a list of frame indices must be 1-D, got shape {arr.shape}")
        if arr.size and arr.dtype == np.bool_:
            if arr.size != n:
                raise DatasetIndexError(f"boolean index of length {arr.size} for {n} frames")
            return tuple(int(k) for k in np.flatnonzero(arr)), False
        if arr.size and arr.dtype.kind not in "iu":
            raise DatasetError(f"frame indices must be integers, got {arr.dtype} values")
        out = []
        for k in arr.tolist():
            if not -n <= k < n:
                raise DatasetIndexError(f"index {k} out of range for {n} frames")
            out.append(k + n if k < 0 else k)
        return tuple(out), False
    raise DatasetError(f"bad dataset index {key!r} ({type(key).__name__}): use {INDEX_HELP}")


def parse_index(key: Any, n: int) -> Index:
    """Read `ds[key]` for a dataset of `n` frames (negative indices count from the end)."""
    crop = None
    if isinstance(key, tuple):
        if not key:
            raise DatasetError(f"empty dataset index: use {INDEX_HELP}")
        if len(key) > 3:
            raise DatasetError(f"dataset index has {len(key)} parts; at most frames, rows and columns")
        key, *spatial = key
        rows, cols = [*spatial, slice(None), slice(None)][:2]
        crop = Crop(_check_axis(rows, "row"), _check_axis(cols, "column"))
        if crop.identity:
            crop = None
    frames, single = _frames(key, n)
    return Index(frames, single, crop)
