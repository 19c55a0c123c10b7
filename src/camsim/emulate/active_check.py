"""Active sensors against the renderer: an iToF output's decoded depth and a LiDAR output's ranges, each next to
the rendered radial depth of the frames they saw (what `camsim demo` shows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camsim import colorize, transforms
from camsim.emulate.itof import read_taps
from camsim.emulate.itof_decode import decode
from camsim.emulate.light import open_sequence
from camsim.emulate.rays import RayGeometry
from camsim.errors import DatasetError


@dataclass(frozen=True)
class DepthCheck:
    """One emulated frame's depth against the rendered one."""

    sensor: str
    measured: np.ndarray
    """HxW radial depth (m) the sensor gives, NaN where it gives none."""
    truth: np.ndarray
    """HxW rendered radial depth (m) of the source frame it saw (+inf on background)."""
    median_error_m: float
    """Median |measured - truth| over pixels with both (and, for iToF, truth within its unambiguous range)."""
    pixels: int
    """Pixels compared."""


def _source_index(source: Path, number: float) -> int:
    numbers = transforms.frame_numbers(transforms.read(source)).astype(np.float64)
    return int(np.argmin(np.abs(numbers - number)))


def _radial_truth(source: Path, index: int) -> np.ndarray:
    seq = open_sequence(source)
    scale, _ = RayGeometry(seq).of(index)
    return (seq.depth(index) * scale).astype(np.float64)


def _check(sensor: str, measured: np.ndarray, truth: np.ndarray, limit: float = np.inf) -> DepthCheck:
    both = np.isfinite(measured) & np.isfinite(truth) & (truth < limit)
    err = np.abs(measured[both] - truth[both])
    return DepthCheck(
        sensor, measured, truth, float(np.median(err)) if err.size else float("nan"), int(both.sum())
    )


def itof_check(output: str | os.PathLike[str], source: str | os.PathLike[str], frame: int = 0) -> DepthCheck:
    """Decoded depth of iToF output frame `frame` against the rendered depth of the source frame of its middle
    tap (the source must be the sequence the output was made from: its kept or rendered frames)."""
    output, source = Path(output), Path(source)
    meta = transforms.read(output)
    taps = np.asarray(read_taps(output)[frame], dtype=np.float64)
    depth, _ = decode(taps, meta)
    numbers = meta["frames"][frame]["tap_source_frame_numbers"]
    truth = _radial_truth(source, _source_index(source, numbers[len(numbers) // 2]))
    limit = float(meta["itof"]["unambiguous_range_m"])
    return _check("itof", np.asarray(depth, dtype=np.float64), truth, limit)


def lidar_check(output: str | os.PathLike[str], frame: int = 0) -> DepthCheck:
    """Estimated ranges of LiDAR output frame `frame` against the rendered range of the same pixels (the points
    record both)."""
    meta = transforms.read(Path(output))
    key = "points_file_path"
    if key not in meta:
        raise DatasetError(f"{output}: not a LiDAR output (no {key})")
    points = np.load(transforms.resolve_path(output, meta[key]), mmap_mode="r")[frame]
    measured = np.where(points["valid"], points["range"], np.nan).astype(np.float64)
    truth = np.asarray(points["range_true"], dtype=np.float64)
    return _check("lidar", measured, np.where(np.isfinite(truth) & (truth > 0), truth, np.inf))


def picture(checks: list[DepthCheck]) -> np.ndarray:
    """One row per check: rendered depth | the sensor's depth | |error| (0 to 0.1 m, black to white), uint8."""
    rows = []
    for c in checks:
        finite = c.truth[np.isfinite(c.truth)]
        limits = (float(finite.min()), float(finite.max())) if finite.size else None
        err = np.where(np.isfinite(c.measured), np.abs(c.measured - c.truth), 0.0)
        err = np.where(np.isfinite(err), np.clip(err / 0.1, 0.0, 1.0), 1.0)
        grey = np.repeat((err * 255.0).astype(np.uint8)[..., None], 3, axis=-1)
        rows.append(
            np.concatenate(
                [
                    colorize.depth(c.truth, limits),
                    colorize.depth(np.nan_to_num(c.measured, nan=np.inf), limits),
                    grey,
                ],
                axis=1,
            )
        )
    return np.concatenate(rows, axis=0)
