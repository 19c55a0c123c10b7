"""An interpolated sequence that is never written: each new frame is computed when an emulator reads it.

`open_streamed(render, n)` is the sequence `camsim interpolate --factor n` would write from `render`, as the
emulators see it (`camsim.emulate.light.Sequence`): the same metadata, times, poses and frame numbers
(`sequence.describe`, shared with the writer), and frame for frame the same light, bit for bit: source
frames are read from the render (the writer copies their files), new frames are warped from their pair
(`sequence.pair_warper`) and go through the writer's encoding (`sequence.frame_code`, `frame_linear`).
Only colour is computed: segmentation and normals never reach the warp, whose colours do not depend on
them.

Emulators read frames in increasing order, several threads at a time: the warper of a pair being read is
shared, built once (a lock per pair), and at most max(`cache_pairs`, pairs being read) warpers are held
(idle ones dropped, least recently used first), so memory stays bounded whatever the length. A warper
holds about 1.2 kB per pixel (2.5 GB at 1920x1080), as in `camsim interpolate`'s pair jobs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim.emulate.light import Light, Sequence, code_to_linear, read_light, timeline, with_size
from camsim.fileio import read_image, write_image
from camsim.interpolate.sequence import (
    Interpolated,
    describe,
    frame_code,
    frame_linear,
    pair_warper,
    settings,
)
from camsim.interpolate.warp import PairWarper, WarpedFrame
from camsim.passes import DEPTH, FLOW, FRAME, LINEAR

COLOUR_KEYS = (FRAME.key, DEPTH.key, FLOW.key, LINEAR.key)
"""The kinds a new frame's colours are made from (segmentation and normals are ground truth only)."""

LOSSLESS = (".png",)
"""Image suffixes whose files give back exactly the code values written."""


def streamed_sha256(source_sha256: str, factor: int, beta: float) -> str:
    """The identity of a streamed sequence: SHA-256 over its render's transforms.json SHA-256 and the
    interpolation settings (canonical JSON), so another render or other settings give another."""
    text = json.dumps(settings(factor, beta), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((source_sha256 + text).encode()).hexdigest()


@dataclass
class _Slot:
    lock: threading.Lock
    users: int = 0
    value: Any = None


class PairCache:
    """Values built per pair index, each once at a time: a pair being built is waited for, not built again.

    Holds at most max(`capacity`, pairs in use) values: idle ones are dropped, least recently used first, to
    make room (so one reader going forward holds the pair it reads and the one before it).
    """

    def __init__(self, build: Callable[[int], Any], capacity: int = 2) -> None:
        self._build = build
        self._capacity = max(0, int(capacity))
        self._lock = threading.Lock()
        self._slots: OrderedDict[int, _Slot] = OrderedDict()
        self.built = 0
        """Values built so far."""

    @contextmanager
    def use(self, i: int) -> Iterator[Any]:
        with self._lock:
            slot = self._slots.get(i)
            if slot is None:
                self._trim(self._capacity - 1)
                slot = self._slots[i] = _Slot(threading.Lock())
            slot.users += 1
            self._slots.move_to_end(i)
        try:
            with slot.lock:
                if slot.value is None:
                    slot.value = self._build(i)
                    with self._lock:
                        self.built += 1
            yield slot.value
        finally:
            with self._lock:
                slot.users -= 1
                self._trim(self._capacity)

    def _trim(self, keep: int) -> None:
        """Drop idle values, least recently used first, until at most `keep` values are held (caller locks)."""
        for k in [k for k, s in self._slots.items() if s.users == 0]:
            if len(self._slots) <= keep:
                return
            del self._slots[k]

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)


