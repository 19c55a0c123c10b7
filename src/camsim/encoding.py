"""How each ground-truth kind is stored in its EXR files: the codec, the precision, and the error that follows.

A render's settings (RenderSettings.exr_codec, flow_grid, normal_precision) give every kind an `Encoding`.
The codecs are OpenEXR's lossless ones (bit-exact for float32, half and uint32); the precision is where a
value may change: flow rounded to multiples of 1/N pixel (still float32), normals stored as half floats.
`Encoding.channels` turns a converted array into the channels written; `Encoding.max_abs_error` bounds what
a reader gets back against what camsim computed, and transforms.json `encodings` states it per kind
(docs/FORMAT.md). camsim's readers return float32 for half channels (fileio.read_exr), so no reader changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from camsim.fileio import EXR_CODECS
from camsim.passes import FLOW, NORMAL, Pass

if TYPE_CHECKING:
    from camsim.config import RenderSettings

CODECS: dict[str, str] = EXR_CODECS
"""The lossless codecs by their --render-config.exr-codec name: OpenEXR's compression constant of each."""

NEWER_CODECS: dict[str, str] = {"htj2k": "3.4", "zstd": "3.5"}
"""Codecs only OpenEXR from this version on decodes (Blender 4.x's and older OpenEXR readers cannot)."""

AUTO_CHOICES: tuple[str, ...] = ("zip", "zips", "piz", "rle")
"""What `auto` chooses from: the lossless codecs every OpenEXR reader decodes."""

AUTO: dict[tuple[str, str], str] = {("flow", "float32"): "piz", ("linear", "float32"): "piz"}
"""`auto`'s codec for (kind name, form) where it is not ZIP, form = "float32", "half", "uint32" or "grid" (float32
rounded to a grid): the fewest bytes among AUTO_CHOICES on the demo scenes at 128x128 and 512x512
(`python benchmarks/exr_bytes.py`, BENCHMARKS.md "Ground-truth bytes"). Every other kind and form, rounded flow
and half normals included, is smallest with ZIP."""

HALF_ERROR = 2.0**-12
"""Largest change of a value in [-1, 1] stored as a half float (round to nearest: half an ulp of [0.5, 1))."""

FLOW_GRID_MAX = 2**20
"""The finest flow grid: 1/2^20 pixel."""


def codec_available(codec: str) -> bool:
    """The installed OpenEXR writes and reads `codec` (HTJ2K from 3.4, ZSTD from 3.5)."""
    import OpenEXR

    return codec in CODECS and hasattr(OpenEXR, CODECS[codec])


def codec_problem(codec: str) -> str | None:
    """Why `codec` cannot be written here, or None."""
    if codec == "auto" or codec_available(codec):
        return None
    import OpenEXR

    version = getattr(OpenEXR, "__version__", "?")
    need = NEWER_CODECS.get(codec, "?")
    return f"needs OpenEXR {need} or newer to write; this Python has OpenEXR {version}"


def flow_grid_problem(n: int) -> str | None:
    """Why `n` is not a flow grid (0, or a power of two from 1 to FLOW_GRID_MAX), or None."""
    if n == 0 or (1 <= n <= FLOW_GRID_MAX and n & (n - 1) == 0):
        return None
    return f"must be 0 (exact float32) or a power of two from 1 to {FLOW_GRID_MAX}, got {n}"


@dataclass(frozen=True)
class Encoding:
    """How one kind's files are stored."""

    codec: str
    """A key of CODECS."""
    precision: str
    """The stored channel type: "float32", "half" or "uint32"."""
    grid: float = 0.0
    """Values are rounded to multiples of this (a power of two, in the kind's units); 0: not rounded."""

    @property
    def max_abs_error(self) -> float:
        """The largest difference between a value read back and the value camsim computed (the kind's units)."""
        if self.precision == "half":
            return HALF_ERROR
        return self.grid / 2

    def to_json(self) -> dict[str, Any]:
        """Its entry in transforms.json `encodings`."""
        grid = {"grid": self.grid} if self.grid else {}
        return {"codec": self.codec, "precision": self.precision, **grid, "max_abs_error": self.max_abs_error}

    def store(self, arr: np.ndarray) -> np.ndarray:
        """The array as written: rounded to the grid (exact float32 arithmetic, as the grid is a power of two:
        the error is at most grid / 2, ties to even) or as half floats (values must lie in [-1, 1])."""
        if self.grid:
            with np.errstate(over="ignore"):
                out = np.multiply(arr, np.float32(1.0 / self.grid), dtype=np.float32)
            np.rint(out, out=out)
            out *= np.float32(self.grid)
            huge = np.isinf(out)  # |value| near float32's largest: on the grid already (its ulp is larger)
            if huge.any():
                out[huge] = np.asarray(arr, np.float32)[huge]
            return out
        if self.precision == "half":
            if arr.size and float(np.abs(arr).max()) > 1.0 + HALF_ERROR:
                raise ValueError("half precision is for values in [-1, 1] (unit normals)")
            return arr.astype(np.float16)
        return arr

    def channels(self, kind: Pass, arr: np.ndarray) -> dict[str, np.ndarray]:
        """The named 2-D channels of `kind`'s file holding `arr` (HxW or HxWxC, its channels in order)."""
        names = kind.channels or ()
        stored = self.store(arr)
        if len(names) == 1:
            return {names[0]: stored}
        return {c: stored[..., i] for i, c in enumerate(names)}


def precision_of(kind: Pass, settings: RenderSettings) -> tuple[str, float]:
    """The stored precision and grid of `kind` under `settings`."""
    if kind.dtype == "uint32":
        return "uint32", 0.0
    if kind is FLOW and settings.flow_grid:
        return "float32", 1.0 / settings.flow_grid
    if kind is NORMAL and settings.normal_precision == "half":
        return "half", 0.0
    return "float32", 0.0


def encoding_of(kind: Pass, settings: RenderSettings) -> Encoding:
    """The encoding of `kind`'s files under `settings` (`auto`: AUTO, else ZIP)."""
    precision, grid = precision_of(kind, settings)
    codec = settings.exr_codec
    if codec == "auto":
        codec = AUTO.get((kind.name, "grid" if grid else precision), "zip")
    return Encoding(codec, precision, grid)


def lossless(kind: Pass, codec: str = "zip") -> Encoding:
    """`kind`'s values exactly as computed (float32, or uint32 for ids)."""
    return Encoding(codec, "uint32" if kind.dtype == "uint32" else "float32")


def encodings_of(kinds: Iterable[Pass], settings: RenderSettings) -> dict[str, Encoding]:
    """Every written kind's encoding, by kind name."""
    return {k.name: encoding_of(k, settings) for k in kinds if k.ext == ".exr"}


def encodings_record(encodings: Mapping[str, Encoding]) -> dict[str, dict[str, Any]]:
    """transforms.json `encodings`: per kind, its codec, precision, grid and max_abs_error."""
    return {name: enc.to_json() for name, enc in encodings.items()}
