"""Export a camsim sequence as a nerfstudio dataset that `ns-train depth-nerfacto --data OUT` loads as-is.

What nerfstudio's own read path does (checked against nerfstudio 1.1.5 from PyPI, run on exports in the
tests, and the same logic in the repository's `nerfstudio/data/dataparsers/nerfstudio_dataparser.py`,
`data/datasets/depth_dataset.py`, `data/utils/data_utils.py`, `models/depth_nerfacto.py`,
`model_components/losses.py`), and what this exporter writes for it:

- `transforms.json` next to the files; every path relative to it. Frames are sorted by file name before
  use, so names carry the sequence index (`frame_00001`...) and keep the time order.
- Intrinsics: a top-level `fl_x`/`fl_y`/`cx`/`cy` wins over per-frame values (a key is either fixed for
  all frames or read from every frame). camsim writes the first frame's values at the top *and* per-frame
  values when the lens is animated; nerfstudio would silently use the first frame's lens everywhere, so
  an animated lens is written per frame only. Pixel centres at +0.5 and the OpenGL camera
  (`[(u - cx)/fx, -(v - cy)/fy, -1]`) are camsim's own conventions; `transform_matrix` is copied.
- Images are read with PIL as `uint8` with 3 or 4 channels: 8-bit PNG/JPEG frames are copied, 16-bit ones
  are rounded to 8 bits.
- Depth is read with `cv2.imread(path, cv2.IMREAD_ANYDEPTH)` and multiplied by the dataparser's
  `depth_unit_scale_factor` (a command-line option, default 1e-3 = millimetres; nerfstudio does not read
  it from transforms.json) and by the dataparser's pose scale. The depth losses treat depth <= 0 as "no
  depth" and, by default (`is_euclidean_depth=False`), multiply it by the ray direction's norm: they
  expect planar z-depth, which is what camsim renders, so values are only quantised, never converted.
  Background (+inf), NaN and interpolation holes become 0.
- `mask_path` (PIL, nonzero = use the pixel) is written only for interpolated sequences with holes, so
  nerfstudio never samples a pixel that neither neighbour saw.

One module, over 400 lines: it restates nerfstudio's read path (intrinsics, depth units, file order) next to
the code that targets it, so a change in either is checked against the other in one place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim import transforms
from camsim.errors import DatasetError, OutputWriteError, UserInputError
from camsim.export.common import staging_folder, swap_into_place
from camsim.fileio import write_image, write_json_atomic
from camsim.loader import SequenceDataset, find_sequences
from camsim.passes import HOLE_MASK

EXPORT_FORMAT = "camsim-nerfstudio/1"
"""Value of `camsim_export.format`: marks a folder this exporter wrote (and may replace with --overwrite)."""
UINT16_MAX = 65535
NERFSTUDIO_DEPTH_UNIT = 1e-3
"""nerfstudio's default `depth_unit_scale_factor` (millimetres): no flag is needed for it."""
DEPTH_TEXT = (
    "16-bit PNG, planar z-depth (along the optical axis, what nerfstudio expects unless "
    "is_euclidean_depth) = value x depth_unit_scale_factor metres, rounded to the nearest unit; "
    "0 = no depth (world background, interpolation holes, beyond max_depth_m)"
)
_INTRINSICS = ("fl_x", "fl_y", "cx", "cy")
_DISTORTION = ("k1", "k2", "p1", "p2")

Progress = Callable[[int], None]


# ------------------------------------------------------------------------------------------------ pure


def choose_depth_unit(max_depth_m: float) -> float:
    """Metres per depth unit: 0.001 (nerfstudio's default) when `max_depth_m` fits in 65535 mm, else the
    smallest of 0.002, 0.005, 0.01, 0.02, ... (1-2-5 steps) that holds it."""
    if not np.isfinite(max_depth_m) or max_depth_m <= 0:
        return NERFSTUDIO_DEPTH_UNIT
    exponent = -3
    while True:
        for mantissa in (1, 2, 5):
            unit = float(f"{mantissa}e{exponent}")
            if max_depth_m / unit <= UINT16_MAX:
                return unit
        exponent += 1