class StreamedSequence(Sequence):
    """The interpolated sequence of a render, every new frame computed on demand (see the module)."""

    def __init__(self, plan: Interpolated, light: Light = "auto", cache_pairs: int = 2) -> None:
        root = plan.source_dir
        meta = json.loads(json.dumps({**plan.header, "frames": plan.records}, allow_nan=False))
        meta = with_size(root, meta, plan.source_meta["frames"][0])
        super().__init__(root=root, meta=meta, light=light, **timeline(root, meta))
        self.plan = plan
        self._cache = PairCache(functools.partial(colour_warper, plan), cache_pairs)
        self._render_sha256 = plan.header["interpolation"]["source_transforms_sha256"]

    @property
    def source(self) -> str:
        return f"{self.root} (interpolated x{self.plan.factor}, streamed)"

    @property
    def source_sha256(self) -> str:
        return streamed_sha256(self._render_sha256, self.plan.factor, self.plan.beta)

    @property
    def source_interpolation(self) -> dict[str, Any]:
        block = self.plan.header["interpolation"]
        return {
            "streamed": True,
            "settings": block["settings"],
            "settings_hash": block["settings_hash"],
            "source": str(self.root),
            "source_transforms_sha256": self._render_sha256,
        }

    @property
    def cached_pairs(self) -> int:
        """Pair warpers held now (in use or kept)."""
        return len(self._cache)

    @property
    def pairs_built(self) -> int:
        """Pair warpers built so far (a pair read again after it was dropped is built again)."""
        return self._cache.built

    def has_linear(self, i: int) -> bool:
        return LINEAR.key in self.plan.keys

    def read_light(self, i: int) -> np.ndarray:
        plan = self.plan
        m = int(plan.source_index[i])
        if not plan.records[i]["interpolated"]:  # the writer copies the source frame's files
            return read_light(self.root, plan.source_meta["frames"][m], self.uses_linear(i), m)
        use_linear = self.uses_linear(i)
        wf, dtype = self._interpolate(m, i)
        if use_linear:
            return frame_linear(wf)
        return code_to_linear(_as_read(frame_code(wf, dtype), plan.suffix))

    def _interpolate(self, pair: int, i: int) -> tuple[WarpedFrame, np.dtype]:
        """Output frame i, made by its pair's warper (held only while it is made)."""
        t = self.plan.target(i)
        with self._cache.use(pair) as (warper, dtype):
            return warper.frame(t.frac, t.c2w, t.K, self.plan.factor), dtype


def colour_warper(plan: Interpolated, i: int) -> tuple[PairWarper, np.dtype]:
    """Pair i's warper, from the kinds colours are made of (the dtype: of the render's sRGB code values)."""
    keys = tuple(k for k in plan.keys if k in COLOUR_KEYS)
    return pair_warper(
        plan.source_dir, plan.side(i, keys), plan.side(i + 1, keys), keys, plan.beta, plan.edge_sigma
    )


def _as_read(code: np.ndarray, suffix: str) -> np.ndarray:
    """The code values a frame image file written with `suffix` gives back when read."""
    if suffix.lower() in LOSSLESS:
        return code
    with tempfile.TemporaryDirectory(prefix="camsim-stream-") as tmp:
        path = Path(tmp) / f"frame{suffix}"
        write_image(path, code)
        return read_image(path)


def open_streamed(
    source_dir: str | os.PathLike[str],
    factor: int,
    beta: float = 60.0,
    light: Light = "auto",
    cache_pairs: int = 2,
) -> StreamedSequence:
    """The sequence `camsim interpolate --factor factor --beta beta` would write from the render in
    `source_dir`, read by the emulators without being written (checks the render as the writer does)."""
    return StreamedSequence(describe(Path(source_dir), factor, beta), light, cache_pairs)


@dataclass(frozen=True)
class Streamed:
    """An opener (`camsim.emulate.sensors.Opener`) that interpolates each source on the fly; picklable."""

    factor: int
    beta: float = 60.0

    def __call__(self, source: Path, light: str) -> StreamedSequence:
        return open_streamed(source, self.factor, self.beta, light)  # type: ignore[arg-type]
