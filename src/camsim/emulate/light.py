"""Input light: read a rendered sequence as scene-linear RGB and scale it to photons.

A frame's linear value 1.0 is "white" (the brightest value an 8-bit sRGB PNG can hold). The linear
`Combined` EXR (`frames[i].linear_file_path`) is preferred; otherwise the sRGB PNG is decoded with the
exact sRGB EOTF (IEC 61966-2-1), which is right for the "Standard" view transform.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from camsim import derive, srgb, transforms
from camsim.emulate import timebase
from camsim.emulate.common import prepare_output
from camsim.errors import DatasetError
from camsim.fileio import read_exr, read_image
from camsim.passes import ALBEDO, DEPTH, FRAME, LINEAR, NORMAL

log = logging.getLogger(__name__)

MIN_FRAMES = 2
"""Frames an emulator needs (time between two frames)."""

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


Light = Literal["auto", "linear", "srgb"]
"""Which image of a frame is read: the linear EXR when there is one (`auto`), only it, or the sRGB PNG."""


def code_to_linear(raw: np.ndarray) -> np.ndarray:
    """A frame image's sRGB code values (HxW or HxWxC, uint8 or uint16) as HxWx3 float32 linear light."""
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    if raw.ndim == 2:
        raw = raw[..., None]
    raw = raw[..., :3] if raw.shape[2] >= 3 else np.repeat(raw[..., :1], 3, axis=2)
    return srgb_to_linear(raw.astype(np.float32) / np.float32(scale))


def read_light(root: Path, fr: dict[str, Any], use_linear: bool, i: int) -> np.ndarray:
    """Frame record `fr` (frames[i] of the sequence in `root`) as stored: its linear EXR (float32) or its sRGB
    image linearised, before `Sequence.linear` checks its size and clips it at 0."""
    if use_linear:
        img = read_exr(transforms.resolve_path(root, fr[LINEAR.key]), LINEAR.channels)
        return np.asarray(img, dtype=np.float32)
    if FRAME.key not in fr:
        raise DatasetError(f"frames[{i}] has neither {FRAME.key} nor {LINEAR.key}")
    return code_to_linear(read_image(transforms.resolve_path(root, fr[FRAME.key])))


@dataclass
class Sequence:
    """A rendered sequence folder: its metadata, frame times and poses, and linear-light frames."""

    root: Path
    meta: dict[str, Any]
    times: np.ndarray = field(repr=False)
    poses: np.ndarray = field(repr=False)
    fps: float = 0.0
    light: Light = "auto"
    numbers: np.ndarray | None = field(default=None, repr=False)
    """The source frames' frame_number (float64); None: their index."""

    @property
    def source(self) -> str:
        """What the emulators record as their input (params.json `source`)."""
        return str(self.root)

    @property
    def source_sha256(self) -> str | None:
        """The input's identity a rerun compares (params.json `source_transforms_sha256`): SHA-256 of its
        transforms.json; None for a sequence with none on disk."""
        return derive.source_sha256(self.root) if (self.root / "transforms.json").is_file() else None

    @property
    def source_interpolation(self) -> dict[str, Any] | None:
        """How the input was interpolated on the fly (params.json `source_interpolation`); None: it was not."""
        return None

    def with_light(self, light: Light) -> Sequence:
        """This sequence read with another `light` (the same object when it already is)."""
        if light == self.light:
            return self
        other = copy.copy(self)
        other.light = light
        return other

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

    def has_linear(self, i: int) -> bool:
        """Frame i has a linear EXR."""
        return LINEAR.key in self.meta["frames"][i]

    def uses_linear(self, i: int) -> bool:
        if self.light == "srgb":
            return False
        has = self.has_linear(i)
        if self.light == "linear" and not has:
            raise DatasetError(f"frames[{i}] has no {LINEAR.key} (asked for --light linear)")
        return has

    def read_light(self, i: int) -> np.ndarray:
        """Frame i's light as stored (`read_light`), before `linear` checks its size and clips it."""
        return read_light(self.root, self.meta["frames"][i], self.uses_linear(i), i)

    def linear(self, i: int) -> np.ndarray:
        """Frame i as HxWx3 float32 scene-linear RGB (white = 1)."""
        img = self.read_light(i)
        if img.shape[:2] != (self.h, self.w):
            raise DatasetError(
                f"frame {i} is {img.shape[1]}x{img.shape[0]}, transforms.json says {self.w}x{self.h}"
            )
        return np.maximum(img, 0.0, dtype=np.float32)

    def has_pass(self, key: str) -> bool:
        """Every frame carries the per-frame file `key` (e.g. passes.ALBEDO.key)."""
        return all(key in fr for fr in self.meta["frames"])

    def _read_pass(self, i: int, kind: Any) -> np.ndarray:
        fr = self.meta["frames"][i]
        if kind.key not in fr:
            flag = f" (render with --render-config.{kind.flag})" if kind.flag else ""
            raise DatasetError(f"{self.root}: frames[{i}] has no {kind.key}{flag}")
        arr = kind.shaped(read_exr(transforms.resolve_path(self.root, fr[kind.key]), kind.channels))
        if arr.shape[:2] != (self.h, self.w):
            raise DatasetError(
                f"{kind.name} of frame {i} is {arr.shape[1]}x{arr.shape[0]}, not {self.w}x{self.h}"
            )
        return np.asarray(arr, dtype=np.float32)

    def depth(self, i: int) -> np.ndarray:
        """Frame i's planar z-depth, HxW float32 metres, +inf on world background."""
        z = self._read_pass(i, DEPTH)
        return np.where(np.isfinite(z) & (z > 0) & (z < 1e9), z, np.float32(np.inf)).astype(np.float32)

    def albedo(self, i: int) -> np.ndarray:
        """Frame i's scene-linear diffuse albedo, HxWx3 float32 (0 on background)."""
        return np.maximum(self._read_pass(i, ALBEDO), 0.0, dtype=np.float32)

    def normal(self, i: int) -> np.ndarray:
        """Frame i's unit surface normals in the camera frame (OpenGL axes), HxWx3 float32 (0 on background)."""
        return self._read_pass(i, NORMAL)

    def intrinsics(self, i: int) -> np.ndarray:
        """Frame i's 3x3 intrinsics (top-left pixel-corner origin), its own when animated."""
        return transforms.intrinsics(self.meta, i)


