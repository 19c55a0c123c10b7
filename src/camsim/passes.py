"""The pass registry: one record per kind of per-frame file a camsim sequence can hold.

A record says everything the rest of camsim needs to know about a kind: its names (the loader's modality
and item key, the `--render-config` flag, aliases), where its files go (folder, file prefix, extension),
its `transforms.json` key, its channels and dtype, the Blender view-layer pass it is converted from, and
how to decode, check and colorize it and how interpolation treats it. The config, the ground-truth
writer (`groundtruth`, `layout`), `transforms`, the loader, `validate`, `convert`, `preview`,
interpolation and the nerfstudio export read these records; adding a kind means one record here plus
its own conversion code (from Cycles in groundtruth.py, the warp in interpolate/).

`SEQUENCE_FILES` lists the per-sequence files a `transforms.json` names (objects.json, events.h5).

One module, just over 400 lines: every kind's record in one place is the point of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camsim import colorize
from camsim.errors import DatasetError
from camsim.fileio import read_exr, read_exr_parts, read_image
from camsim.sceneflow import CHANNELS as SCENE_FLOW_CHANNELS

Decode = Callable[[str | os.PathLike[str]], np.ndarray]
Check = Callable[[np.ndarray], str | None]
Colorize = Callable[[np.ndarray, Any], np.ndarray]


@dataclass(frozen=True)
class Pass:
    """One kind of per-frame file (see the module docstring)."""

    name: str
    """The loader's modality name and the key of the array in an item dict ("depth")."""
    key: str
    """Key of its path in transforms.json: per frame (IMG), or at the top level naming the .npy (NPY)."""
    folder: str
    """Sub-folder of a sequence holding its files; `FOLDER.npy` is its array in the NPY format."""
    prefix: str
    """File name prefix: FOLDER/PREFIX_NNNNNN.EXT, NNNNNN = frame_number."""
    ext: str
    """File extension; empty for the RGB frames, whose format is the render's (.png, .jpg)."""
    channels: tuple[str, ...] | None
    """EXR channel names, in the order of the array's last axis (one channel: the array is HxW). None: an
    image (PNG/JPEG, or EXR with R, G, B(, A)) of 1 to 4 channels, always HxWxC."""
    dtype: str
    """Element type of the decoded array."""
    description: str
    """What the array holds (units, frame, background)."""
    decode: Decode = field(repr=False, compare=False)
    """Read one file into the array a reader gets."""
    check: Check = field(repr=False, compare=False)
    """Why an array is not a valid frame of this kind (shape, dtype, NaNs), or None."""
    colorize: Colorize | None = field(default=None, repr=False, compare=False)
    """HxWx3 uint8 picture of one frame for people (debug PNGs, preview videos); the second argument is a
    sequence-wide colour limit or None."""
    flag: str | None = None
    """The RenderConfig flag that asks a render for it ("depths"); also its name in info.json's
    `ground_truth`. None: not a rendered ground truth."""
    aliases: tuple[str, ...] = ()
    """Other names the loader accepts for it."""
    blender_pass: str | None = None
    """The Cycles view-layer pass it is converted from (multilayer EXR pass name)."""
    blender_channels: str = ""
    """The channels of `blender_pass` it reads, e.g. "XYZW"."""
    debug_png: bool = False
    """A render writes a colorized PNG of it under debug/ (--render-config.debug)."""
    interpolation: str | None = None
    """How `camsim interpolate` treats it: "colour blend", "nearest surface", "heaviest contribution",
    "mask" (written by interpolation), or None (not carried into an interpolated sequence)."""
    interpolation_needs: bool = False
    """Interpolation refuses a sequence without it."""
    only_where: str | None = None
    """None: every frame that has one kind has this one too. Else the per-frame boolean key that marks the
    frames holding it; the others have none, which reads as all zeros (a hole mask: nothing missing)."""
    preview: str | None = None
    """Name of its preview video (`camsim preview`), None: no video."""
    preview_column: int = 0
    """Column of its tile in the preview grid (left to right)."""
    stereo_only: bool = False
    """Written only in the left camera's folder of a rectified stereo pair (--render-config.cameras, camsim.rig):
    a render asking for it writes it there and nowhere else."""

    def relpath(self, frame: int, frame_ext: str = ".png") -> str:
        """Path of one file relative to the sequence folder, e.g. depths/depth_000012.exr."""
        return f"{self.folder}/{self.prefix}_{frame:06d}{self.ext or frame_ext}"

    def debug_relpath(self, frame: int) -> str:
        """Path of its colorized debug PNG, e.g. debug/depths/depth_000012.png."""
        return f"debug/{self.folder}/{self.prefix}_{frame:06d}.png"

    @property
    def npy_name(self) -> str:
        """File name of its array in an NPY sequence, e.g. depths.npy."""
        return f"{self.folder}.npy"

    @property
    def is_image(self) -> bool:
        """An image of varying channel count (frames, raw mosaics), always HxWxC."""
        return self.channels is None

    def shaped(self, arr: np.ndarray) -> np.ndarray:
        """The array as readers get it: images HxWxC (a channel axis added to grey ones), one-channel kinds
        HxW (as in their EXR files)."""
        return _shaped(arr, self.channels)


