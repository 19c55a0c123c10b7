"""Shared plumbing for the emulators: seeded random streams, chunking, params.

Reproducibility rule: every random draw comes from a stream keyed on (seed, purpose, global index),
never on the order chunks are processed in, so the output is bit-identical whatever the batch size
or the number of workers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from camsim.errors import ConfigError
from camsim.fileio import write_json_atomic

Progress = Callable[[int], None] | None
T = TypeVar("T")

# Stream identifiers: one per purpose, so e.g. the SPAD dark-count map never shares draws with photons.
STREAMS = {
    "spad_frame": 1,
    "spad_dcr": 2,
    "rgb_frame": 11,
    "rgb_fpn": 12,
    "events_pixel": 21,
    "events_interval": 22,
    "imu_block": 31,
    "itof_tap": 41,
    "lidar_block": 51,
}

IMU_BLOCK = 4096
"""Samples per IMU noise block: a constant, so noise never depends on the user's batch size."""


def seed_sequence(seed: int, stream: str, index: int = 0) -> np.random.SeedSequence:
    """The entropy of stream `stream`'s draw `index` under `seed`: the key of every generator (numpy and GPU)."""
    return np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, STREAMS[stream], int(index)]
    )


def rng(seed: int, stream: str, index: int = 0) -> np.random.Generator:
    """A Philox generator keyed on (seed, stream, global index): independent of processing order."""
    return np.random.Generator(np.random.Philox(seed_sequence(seed, stream, index)))


def batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    """Half-open index ranges [start, stop) of at most `size` items covering range(n)."""
    if size < 1:
        raise ConfigError(f"batch size must be at least 1, got {size}")
    for start in range(0, n, size):
        yield start, min(n, start + size)


def parallel_map(fn: Callable[[int], T], indices: range | list[int], workers: int) -> list[T]:
    """`[fn(i) for i in indices]`, on a thread pool when workers > 1 (numpy and decoders drop the GIL)."""
    if workers <= 1 or len(indices) <= 1:
        return [fn(i) for i in indices]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, indices))


def blockwise(batch: Callable[[np.ndarray], np.ndarray], n: int, size: int = 1024) -> Callable[[int], Any]:
    """`lambda i: batch(np.arange(n))[i]` computed `size` items at a time, as i moves forward: one vectorised
    call per block instead of one call per item, and memory flat in n."""
    held: dict[str, Any] = {"start": -1, "values": None}

    def get(i: int) -> Any:
        start = i - i % size
        if held["start"] != start:
            held["values"] = batch(np.arange(start, min(n, start + size)))
            held["start"] = start
        return held["values"][i - start]

    return get


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and ok):
        raise ConfigError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")


def check_probability(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be in [0, 1], got {value}")


def prepare_output(output: str | os.PathLike[str], overwrite: bool) -> Path:
    """Create the output folder; refuse to write where another output is unless asked to overwrite, which
    first removes every file a camsim sequence folder can hold (nothing of the old output survives)."""
    from camsim.derive import prepare_folder

    return prepare_folder(output, overwrite)


def _jsonable(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def settings(config: Any) -> dict[str, Any]:
    """A config as recorded in params.json (`config`) and compared by --allow-skips; a `device` as the draws run
    here (`gpu.runs_on`)."""
    out = _jsonable(config)
    if "device" in out:
        from camsim.emulate.gpu import runs_on  # imported here: gpu imports this module

        out["device"] = runs_on(out["device"])
    return out


class Source(Protocol):
    """What params.json records about an emulator's input (`camsim.emulate.light.Sequence` is one)."""

    @property
    def source(self) -> str: ...

    @property
    def source_sha256(self) -> str | None: ...

    @property
    def source_interpolation(self) -> dict[str, Any] | None: ...


def write_params(out: Path, sensor: str, config: Any, source: Source, **derived: Any) -> None:
    """params.json: every parameter used (the config dataclass), derived values, provenance (the input
    sequence's `source`, `source_transforms_sha256`, and `source_interpolation` when it was interpolated on
    the fly), and the record a rerun compares (`settings_hash`, `source_transforms_sha256`)."""
    import camsim
    from camsim.derive import settings_hash

    payload = {
        "sensor": sensor,
        "camsim_version": getattr(camsim, "__version__", "unknown"),
        "source": source.source,
        "source_transforms_sha256": source.source_sha256,
        **({"source_interpolation": source.source_interpolation} if source.source_interpolation else {}),
        "settings_hash": settings_hash(sensor, settings(config)),
        "config": settings(config),
        "derived": _jsonable(derived),
    }
    write_json_atomic(out / "params.json", payload)


def write_transforms_streamed(
    path: str | os.PathLike[str], meta: dict[str, Any], frame: Callable[[int], dict[str, Any]], n: int
) -> None:
    """Write transforms.json with `n` frames produced one at a time by `frame(i)`, atomically.

    The frames list is never held in memory, so writing the index of a long sequence costs no more
    than a short one. Each frame is validated with the header as it is written.
    """
    from camsim import transforms
    from camsim.fileio import atomic_path

    head = {k: v for k, v in meta.items() if k != "frames"}
    head["frames"] = []
    transforms.validate(head, str(path))
    # Each frame is then checked with the header's plain numbers (w, h, intrinsics, fps: what frame checks
    # look at), not again with its paths and maps (checked above; resolving paths costs system calls).
    numbers = {k: v for k, v in head.items() if isinstance(v, int | float)}
    text = json.dumps(head, indent=2, allow_nan=False)
    cut = text.rindex('"frames": []') + len('"frames": ')
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text[:cut] + "[\n")
        for i in range(n):
            fr = frame(i)
            numbers["frames"] = [fr]
            transforms.validate(numbers, str(path))
            fh.write("    " + json.dumps(fr, allow_nan=False) + (",\n" if i < n - 1 else "\n"))
        fh.write("  ]" + text[cut + 2 :] + "\n")
        fh.flush()
        os.fsync(fh.fileno())