def radial_depth(z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Planar z-depth (HxW) as distance along each pixel centre's ray from the camera centre (pinhole `K`)."""
    h, w = z.shape
    u = (np.arange(w, dtype=np.float64) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(h, dtype=np.float64) + 0.5 - K[1, 2]) / K[1, 1]
    scale = np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)
    return (z * scale).astype(np.float32)


def open_sequence(path: str | os.PathLike[str], light: Light = "auto") -> Sequence:
    """Read a sequence folder's transforms.json: times (s, `transforms.frame_times`, strictly increasing),
    poses, frame numbers and fps (the sequence's, else the mean rate of its times)."""
    root = Path(path)
    if root.name == "transforms.json":
        root = root.parent
    meta = transforms.read(root)
    frames = meta["frames"]
    if len(frames) < MIN_FRAMES:
        raise DatasetError(
            f"{root}: need at least {MIN_FRAMES} frames to emulate a sensor, found {len(frames)}"
        )
    if FRAME.key not in frames[0] and LINEAR.key not in frames[0]:
        raise DatasetError(f"{root}: frames carry no image paths (an NPY dataset is not a rendered sequence)")
    meta = with_size(root, meta, frames[0])
    return Sequence(root=root, meta=meta, light=light, **timeline(root, meta))


def with_size(root: Path, meta: dict[str, Any], first: dict[str, Any]) -> dict[str, Any]:
    """`meta` with `w` and `h`: its own, else those of the image of frame record `first` (below `root`)."""
    if "w" in meta and "h" in meta:
        return meta
    if FRAME.key not in first:
        raise DatasetError(f"{root}: transforms.json gives no image size (w, h) and frames[0] no image")
    probe = read_image(transforms.resolve_path(root, first[FRAME.key]))
    return {**meta, "h": int(probe.shape[0]), "w": int(probe.shape[1])}


def timeline(where: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """A sequence's `times`, `fps`, `poses` and `numbers` (the `Sequence` fields) from its transforms.json;
    errors name `where`."""
    try:
        times = transforms.frame_times(meta, increasing=True)
        fps = transforms.fps(meta) or float((len(times) - 1) / (times[-1] - times[0]))
        poses = transforms.poses(meta)
        numbers = transforms.frame_numbers(meta).astype(np.float64)
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    return {"times": times, "fps": fps, "poses": poses, "numbers": numbers}


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
        "k0",
        "k1",
        "k2",
        "k3",
        "k4",
        "p1",
        "p2",
        "fisheye_fov",
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