def valid_depth(depth: np.ndarray, invalid: np.ndarray | None = None) -> np.ndarray:
    """Pixels with a usable depth: finite, positive, and not flagged `invalid` (a hole)."""
    z = np.asarray(depth)
    ok = np.isfinite(z) & (z > 0)
    return ok if invalid is None else ok & ~invalid


def quantise_depth(
    depth: np.ndarray,
    unit: float,
    *,
    max_depth: float | None = None,
    invalid: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Planar depth in metres -> the uint16 image nerfstudio reads (value x `unit` = metres, 0 = no depth).

    Rounded to the nearest unit (error <= unit/2; depths below unit/2 become 1 unit). Returns the image and
    how many usable depths were written as 0 because they lie beyond `max_depth` or 65535 units.
    """
    z = np.asarray(depth, dtype=np.float64)
    ok = valid_depth(z, invalid)
    q = np.zeros(z.shape, np.float64)
    np.divide(z, unit, out=q, where=ok)
    q = np.rint(q)
    keep = ok & (q <= UINT16_MAX)
    if max_depth is not None:
        keep &= z <= max_depth
    image = np.where(keep, np.clip(q, 1, UINT16_MAX), 0).astype(np.uint16)
    return image, int(ok.sum() - keep.sum())


def frame_intrinsics(meta: dict[str, Any]) -> list[dict[str, float]]:
    """fl_x, fl_y, cx, cy of every frame (per-frame values where camsim wrote them, else the top level)."""
    out = []
    for i in range(len(meta["frames"])):
        K = transforms.intrinsics(meta, i)
        out.append(
            {"fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])}
        )
    return out


def frame_stem(index: int, count: int) -> str:
    """`frame_00001` for index 0: 1-based like ns-process-data, zero-padded so names sort in time order."""
    return f"frame_{index + 1:0{max(5, len(str(count)))}d}"


def train_command(data: str | os.PathLike[str], unit: float) -> str:
    """The ns-train command line that loads an export with depth supervision."""
    cmd = f"ns-train depth-nerfacto --data {shlex.quote(str(data))}"
    if unit != NERFSTUDIO_DEPTH_UNIT:
        cmd += f" nerfstudio-data --depth-unit-scale-factor {unit:g}"
    return cmd


def nerfstudio_transforms(
    meta: dict[str, Any],
    images: list[str],
    depths: list[str],
    masks: list[str] | None,
    unit: float,
    max_depth: float | None = None,
) -> dict[str, Any]:
    """The transforms.json of an export (pure): nerfstudio's keys, plus camsim's frame numbers and times."""
    intrinsics = frame_intrinsics(meta)
    fixed = all(k == intrinsics[0] for k in intrinsics)
    out: dict[str, Any] = {"camera_model": "OPENCV", "w": int(meta["w"]), "h": int(meta["h"])}
    if fixed:
        out.update(intrinsics[0])
    out.update({k: float(meta.get(k, 0.0)) for k in _DISTORTION})
    if "k3" in meta:  # a distortion's sixth-order term (nerfstudio's OPENCV reads k3 as OpenCV does)
        out["k3"] = float(meta["k3"])
    out["depth_unit_scale_factor"] = unit
    info = {
        "format": EXPORT_FORMAT,
        "source_format": meta.get("format"),
        "scene": meta.get("scene"),
        "sequence_id": meta.get("sequence_id") or None,
        "fps": meta.get("fps"),
        "depth": DEPTH_TEXT,
        "depth_quantisation_m": unit / 2,
        "max_depth_m": max_depth,
        "train": train_command(".", unit),
    }
    out["camsim_export"] = {k: v for k, v in info.items() if v is not None}
    frames = []
    for i, fr in enumerate(meta["frames"]):
        entry: dict[str, Any] = {
            "file_path": images[i],
            "transform_matrix": fr["transform_matrix"],
            "depth_file_path": depths[i],
        }
        if masks is not None:
            entry["mask_path"] = masks[i]
        if not fixed:
            entry.update(intrinsics[i])
        entry.update({k: fr[k] for k in ("frame_number", "time") if k in fr})
        frames.append(entry)
    out["frames"] = frames
    return out


# ------------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class SequencePlan:
    source: Path
    """The camsim sequence folder."""
    relative: Path
    """Where its export goes below the output folder (`.` when exporting one sequence)."""
    meta: dict[str, Any]
    """Its validated transforms.json."""
    masks: bool
    """Write nerfstudio masks (interpolated frames with holes)."""


@dataclass(frozen=True)
class NerfstudioPlan:
    """Everything checked before anything is written."""

    source: Path
    output: Path
    sequences: tuple[SequencePlan, ...]
    depth_unit_scale_factor: float | None
    """Metres per depth unit; None: chosen per sequence from its farthest depth."""
    max_depth: float | None
    replace: bool
    """The output folder exists (empty, or a previous export replaced with --overwrite)."""

    @property
    def frames(self) -> int:
        return sum(len(s.meta["frames"]) for s in self.sequences)

    @property
    def steps(self) -> int:
        """Progress steps: one per frame written, plus one per frame scanned for the depth range."""
        return self.frames * (1 if self.depth_unit_scale_factor is not None else 2)


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not (np.isfinite(value) and value > 0):
        raise UserInputError(f"{flag} must be a positive number of metres, got {value}")


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _previous_export_folders(out: Path) -> set[Path]:
    folders = set()
    for seq in find_sequences(out):
        try:
            marker = json.loads((seq / "transforms.json").read_bytes()).get("camsim_export", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(marker, dict) and marker.get("format") == EXPORT_FORMAT:
            folders.add(seq)
    return folders


def _check_output(src: Path, out: Path, overwrite: bool) -> bool:
    """Refuse outputs that overlap the source, are files, or hold something other than an export.
    Returns whether the output folder exists (and will be replaced)."""
    real_src, real_out = Path(os.path.realpath(src)), Path(os.path.realpath(out))
    if _is_within(real_out, real_src) or _is_within(real_src, real_out):
        raise UserInputError(f"output {out} overlaps the input {src}; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserInputError(f"output path exists and is not a folder: {out}")
    # The staging folder is made beside `out`, so the folder above it (or the nearest one that exists)
    # must be writable.
    parent = out.parent if out.exists() else next(p for p in out.parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserInputError(f"cannot write to {parent}")
    if not out.exists():
        return False
    if not any(out.iterdir()):
        return True
    if not overwrite:
        raise UserInputError(f"{out} is not empty (pass --overwrite to replace a previous export there)")
    exports = _previous_export_folders(out)
    for path in out.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        if not any(_is_within(path, e) for e in exports):
            raise UserInputError(
                f"{out} holds {path.relative_to(out)}, which is not part of a camsim nerfstudio export; "
                "refusing to replace it"
            )
    return True


def _has_holes(frame: dict[str, Any]) -> bool:
    """An interpolated frame with pixels neither neighbour saw (`hole_fraction` > 0)."""
    value = frame.get("hole_fraction")
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _plan_sequence(seq: Path, relative: Path) -> SequencePlan:
    meta = transforms.read(seq)
    if not meta["frames"]:
        raise DatasetError(f"{seq}: transforms.json lists no frames")
    ds = SequenceDataset(seq, meta=meta)
    modalities = ds.modalities()
    if "depth" not in modalities:
        raise DatasetError(
            f"{seq} has no depth for every frame; nerfstudio's depth supervision needs it "
            "(render with depth ground truth)"
        )
    if "frame" not in modalities:
        raise DatasetError(f"{seq}: not every frame has an image (file_path)")
    lens = transforms.lens_of(meta)
    if lens.model != "OPENCV":
        raise DatasetError(
            f"{seq}: camera_model {lens.model}: the nerfstudio export writes OPENCV cameras with planar z-depth "
            "(a fisheye's depth is along the ray)"
        )
    for key in ("w", "h"):
        if key not in meta:
            raise DatasetError(f"{seq}: transforms.json has no '{key}'")
    for i, fr in enumerate(meta["frames"]):
        if not all(k in fr or k in meta for k in _INTRINSICS):
            raise DatasetError(f"{seq}: frames[{i}] has no intrinsics (fl_x, fl_y, cx, cy)")
    holes = [fr for fr in meta["frames"] if _has_holes(fr)]
    for fr in holes:
        if HOLE_MASK.key not in fr and HOLE_MASK.key not in meta:
            raise DatasetError(f"{seq}: a frame with hole_fraction > 0 has no {HOLE_MASK.key}")
    return SequencePlan(seq, relative, meta, masks=bool(holes))


def plan_nerfstudio(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    depth_unit_scale_factor: float | None = None,
    max_depth: float | None = None,
) -> NerfstudioPlan:
    """Check the inputs and the output folder (reads transforms.json files only; writes nothing).

    `source` is one sequence, or a folder of sequences (each exported below `output`, paths mirrored).
    Raises UserInputError (DatasetError for a bad sequence) with a one-line reason.
    """
    src, out = Path(source), Path(os.path.abspath(output))  # absolute: "." has no name to stage beside
    _positive(depth_unit_scale_factor, "--depth-unit-scale-factor")
    _positive(max_depth, "--max-depth")
    if not src.is_dir():
        raise UserInputError(f"{src} is not a sequence folder")
    seqs = find_sequences(src)
    if not seqs:
        raise UserInputError(f"{src} is not a camsim sequence (no transforms.json in it or below it)")
    replace = _check_output(src, out, overwrite)
    plans = tuple(_plan_sequence(s, s.relative_to(src)) for s in seqs)
    return NerfstudioPlan(src, out, plans, depth_unit_scale_factor, max_depth, replace)


# ------------------------------------------------------------------------------------------------ write


@dataclass(frozen=True)
class NerfstudioExport:
    """What one exported sequence holds."""

    source: Path
    output: Path
    frames: int
    depth_unit_scale_factor: float
    """Metres per unit of the depth PNGs; pass it to ns-train unless it is 0.001."""
    depth_coverage: float
    """Fraction of pixels with a depth (the rest are 0: background, holes, beyond the range)."""
    dropped_depths: int
    """Finite depths written as 0 because they were beyond --max-depth or 65535 units."""
    per_frame_intrinsics: bool
    masks: bool
    notes: tuple[str, ...]

    @property
    def depth_error_m(self) -> float:
        """Largest depth error from quantisation: half a unit."""
        return self.depth_unit_scale_factor / 2

    @property
    def train(self) -> str:
        return train_command(self.output, self.depth_unit_scale_factor)


def _to_uint8(frame: np.ndarray, where: str) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise DatasetError(f"{where}: frames of shape {frame.shape} are not grey, RGB or RGBA images")
    if frame.dtype == np.uint8:
        out = frame
    elif frame.dtype == np.uint16:
        out = ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    else:
        raise DatasetError(f"{where}: frames of type {frame.dtype} cannot be nerfstudio images (8 or 16 bit)")
    return out[..., 0] if out.shape[2] == 1 else out


def _write_frame_image(ds: SequenceDataset, i: int, frame: np.ndarray, folder: Path, stem: str) -> str:
    """Copy an 8-bit PNG/JPEG frame as it is; re-encode anything else as an 8-bit PNG. Returns its name."""
    where = f"{ds.root}: frame {i}"
    image = _to_uint8(frame, where)
    src = None if ds.is_npy else ds.file_for("frame", i)
    suffix = src.suffix.lower() if src is not None else ""
    if src is not None and frame.dtype == np.uint8 and suffix in (".png", ".jpg", ".jpeg"):
        name = stem + (".png" if suffix == ".png" else ".jpg")
        shutil.copyfile(src, folder / name)
        return name
    write_image(folder / f"{stem}.png", image)
    return f"{stem}.png"


def _hole(ds: SequenceDataset, plan: SequencePlan, i: int) -> np.ndarray | None:
    """The hole mask of frame `i` (True = hole), None when the frame has none."""
    fr = plan.meta["frames"][i]
    if not plan.masks or (HOLE_MASK.key not in fr and HOLE_MASK.key not in plan.meta):
        return None
    return ds.read(HOLE_MASK.name, i)


def _depth(ds: SequenceDataset, i: int, shape: tuple[int, int]) -> np.ndarray:
    z = ds.read("depth", i)
    if z.shape != shape:
        raise DatasetError(f"{ds.root}: depth of frame {i} is {z.shape}, transforms.json says {shape}")
    return z


def _moving_objects(ds: SequenceDataset) -> int:
    """How many objects objects.json records as moving (0 when there is no readable objects.json)."""
    rel = ds.meta.get("objects_file_path")
    if not rel:
        return 0
    try:
        data = json.loads(transforms.resolve_path(ds.root, rel).read_bytes())
        return len({k for fr in data.get("frames", []) for k in fr.get("matrix_world", {})})
    except (OSError, ValueError, AttributeError, TypeError, DatasetError):
        return 0


def _export_sequence(
    plan: SequencePlan, dest: Path, output: Path, unit: float | None, max_depth: float | None, tick: Progress
) -> NerfstudioExport:
    """Write one sequence's export into `dest` (inside the staging folder); `output` is where it will end up."""
    ds = SequenceDataset(plan.source, meta=plan.meta)
    meta = plan.meta
    n, shape = len(ds), (int(meta["h"]), int(meta["w"]))
    if unit is None:  # the farthest usable depth decides the unit
        far = 0.0
        for i in range(n):
            z = _depth(ds, i, shape)
            ok = valid_depth(z, _hole(ds, plan, i))
            if max_depth is not None:
                ok &= z <= max_depth
            if ok.any():
                far = max(far, float(z[ok].max()))
            tick(1)
        unit = choose_depth_unit(far)
    for sub in ("images", "depths", *(("masks",) if plan.masks else ())):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    images, depths, masks = [], [], []
    covered = dropped = 0
    for i in range(n):
        stem = frame_stem(i, n)
        frame = ds.read("frame", i)
        if frame.shape[:2] != shape:
            raise DatasetError(f"{ds.root}: frame {i} is {frame.shape[:2]}, transforms.json says {shape}")
        images.append("images/" + _write_frame_image(ds, i, frame, dest / "images", stem))
        hole = _hole(ds, plan, i)
        q, lost = quantise_depth(_depth(ds, i, shape), unit, max_depth=max_depth, invalid=hole)
        write_image(dest / "depths" / f"{stem}.png", q)
        depths.append(f"depths/{stem}.png")
        if plan.masks:
            keep = np.full(shape, 255, np.uint8) if hole is None else np.where(hole, 0, 255).astype(np.uint8)
            write_image(dest / "masks" / f"{stem}.png", keep)
            masks.append(f"masks/{stem}.png")
        covered += int(np.count_nonzero(q))
        dropped += lost
        tick(1)
    out_meta = nerfstudio_transforms(meta, images, depths, masks if plan.masks else None, unit, max_depth)
    write_json_atomic(dest / "transforms.json", out_meta)
    moving = _moving_objects(ds)
    notes = (
        (f"{moving} object(s) move during the sequence (objects.json); NeRF methods assume a static scene",)
        if moving
        else ()
    )
    return NerfstudioExport(
        source=plan.source,
        output=output,
        frames=n,
        depth_unit_scale_factor=unit,
        depth_coverage=covered / float(n * shape[0] * shape[1]),
        dropped_depths=dropped,
        per_frame_intrinsics="fl_x" in out_meta["frames"][0],
        masks=plan.masks,
        notes=notes,
    )


def export_nerfstudio(plan: NerfstudioPlan, progress: Progress | None = None) -> list[NerfstudioExport]:
    """Write the planned export. Everything goes to a staging folder beside the output, which replaces the
    output folder only once every sequence is written: a failure leaves the output as it was."""
    tick: Progress = progress or (lambda n: None)
    out = plan.output
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_folder(out)
    except OSError as exc:
        raise OutputWriteError(f"cannot write next to {out}: {exc.strerror or exc}") from exc
    results = []
    try:
        for seq in plan.sequences:
            results.append(
                _export_sequence(
                    seq,
                    staging / seq.relative,
                    out / seq.relative,
                    plan.depth_unit_scale_factor,
                    plan.max_depth,
                    tick,
                )
            )
        swap_into_place(staging, out)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            if staging.exists():
                shutil.rmtree(staging)
    return results
