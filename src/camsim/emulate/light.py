"""Input light: read a rendered sequence as scene-linear RGB and scale it to photons.

A frame's linear value 1.0 is "white" (the brightest value an 8-bit sRGB PNG can hold). The linear
`Combined` EXR (`frames[i].linear_file_path`) is preferred; otherwise the sRGB PNG is decoded with the
exact sRGB EOTF (IEC 61966-2-1), which is right for the "Standard" view transform.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from camsim import srgb, transforms
from camsim.emulate import timebase
from camsim.emulate.common import prepare_output
from camsim.errors import DatasetError
from camsim.fileio import read_exr, read_image
from camsim.passes import FRAME, LINEAR

log = logging.getLogger(__name__)

LUMA = np.array([0.2126, 0.7152, 0.0722])
"""Rec. 709 / sRGB luminance weights of linear RGB."""


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Exact sRGB EOTF in float32 (the emulators' working precision)."""
    return srgb.eotf(np.asarray(v, dtype=np.float32))


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Inverse of `srgb_to_linear` (the sRGB OETF), input clipped to [0, 1]."""
    return srgb.oetf(np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0))


def photon_rate(flux: float, per: Literal["second", "frame"], fps: float) -> float:
    """Photons per pixel per second at white, from a flux given per second or per input frame."""
    return float(flux) * (fps if per == "frame" else 1.0)


@dataclass
class Sequence:
    """A rendered sequence folder: its metadata, frame times and poses, and linear-light frames."""

    root: Path
    meta: dict[str, Any]
    times: np.ndarray = field(repr=False)
    poses: np.ndarray = field(repr=False)
    fps: float = 0.0
    source: Literal["auto", "linear", "srgb"] = "auto"
    numbers: np.ndarray | None = field(default=None, repr=False)
    """The source frames' frame_number (float64); None: their index."""

    @property
    def n(self) -> int:
        return len(self.meta["frames"])

    @property
    def frame_numbers(self) -> np.ndarray:
        """Each source frame's frame_number (its index when the source has none)."""
        if self.numbers is not None and len(self.numbers) == self.n:
            return self.numbers
        return np.arange(self.n, dtype=np.float64)

    def place(self, x: float, frame_number: int) -> dict[str, Any]:
        """time, frame_number and source_frame_number (and camera, animated intrinsics) at fractional index x."""
        return timebase.place(self.times, self.frame_numbers, x, frame_number, self.meta)

    @property
    def light_name(self) -> str:
        return "linear EXR" if self.n and self.uses_linear(0) else "sRGB PNG (linearised)"

    @property
    def h(self) -> int:
        return int(self.meta["h"])

    @property
    def w(self) -> int:
        return int(self.meta["w"])

    def uses_linear(self, i: int) -> bool:
        fr = self.meta["frames"][i]
        if self.source == "srgb":
            return False
        if self.source == "linear" and LINEAR.key not in fr:
            raise DatasetError(f"frames[{i}] has no {LINEAR.key} (asked for --light linear)")
        return LINEAR.key in fr

    def linear(self, i: int) -> np.ndarray:
        """Frame i as HxWx3 float32 scene-linear RGB (white = 1)."""
        fr = self.meta["frames"][i]
        if self.uses_linear(i):
            img = read_exr(transforms.resolve_path(self.root, fr[LINEAR.key]), LINEAR.channels)
            img = np.asarray(img, dtype=np.float32)
        else:
            if FRAME.key not in fr:
                raise DatasetError(f"frames[{i}] has neither {FRAME.key} nor {LINEAR.key}")
            raw = read_image(transforms.resolve_path(self.root, fr[FRAME.key]))
            scale = 65535.0 if raw.dtype == np.uint16 else 255.0
            if raw.ndim == 2:
                raw = raw[..., None]
            raw = raw[..., :3] if raw.shape[2] >= 3 else np.repeat(raw[..., :1], 3, axis=2)
            img = srgb_to_linear(raw.astype(np.float32) / np.float32(scale))
        if img.shape[:2] != (self.h, self.w):
            raise DatasetError(
                f"frame {i} is {img.shape[1]}x{img.shape[0]}, transforms.json says {self.w}x{self.h}"
            )
        return np.maximum(img, 0.0, dtype=np.float32)


def open_sequence(
    path: str | os.PathLike[str], source: Literal["auto", "linear", "srgb"] = "auto"
) -> Sequence:
    """Read a sequence folder's transforms.json: times (s, `transforms.frame_times`, strictly increasing),
    poses, frame numbers and fps (the sequence's, else the mean rate of its times)."""
    root = Path(path)
    if root.name == "transforms.json":
        root = root.parent
    meta = transforms.read(root)
    frames = meta["frames"]
    if len(frames) < 2:
        raise DatasetError(f"{root}: need at least 2 frames to emulate a sensor, found {len(frames)}")
    if FRAME.key not in frames[0] and LINEAR.key not in frames[0]:
        raise DatasetError(f"{root}: frames carry no image paths (an NPY dataset is not a rendered sequence)")
    if "w" not in meta or "h" not in meta:
        probe = read_image(transforms.resolve_path(root, frames[0][FRAME.key]))
        meta = {**meta, "h": int(probe.shape[0]), "w": int(probe.shape[1])}
    try:
        times = transforms.frame_times(meta, increasing=True)
        fps = transforms.fps(meta) or float((len(times) - 1) / (times[-1] - times[0]))
        poses = transforms.poses(meta)
        numbers = transforms.frame_numbers(meta).astype(np.float64)
    except DatasetError as exc:
        raise DatasetError(f"{root}: {exc}") from None
    return Sequence(root=root, meta=meta, times=times, poses=poses, fps=fps, source=source, numbers=numbers)


def output_meta(
    seq: Sequence, conventions: dict[str, str], subframes: int = 1, **extra: Any
) -> dict[str, Any]:
    """Top-level transforms.json keys of an emulated dataset: what it inherits (intrinsics, size, scene,
    units), its own `conventions`, and its time base (`source_fps`, `subframes_per_source_frame`)."""
    keep = (
        "camera_model",
        "fl_x",
        "fl_y",
        "cx",
        "cy",
        "w",
        "h",
        "k1",
        "k2",
        "p1",
        "p2",
        "scene",
        "metres_per_unit",
    )
    meta = {k: seq.meta[k] for k in keep if k in seq.meta}
    meta["format"] = transforms.FORMAT_VERSION
    meta["conventions"] = conventions
    meta["source_fps"] = float(seq.fps)
    meta["subframes_per_source_frame"] = int(subframes)
    meta.update(extra)
    return meta


def run_emulator(
    run: Any,
    total: Any,
    cfg: Any,
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    overwrite: bool,
    progress: Any,
    workers: int,
    light: str | None = None,
) -> Path:
    """What every emulator does first: check the config, open the input, check it can give output (its
    progress total), and only then prepare the output folder; then run."""
    from camsim.derive import cpu_workers

    cfg.validate()
    threads = cpu_workers(workers)
    seq = open_sequence(input_dir, light or cfg.light)
    total(seq, cfg)
    return run(seq, prepare_output(output_dir, overwrite), cfg, progress, threads)
