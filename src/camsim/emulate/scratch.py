"""Scratch arrays kept from call to call: numpy allocates a large temporary afresh each time and the allocator
hands big blocks back to the system, so every call pays the page faults of its temporaries again (as much as
a pass over them). An emulator that works block by block takes its per-block arrays from a Scratch instead."""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import DTypeLike


class Scratch:
    """Named 1-D arrays, each the same memory from call to call as long as it is large enough."""

    def __init__(self) -> None:
        self._held: dict[str, np.ndarray] = {}

    def array(self, name: str, size: int, dtype: DTypeLike = np.float64) -> np.ndarray:
        """An array of `size` items of `dtype`, contents undefined, valid until the next call for `name`."""
        dtype = np.dtype(dtype)
        held = self._held.get(name)
        if held is None or held.dtype != dtype or held.size < size:
            held = self._held[name] = np.empty(size + size // 8, dtype)  # room for the next, larger block
        return held[:size]


class PerThread:
    """One Scratch per thread (for blocks spread over a thread pool); dropped with this object."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> Scratch:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = Scratch()
        return scratch
