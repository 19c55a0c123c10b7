"""The time base of a derived dataset: every output frame's `time`, `frame_number` and `source_frame_number`.

A derived frame stands for an instant (or an interval) of the source sequence. Its position is a
fractional source-frame index x (x = i is source frame i; emulators that hold a source frame's light
give it the interval [i - 1/2, i + 1/2)). `time` and `source_frame_number` are the source's times and
frame numbers, linear in x between source frames and continued with the first or last spacing beyond
them, so both stay on the source's clock (seconds since the scene's first frame) and numbering.
`frame_number` is an integer, unique in the output: `source number x subframes + subframe`, where
`subframes_per_source_frame` (top level) says how many output numbers one source frame spans.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TIME = "seconds since the scene's first frame, after keyframe scaling: the source sequence's clock"
SOURCE_FRAME_NUMBER = (
    "frames[i].source_frame_number: the source sequence's frame_number at this frame's time (linear between "
    "source frames, so fractional between them; before the first or after the last source frame it continues "
    "with that end's spacing)"
)
GEOMETRY = ("camera_axes", "transform_matrix", "world_axes", "pixel_origin", "intrinsics", "camera")
"""Source conventions about poses and intrinsics: they hold for every derived frame that carries a pose."""
_INTRINSICS = ("fl_x", "fl_y", "cx", "cy")


def at(values: np.ndarray, x: float) -> float:
    """values (one per source frame) at fractional index x: linear between frames, extrapolated at the ends."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 1:
        return float(v[0])
    i = min(max(math.floor(x), 0), n - 2)
    f = x - i
    if f == 0.0 or f == 1.0:  # exactly a source frame's value, not a rounded blend
        return float(v[i + int(f)])
    return float(v[i] + f * (v[i + 1] - v[i]))


def place(
    times: np.ndarray, numbers: np.ndarray, x: float, frame_number: int, source: dict[str, Any] | None
) -> dict[str, Any]:
    """The time-base keys of an output frame at fractional source index x (plus the source frame's camera
    and interpolated intrinsics when the source frames carry them)."""
    entry: dict[str, Any] = {
        "time": at(times, x),
        "frame_number": int(frame_number),
        "source_frame_number": at(numbers, x),
    }
    frames = (source or {}).get("frames") or []
    if len(frames) == len(times):
        nearest = frames[min(max(round(x), 0), len(frames) - 1)]
        if "camera" in nearest:
            entry["camera"] = nearest["camera"]
        if all(k in f for f in frames for k in _INTRINSICS):
            xc = min(max(x, 0.0), len(frames) - 1.0)
            for k in _INTRINSICS:
                entry[k] = at(np.array([float(f[k]) for f in frames]), xc)
    return entry


def subframe_number(numbers: np.ndarray, j: int, subframes: int) -> int:
    """frame_number of sub-frame j (global, `subframes` per source frame): source number x subframes + j mod subframes."""
    i, k = divmod(int(j), int(subframes))
    return round(float(numbers[i])) * int(subframes) + k


def conventions(
    source: dict[str, Any], own: dict[str, str], keep: tuple[str, ...] | None = None
) -> dict[str, str]:
    """A derived dataset's `conventions`: the source's texts for what it still holds (`keep`, default the
    source's geometry, when present in the source), then its own texts (which replace a kept one)."""
    src = source.get("conventions") or {}
    out = {k: src[k] for k in (geometry(source) if keep is None else keep) if k in src}
    out.update(own)
    return out


def geometry(source: dict[str, Any]) -> tuple[str, ...]:
    """The GEOMETRY conventions a derived dataset of `source` keeps: `camera` only when every source frame
    names its camera (the derived frames then carry it too)."""
    frames = source.get("frames") or []
    has_camera = bool(frames) and all("camera" in f for f in frames)
    return tuple(k for k in GEOMETRY if k != "camera" or has_camera)