def _shaped(arr: np.ndarray, channels: tuple[str, ...] | None) -> np.ndarray:
    if channels is None:
        return arr[..., None] if arr.ndim == 2 else arr
    return arr[..., 0] if len(channels) == 1 and arr.ndim == 3 and arr.shape[-1] == 1 else arr


# ------------------------------------------------------------------------------------------- decoding


def frame_exr_channels(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Channel order of an EXR frame: R, G, B(, A) when present, else Y, else whatever it has."""
    names = set(read_exr_parts(path))
    rgba = tuple(c for c in ("R", "G", "B", "A") if c in names)
    if rgba:
        return rgba
    return ("Y",) if "Y" in names else tuple(sorted(names))


def _read_any(path: str | os.PathLike[str], channels: tuple[str, ...] | None) -> np.ndarray:
    """Decode by suffix: EXR (named channels; an image's own), .npy, else PNG/JPEG."""
    suffix = Path(path).suffix.lower()
    if suffix == ".exr":
        return read_exr(path, channels if channels is not None else frame_exr_channels(path))
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from exc
    return read_image(path)


def _decoder(channels: tuple[str, ...] | None) -> Decode:
    return lambda path: _shaped(_read_any(path, channels), channels)


def _decode_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """A hole mask PNG (0 or 255) as HxW bool, True = hole."""
    arr = _read_any(path, ("Y",))
    arr = arr[..., 0] if arr.ndim == 3 else arr
    return arr if arr.dtype == np.bool_ else arr > 127


# ------------------------------------------------------------------------------------------- checking


def _check_image(name: str, dtypes: tuple[type, ...], dtype_text: str) -> Check:
    def check(arr: np.ndarray) -> str | None:
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
            return f"{name} has shape {arr.shape}, expected HxWx(1-4)"
        if arr.dtype.kind == "f":
            return f"{name} has NaNs" if np.isnan(arr).any() else None
        if arr.dtype not in dtypes:
            return f"{name} has dtype {arr.dtype}, expected {dtype_text}"
        return None

    return check


def _shape_error(name: str, arr: np.ndarray, nch: int) -> str | None:
    expected = arr.shape[:2] if nch == 1 else (*arr.shape[:2], nch)
    if arr.ndim != len(expected) or tuple(arr.shape) != tuple(expected):
        return f"{name} has shape {arr.shape}, expected {nch} channel(s)"
    return None


def _check_float(name: str, nch: int, finite: bool = False, non_negative: bool = False) -> Check:
    def check(arr: np.ndarray) -> str | None:
        why = _shape_error(name, arr, nch)
        if why:
            return why
        if arr.dtype.kind != "f":
            return f"{name} has dtype {arr.dtype}, expected float"
        if np.isnan(arr).any():
            return f"{name} has {int(np.isnan(arr).sum())} NaN values"
        if non_negative and (arr < 0).any():
            return f"{name} has negative values"
        if finite and not np.isfinite(arr).all():
            return f"{name} has infinite values"
        return None

    return check


def _check_nan_or_finite(name: str, nch: int) -> Check:
    """Floats that are finite or NaN (no value there), never infinite: scene flow."""

    def check(arr: np.ndarray) -> str | None:
        why = _shape_error(name, arr, nch)
        if why:
            return why
        if arr.dtype.kind != "f":
            return f"{name} has dtype {arr.dtype}, expected float"
        if np.isinf(arr).any():
            return f"{name} has {int(np.isinf(arr).sum())} infinite values"
        return None

    return check


def _check_kind(name: str, kinds: str, dtype_text: str) -> Check:
    """One channel of an integer kind (`kinds`: numpy dtype kinds, "u" unsigned, "b" bool)."""

    def check(arr: np.ndarray) -> str | None:
        why = _shape_error(name, arr, 1)
        if why or arr.dtype.kind in kinds:
            return why
        return f"{name} has dtype {arr.dtype}, expected {dtype_text}"

    return check


# ------------------------------------------------------------------------------------------- registry

FRAME = Pass(
    name="frame",
    key="file_path",
    folder="frames",
    prefix="frame",
    ext="",
    channels=None,
    dtype="uint8 or uint16 (PNG, JPEG), float32 (EXR), bool (binary frames)",
    description="the RGB frame through the scene's colour management (or a sensor's output)",
    decode=_decoder(None),
    check=_check_image("frame", (np.uint8, np.uint16, np.bool_), "uint8 or uint16"),
    colorize=lambda a, _limit: colorize.image(a),
    aliases=("rgb",),  # VisionSim's name
    blender_pass="Combined",  # saved by Blender itself, through the scene's colour management
    interpolation="colour blend",
    interpolation_needs=True,
    preview="frame",
    preview_column=0,
)
DEPTH = Pass(
    name="depth",
    key="depth_file_path",
    folder="depths",
    prefix="depth",
    ext=".exr",
    channels=("Y",),
    dtype="float32",
    description="planar z-depth in metres, background +inf",
    decode=_decoder(("Y",)),
    check=_check_float("depth", 1, non_negative=True),
    colorize=lambda a, limit: colorize.depth(a, limit),
    flag="depths",
    blender_pass="Depth",
    blender_channels="Z",
    debug_png=True,
    interpolation="nearest surface",
    interpolation_needs=True,
    preview="depth",
    preview_column=2,
)
NORMAL = Pass(
    name="normal",
    key="normal_file_path",
    folder="normals",
    prefix="normal",
    ext=".exr",
    channels=("R", "G", "B"),
    dtype="float32",
    description="unit surface normal in the camera frame (OpenGL axes), background 0",
    decode=_decoder(("R", "G", "B")),
    check=_check_float("normal", 3, finite=True),
    colorize=lambda a, _limit: colorize.normals(a),
    flag="normals",
    blender_pass="Normal",
    blender_channels="XYZ",
    debug_png=True,
    interpolation="nearest surface",
    preview="normal",
    preview_column=4,
)
FLOW = Pass(
    name="flow",
    key="flow_file_path",
    folder="flows",
    prefix="flow",
    ext=".exr",
    channels=("R", "G", "B", "A"),
    dtype="float32",
    description="forward (dx, dy) and backward (dx, dy) optical flow in pixels, y down",
    decode=_decoder(("R", "G", "B", "A")),
    check=_check_float("flow", 4, finite=True),
    colorize=lambda a, limit: colorize.flow(a, limit),  # the forward flow (channels R, G)
    flag="flows",
    blender_pass="Vector",
    blender_channels="XYZW",
    debug_png=True,
    interpolation="nearest surface",
    interpolation_needs=True,
    preview="flow",
    preview_column=3,
)
SEGMENTATION = Pass(
    name="segmentation",
    key="segmentation_file_path",
    folder="segmentations",
    prefix="segmentation",
    ext=".exr",
    channels=("Y",),
    dtype="uint32",
    description="object ids, 0 = background",
    decode=_decoder(("Y",)),
    check=_check_kind("segmentation", "u", "uint32"),
    colorize=lambda a, _limit: colorize.segmentation(a),
    flag="segmentations",
    blender_pass="Object Index",
    blender_channels="X",
    debug_png=True,
    interpolation="heaviest contribution",
    preview="segmentation",
    preview_column=5,
)
SEMANTIC = Pass(
    name="semantic",
    key="semantic_file_path",
    folder="semantics",
    prefix="semantic",
    ext=".exr",
    channels=("Y",),
    dtype="uint32",
    description="category ids (transforms.json categories) of the segmentation's objects, 0 = background",
    decode=_decoder(("Y",)),
    check=_check_kind("semantic", "u", "uint32"),
    colorize=lambda a, _limit: colorize.segmentation(a),
    flag="semantics",
    blender_pass="Object Index",  # the segmentation through the sequence's id -> category lookup
    blender_channels="X",
    debug_png=True,
)
SCENE_FLOW = Pass(
    name="scene_flow",
    key="scene_flow_file_path",
    folder="scene_flows",
    prefix="scene_flow",
    ext=".exr",
    channels=SCENE_FLOW_CHANNELS,
    dtype="float32",
    description="3-D motion (metres, this frame's camera axes) of the surface point at each pixel to the next "
    "frame (forward.X/Y/Z) and to the previous one (backward.X/Y/Z); NaN without a surface or a rigid motion",
    decode=_decoder(SCENE_FLOW_CHANNELS),
    check=_check_nan_or_finite("scene_flow", 6),
    flag="scene_flows",
    blender_pass="Object Index",  # with Depth, which every render has; the motion comes from the matrices
    blender_channels="X",
)
DISPARITY = Pass(
    name="disparity",
    key="disparity_file_path",
    folder="disparities",
    prefix="disparity",
    ext=".exr",
    channels=("Y",),
    dtype="float32",
    description="stereo disparity in pixels of the left camera of a rectified pair, fl_x * baseline / planar "
    "depth (the right camera sees the surface at x - disparity, same y); background 0",
    decode=_decoder(("Y",)),
    check=_check_float("disparity", 1, finite=True, non_negative=True),
    colorize=lambda a, limit: colorize.disparity(a, limit),
    flag="disparities",
    blender_pass="Depth",  # derived from the planar depth and the rig's baseline
    blender_channels="Z",
    debug_png=True,
    stereo_only=True,
)
LINEAR = Pass(
    name="linear",
    key="linear_file_path",
    folder="linear",
    prefix="linear",
    ext=".exr",
    channels=("R", "G", "B"),
    dtype="float32",
    description="scene-linear light (Cycles' Combined pass before colour management)",
    decode=_decoder(("R", "G", "B")),
    check=_check_float("linear", 3),
    colorize=lambda a, _limit: colorize.image(a),
    flag="linear",
    blender_pass="Combined",
    blender_channels="RGB",
    interpolation="colour blend",
)
ALBEDO = Pass(
    name="albedo",
    key="albedo_file_path",
    folder="albedo",
    prefix="albedo",
    ext=".exr",
    channels=("R", "G", "B"),
    dtype="float32",
    description="scene-linear diffuse reflectance (Cycles' Diffuse Color pass: the surface's diffuse albedo "
    "averaged over the pixel's samples, no light; 0 on world background and on purely glossy or emissive "
    "surfaces)",
    decode=_decoder(("R", "G", "B")),
    check=_check_float("albedo", 3, non_negative=True),
    colorize=lambda a, _limit: colorize.image(a),
    flag="albedo",
    blender_pass="Diffuse Color",
    blender_channels="RGB",
    interpolation="colour blend",
)
HOLE_MASK = Pass(
    name="hole_mask",
    key="hole_mask_file_path",
    folder="masks",
    prefix="hole",
    ext=".png",
    channels=("Y",),
    dtype="bool",
    description="interpolated frames: True (PNG 255) where neither neighbour covered the pixel",
    decode=_decode_mask,
    check=_check_kind("hole_mask", "b", "bool"),
    colorize=lambda a, _limit: colorize.holes(None, a),
    interpolation="mask",
    only_where="interpolated",
    preview="masks",
    preview_column=1,
)
RAW = Pass(
    name="raw",
    key="raw_file_path",
    folder="raw",
    prefix="raw",
    ext=".png",
    channels=None,
    dtype="uint16",
    description="an emulated RGB sensor's digital numbers before the ISP (Bayer mosaic: one channel)",
    decode=_decoder(None),
    check=_check_image("raw", (np.uint8, np.uint16), "uint16"),
    colorize=lambda a, _limit: colorize.image(a),
)

PASSES: tuple[Pass, ...] = (
    FRAME, DEPTH, NORMAL, FLOW, SEGMENTATION, SEMANTIC, SCENE_FLOW, DISPARITY, LINEAR, ALBEDO, HOLE_MASK, RAW
)  # fmt: skip
"""Every kind, in the order of the loader's modalities (frame first)."""
RENDERED: tuple[Pass, ...] = tuple(p for p in PASSES if p.flag is not None)
"""The ground truth a render can write, in output order (the order of their keys in a frame's record)."""
BY_NAME: dict[str, Pass] = {n: p for p in PASSES for n in (p.name, *p.aliases)}
"""Kinds by loader name and alias."""
BY_FLAG: dict[str, Pass] = {p.flag: p for p in RENDERED if p.flag is not None}
BY_KEY: dict[str, Pass] = {p.key: p for p in PASSES}
KEYS: tuple[str, ...] = tuple(p.key for p in PASSES)
"""Every per-frame path key of transforms.json."""
PREVIEWS: tuple[Pass, ...] = tuple(sorted((p for p in PASSES if p.preview), key=lambda p: p.preview_column))
"""Kinds with a preview video, in grid column order."""


def known_names() -> str:
    """The loader's names, with their aliases: 'frame (or rgb), depth, ...'."""
    return ", ".join(f"{p.name} (or {', '.join(p.aliases)})" if p.aliases else p.name for p in PASSES)


def blender_passes(flags: tuple[str, ...]) -> list[str]:
    """The Blender passes (besides Combined) that the ground-truth kinds `flags` (RenderSettings.ground_truth)
    are made from, in registry order: what the host asks the service to write."""
    wanted = {BY_FLAG[f].blender_pass for f in flags if f in BY_FLAG}
    found = [p.blender_pass for p in RENDERED if p.blender_pass in wanted and p.blender_pass != "Combined"]
    return list(dict.fromkeys(found))  # kinds made from one pass (segmentation, scene flow) ask for it once


def by_name(name: str) -> Pass:
    """The kind called `name` (or an alias, any case), or a DatasetError listing the known ones."""
    p = BY_NAME.get(name.lower()) if isinstance(name, str) else None
    if p is None:
        raise DatasetError(f"unknown modality {name!r}; known: {known_names()}")
    return p


# ------------------------------------------------------------------------------ per-sequence files


@dataclass(frozen=True)
class SequenceFile:
    """A file a transforms.json names once for the whole sequence (top-level key)."""

    key: str
    """Its top-level key in transforms.json."""
    filename: str
    """Its usual name in the sequence folder."""
    description: str


OBJECTS = SequenceFile("objects_file_path", "objects.json", "rigid objects' matrices per frame (render)")
EVENTS = SequenceFile("events_file_path", "events.h5", "events (t_us, x, y, p) of `camsim emulate events`")
LIDAR_HISTOGRAMS = SequenceFile(
    "histograms_file_path", "histograms.npy", "photon-count histograms (frames, H, W, B) of `emulate lidar`"
)
LIDAR_POINTS = SequenceFile(
    "points_file_path", "points.npy", "organised point clouds (frames, H, W) of `camsim emulate lidar`"
)
SEQUENCE_FILES: tuple[SequenceFile, ...] = (OBJECTS, EVENTS, LIDAR_HISTOGRAMS, LIDAR_POINTS)
"""Per-sequence files: a lossless conversion copies them; a derived sequence with other frames
(interpolation) drops them, since they describe the source's frames."""
