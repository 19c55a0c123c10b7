"""Stream a rendered sequence pair by pair into a denser one: files in, files out, transforms.json last.

Numbering: a frame interpolated at fraction k/n between source frames with Blender numbers f_i and
f_{i+1} gets frame_number f_i·n + k·(f_{i+1} − f_i), i.e. the number it would have had with the
keyframe multiplier n times larger; source frames keep f_i·n. Each frame also records its
(fractional) `source_frame_number`, `interpolated`, and for new frames a `hole_mask_file_path`
(PNG, 255 where neither neighbour covered the pixel) and `hole_fraction`. `time` stays on the source's
clock; `conventions` are the source's, rewritten where interpolated frames differ from rendered ones.

`describe` decides everything but pixels (frames, numbers, cameras, the transforms.json record) once, for
both this writer and `camsim.interpolate.stream` (the same sequence computed on demand, never written).

One module, over 400 lines: streaming pairs, numbering, and the output record are one pass over the
sequence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camsim import derive, srgb, trajectory, transforms
from camsim.cpus import available_cpus
from camsim.errors import ConfigError, DatasetError, UserInputError
from camsim.fileio import make_output_dir, read_exr, read_image, write_bytes_atomic, write_exr, write_image
from camsim.interpolate.reverse import filter_sigma
from camsim.interpolate.warp import ColourModel, FrameData, PairWarper, WarpedFrame, colour_model
from camsim.passes import (
    ALBEDO,
    BY_KEY,
    DEPTH,
    FLOW,
    FRAME,
    HOLE_MASK,
    LINEAR,
    NORMAL,
    RENDERED,
    SEGMENTATION,
)

log = logging.getLogger(__name__)

_INPUTS = (FRAME, DEPTH, FLOW, SEGMENTATION, NORMAL, LINEAR, ALBEDO)
"""The kinds interpolation carries (each record's `interpolation` says how), in the key order of its frame
records; those it needs (`interpolation_needs`) first. It writes HOLE_MASK besides."""
_REQUIRED = tuple(p.key for p in _INPUTS if p.interpolation_needs)
_OPTIONAL = tuple(p.key for p in _INPUTS if not p.interpolation_needs)
_PASS_OF_CONVENTION = {p.name: p.key for p in RENDERED}
"""Conventions about a pass: kept only when the interpolated sequence holds that pass."""
_TIME = "seconds since the scene's first frame, after keyframe scaling: the source sequence's clock"
_SOURCE_FRAME_NUMBER = (
    "frames[i].source_frame_number: the source sequence's frame_number at this frame's time (linear between "
    "source frames, so fractional between them; before the first or after the last source frame it continues "
    "with that end's spacing)"
)


@dataclass(frozen=True)
class _Target:
    number: int
    frac: float
    c2w: np.ndarray
    K: np.ndarray


@dataclass(frozen=True)
class _PairJob:
    """Self-contained description of one pair's work, picklable for a process pool."""

    input_dir: str
    output_dir: str
    left: dict[str, Any]
    right: dict[str, Any]
    left_number: int
    right_number: int | None
    """New number of the right frame if this (last) pair also copies it, else None."""
    keys: tuple[str, ...]
    frame_suffix: str
    factor: int
    beta: float
    edge_sigma: float
    """Pixel-filter std. dev. of the render (anti-aliased edge model, reverse.filter_sigma)."""
    targets: tuple[_Target, ...] = field(default_factory=tuple)


def _out_rel(key: str, number: int, suffix: str) -> str:
    return BY_KEY[key].relpath(number, suffix)


def load_frame(
    root: str | os.PathLike[str], fr: dict[str, Any], keys: tuple[str, ...]
) -> tuple[FrameData, np.dtype]:
    """One source frame as the warp reads it (`fr`: its file paths, `c2w`, `K`), with the optional kinds in
    `keys`; and the dtype of its sRGB code values."""
    code = read_image(transforms.resolve_path(root, fr[FRAME.key]))
    if code.ndim == 2:
        code = code[..., None]
    depth = read_exr(transforms.resolve_path(root, fr[DEPTH.key]), DEPTH.channels).astype(np.float64)
    depth = np.where(
        np.isfinite(depth) & (depth < 1e9) & (depth > 0), depth, np.inf
    )  # 1e10 = Blender's background
    flow = read_exr(transforms.resolve_path(root, fr[FLOW.key]), FLOW.channels)
    data = FrameData(
        rgb=srgb.decode(code),
        depth=depth,
        flow=flow.astype(np.float64),
        c2w=np.asarray(fr["c2w"]),
        K=np.asarray(fr["K"]),
    )
    if SEGMENTATION.key in keys:
        seg = read_exr(transforms.resolve_path(root, fr[SEGMENTATION.key]), SEGMENTATION.channels)
        data.segmentation = seg.astype(np.uint32)
    if NORMAL.key in keys:
        data.normals = read_exr(transforms.resolve_path(root, fr[NORMAL.key]), NORMAL.channels)
    if LINEAR.key in keys:
        data.linear = read_exr(transforms.resolve_path(root, fr[LINEAR.key]), LINEAR.channels)
    if ALBEDO.key in keys:
        data.albedo = read_exr(transforms.resolve_path(root, fr[ALBEDO.key]), ALBEDO.channels)
    return data, code.dtype


def _copy_original(job: _PairJob, fr: dict[str, Any], number: int) -> None:
    """Write a source frame under its new number; only its flows change (rescaled to the new spacing)."""
    out = Path(job.output_dir)
    for key in job.keys:
        src = transforms.resolve_path(job.input_dir, fr[key])
        dst = out / _out_rel(key, number, job.frame_suffix)
        if key == FLOW.key:
            flow = read_exr(src, ("R", "G", "B", "A")).astype(np.float32) / np.float32(job.factor)
            write_exr(dst, {c: flow[..., i] for i, c in enumerate("RGBA")})
        else:
            write_bytes_atomic(dst, src.read_bytes())


def run_pairs(jobs: list[_PairJob]) -> list[list[tuple[int, float]]]:
    """`run_pair` of consecutive pairs, each loading and modelling only its right frame (the left one is the
    previous pair's right)."""
    reuse: dict[str, Any] = {}
    return [run_pair(job, reuse) for job in jobs]


def run_pair(job: _PairJob, reuse: dict[str, Any] | None = None) -> list[tuple[int, float]]:
    """Write the left source frame, the interpolated frames and (last pair) the right one.

    Returns (frame number, hole fraction) of each interpolated frame. `reuse`: see `pair_warper`.
    """
    out = Path(job.output_dir)
    _copy_original(job, job.left, job.left_number)
    if job.right_number is not None:
        _copy_original(job, job.right, job.right_number)
    warper, dtype = pair_warper(job.input_dir, job.left, job.right, job.keys, job.beta, job.edge_sigma, reuse)
    results = []
    for t in job.targets:
        wf = warper.frame(t.frac, t.c2w, t.K, job.factor)
        path = lambda key, t=t: out / _out_rel(key, t.number, job.frame_suffix)  # noqa: E731
        write_image(path(FRAME.key), frame_code(wf, dtype))
        write_exr(path(DEPTH.key), {"Y": wf.depth.astype(np.float32)})
        write_exr(path(FLOW.key), {c: wf.flow[..., i].astype(np.float32) for i, c in enumerate("RGBA")})
        if wf.segmentation is not None:
            write_exr(path(SEGMENTATION.key), {"Y": wf.segmentation.astype(np.uint32)})
        if wf.normals is not None:
            write_exr(
                path(NORMAL.key),
                {c: wf.normals[..., i].astype(np.float32) for i, c in enumerate("RGB")},
            )
        if wf.linear is not None:
            lin = frame_linear(wf)
            write_exr(path(LINEAR.key), {c: lin[..., i] for i, c in enumerate("RGB")})
        if wf.albedo is not None:
            alb = np.maximum(wf.albedo, 0.0).astype(np.float32)
            write_exr(path(ALBEDO.key), {c: alb[..., i] for i, c in enumerate("RGB")})
        write_image(path(HOLE_MASK.key), (wf.hole * 255).astype(np.uint8))
        results.append((t.number, float(wf.hole.mean())))
    return results


def pair_warper(
    root: str | os.PathLike[str],
    left: dict[str, Any],
    right: dict[str, Any],
    keys: tuple[str, ...],
    beta: float,
    edge_sigma: float,
    reuse: dict[str, Any] | None = None,
) -> tuple[PairWarper, np.dtype]:
    """The warper between two source frames (`Interpolated.side`), and the dtype of their sRGB code values.

    `reuse` (a dict the caller keeps between consecutive pairs of one sequence): the left frame is taken from it
    when the previous call loaded it as its right frame; it is left holding this call's right frame."""

    def loaded(fr: dict[str, Any]) -> tuple[FrameData, np.dtype, ColourModel]:
        if reuse is not None and fr[FRAME.key] in reuse:
            return reuse[fr[FRAME.key]]
        data, dtype = load_frame(root, fr, keys)
        return data, dtype, colour_model(data, edge_sigma)

    (a, dtype, ma), (b, b_dtype, mb) = loaded(left), loaded(right)
    if reuse is not None:
        reuse.clear()
        reuse[right[FRAME.key]] = (b, b_dtype, mb)
    return PairWarper(a, b, beta=beta, edge_sigma=edge_sigma, models=(ma, mb)), dtype


def frame_code(wf: WarpedFrame, dtype: np.dtype) -> np.ndarray:
    """The sRGB code values an interpolated frame's image file holds (HxW for one channel)."""
    rgb = srgb.encode(wf.rgb, dtype)
    return rgb[..., 0] if rgb.shape[2] == 1 else rgb


def frame_linear(wf: WarpedFrame) -> np.ndarray:
    """The scene-linear RGB an interpolated frame's linear EXR holds (HxWx3 float32)."""
    assert wf.linear is not None
    return wf.linear.astype(np.float32)


def plan(
    meta: dict[str, Any], factor: int
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray]:
    """Pure part of the driver: new frame records (without files), their c2w, K and source index.

    Returns (frames, c2ws, Ks, pair index per new frame: i for frames between i and i+1; originals
    carry their own index and fraction 0).
    """
    frames = meta["frames"]
    times = transforms.frame_times(meta)
    numbers = transforms.frame_numbers(meta)
    n_src = len(frames)
    new_times, new_src, fracs = [], [], []
    for i in range(n_src):
        steps = range(factor) if i < n_src - 1 else range(1)
        for k in steps:
            s = k / factor
            new_times.append(times[i] + s * (times[i + 1] - times[i]) if k else times[i])
            new_src.append(i)
            fracs.append(s)
    new_times_a = np.array(new_times)
    c2ws_src = transforms.poses(meta)
    c2ws = trajectory.spline_poses(times, c2ws_src, new_times_a)
    Ks_src = np.stack([transforms.intrinsics(meta, i) for i in range(n_src)])
    Ks = trajectory.linear_values(times, Ks_src, new_times_a)
    per_frame_k = any(key in f for f in frames for key in ("fl_x", "fl_y", "cx", "cy"))
    records = []
    for j, (i, s) in enumerate(zip(new_src, fracs, strict=True)):
        src = frames[i]
        if s == 0:
            c2ws[j] = c2ws_src[i]
            Ks[j] = Ks_src[i]
            rec = {k: v for k, v in src.items() if not k.endswith("file_path")}
            rec.update(interpolated=False, source_frame_number=int(numbers[i]))
            number = int(numbers[i]) * factor
        else:
            gap = int(numbers[i + 1] - numbers[i])
            number = int(numbers[i]) * factor + round(s * factor) * gap
            rec = {"interpolated": True, "source_frame_number": float(numbers[i] + s * gap)}
            if "camera" in src and frames[i + 1].get("camera") == src["camera"]:
                rec["camera"] = src["camera"]  # a sequence never crosses a camera cut
            if per_frame_k:
                rec.update(fl_x=Ks[j][0, 0], fl_y=Ks[j][1, 1], cx=Ks[j][0, 2], cy=Ks[j][1, 2])
        rec["transform_matrix"] = c2ws[j].tolist()
        rec["time"] = float(new_times_a[j])
        rec["frame_number"] = number
        records.append(rec)
    return records, c2ws, Ks, np.array(new_src)


def check_input(meta: dict[str, Any], factor: int) -> tuple[str, ...]:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"--factor must be an integer >= 2, got {factor!r}")
    frames = meta["frames"]
    if "file_path" in meta or not frames or "file_path" not in frames[0]:
        raise DatasetError("interpolation needs an IMG-format sequence (one file per frame), not NPY")
    if len(frames) < 2:
        raise DatasetError("interpolation needs at least two frames")
    for i, fr in enumerate(frames):
        missing = [k for k in _REQUIRED if k not in fr]
        if missing:
            raise DatasetError(
                f"frames[{i}] lacks {', '.join(missing)}: render with depth and flow to interpolate"
            )
    try:
        transforms.frame_times(meta, increasing=True)
    except DatasetError as exc:
        raise DatasetError(f"cannot interpolate between frames: {exc}") from None
    return _REQUIRED + tuple(k for k in _OPTIONAL if all(k in fr for fr in frames))


@dataclass(eq=False)
class Interpolated:
    """An interpolated sequence before any pixel is made (`describe`): what the writer writes and what a
    streamed sequence shows, decided once."""

    source_dir: Path
    source_meta: dict[str, Any]
    """The source's transforms.json."""
    factor: int
    beta: float
    keys: tuple[str, ...]
    """Kinds the output carries (its files: these and HOLE_MASK)."""
    suffix: str
    """File suffix of the frame images (the source's)."""
    edge_sigma: float
    """Pixel-filter std. dev. of the render (reverse.filter_sigma)."""
    header: dict[str, Any]
    """Top-level transforms.json keys, every one but `frames`, in the order they are written."""
    records: list[dict[str, Any]]
    """Frame records without file paths and hole fractions (those come with the files)."""
    c2ws: np.ndarray
    Ks: np.ndarray
    source_index: np.ndarray
    """Per output frame: the source frame it is (not interpolated) or the pair it lies in (interpolated)."""
    first_of: dict[int, int]
    """Output index of each source frame."""

    @property
    def pairs(self) -> int:
        return len(self.source_meta["frames"]) - 1

    def target(self, j: int) -> _Target:
        """Output frame j (an interpolated one) as its pair makes it."""
        i = int(self.source_index[j])
        return _Target(
            self.records[j]["frame_number"], (j - self.first_of[i]) / self.factor, self.c2ws[j], self.Ks[j]
        )

    def targets(self, i: int) -> tuple[_Target, ...]:
        """The interpolated frames of pair i (between source frames i and i + 1)."""
        return tuple(self.target(j) for j in range(self.first_of[i] + 1, self.first_of[i + 1]))

    def side(self, m: int, keys: tuple[str, ...]) -> dict[str, Any]:
        """Source frame m as `load_frame` reads it: its files of `keys`, camera and intrinsics."""
        fr = self.source_meta["frames"][m]
        j = self.first_of[m]
        return {**{k: fr[k] for k in keys}, "c2w": self.c2ws[j], "K": self.Ks[j]}


def describe(input_dir: str | os.PathLike[str], factor: int, beta: float = 60.0) -> Interpolated:
    """Read and check the source, then decide everything about its interpolated sequence but the pixels."""
    input_dir = Path(input_dir)
    meta = transforms.read(input_dir)
    keys = check_input(meta, factor)
    edge_sigma = filter_sigma(meta.get("pixel_filter"))
    source_sha = derive.source_sha256(input_dir)
    frames = meta["frames"]
    records, c2ws, Ks, src_idx = plan(meta, factor)
    suffix = Path(frames[0]["file_path"]).suffix or ".png"
    first_of = {int(src_idx[j]): j for j, rec in enumerate(records) if not rec["interpolated"]}
    # Sidecars (objects.json) describe the source frames, not the interpolated ones: not carried over; the
    # render's settings_hash moves into the interpolation block (this sequence is not that render's output).
    dropped = {"frames", "settings_hash", *transforms.SIDECAR_KEYS, *transforms.FILE_KEYS}
    header = {k: v for k, v in meta.items() if k not in dropped}
    header["conventions"] = _conventions(meta, keys, records)
    if "fps" in meta:
        header["source_fps"] = float(meta["fps"])
    header["subframes_per_source_frame"] = factor
    if "fps" in meta:
        header["fps"] = float(meta["fps"]) * factor
    if "keyframe_multiplier" in meta:
        header["keyframe_multiplier"] = meta["keyframe_multiplier"] * factor
    numbers = [rec["frame_number"] for rec in records]
    if "frame_start" in meta:
        header["frame_start"] = min(numbers)
    if "frame_end" in meta:
        header["frame_end"] = max(numbers)
    header["interpolation"] = {
        "factor": factor,
        "method": "colours: flow reversal (each neighbour's motion splatted to the new time, z-buffered by "
        "depth; anti-aliased silhouette pixels move with the surface that covers them) then backward "
        "sampling of both neighbours (anti-aliased straight edges re-drawn through the pixel filter, "
        "cubic spline elsewhere), blended in linear light by time distance, coverage and visibility; "
        "where the two neighbours so warped disagree more than along a DIS optical flow of the pictures "
        "(moving shadows, lines thinner than a pixel), fused with that flow's warp in proportion; "
        "ground truth: depth-aware softmax forward splatting; world background moved by the camera rotation",
        "pixel_filter_sigma": edge_sigma,
        "beta": beta,
        "settings": settings(factor, beta),
        "settings_hash": derive.settings_hash("interpolate", settings(factor, beta)),
        "source_transforms_sha256": source_sha,
        "source": {
            "fps": meta.get("fps"),
            "keyframe_multiplier": meta.get("keyframe_multiplier"),
            "frames": len(frames),
            **({"settings_hash": meta["settings_hash"]} if "settings_hash" in meta else {}),
        },
        "frame_number": "interpolated frame k of n between source frames f_i, f_(i+1): f_i*n + k*(f_(i+1)-f_i); "
        "source frames: f_i*n; source_frame_number keeps the (fractional) source numbering",
        "poses": "positions: not-a-knot cubic spline over time; orientations: scipy RotationSpline",
        "ground_truth": "depth and normals: nearest surface of the warped neighbours; segmentation: heaviest "
        "contribution, never blended; flows: per new frame step (source flows / factor)",
        "hole_mask": "hole_mask_file_path PNG is 255 where neither neighbour covered the pixel "
        "(filled from the nearest covered pixel); hole_fraction is its mean",
    }
    return Interpolated(
        source_dir=input_dir,
        source_meta=meta,
        factor=factor,
        beta=beta,
        keys=keys,
        suffix=suffix,
        edge_sigma=edge_sigma,
        header=header,
        records=records,
        c2ws=c2ws,
        Ks=Ks,
        source_index=src_idx,
        first_of=first_of,
    )


def interpolate_sequence(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    factor: int,
    *,
    workers: int = 0,
    beta: float = 60.0,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write `output_dir`: the sequence in `input_dir` with n − 1 frames interpolated between each pair.

    `workers` processes handle pairs in parallel (0: one per core, 1: in this process); at most
    2·workers pairs are in flight, so memory is bounded whatever the length. Output is identical for
    any worker count. `progress` receives the number of output frames finished since its last call.
    Returns the written transforms.json content.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    seq = describe(input_dir, factor, beta)
    if output_dir.resolve() == input_dir.resolve():
        raise UserInputError("the output folder must differ from the input folder")
    derive.prepare_folder(output_dir, overwrite)
    keys, suffix, first_of = seq.keys, seq.suffix, seq.first_of
    for key in (*keys, HOLE_MASK.key):
        make_output_dir(output_dir / BY_KEY[key].folder)

    jobs = [
        _PairJob(
            input_dir=str(input_dir),
            output_dir=str(output_dir),
            left=seq.side(i, keys),
            right=seq.side(i + 1, keys),
            left_number=seq.records[first_of[i]]["frame_number"],
            right_number=seq.records[first_of[i + 1]]["frame_number"] if i == seq.pairs - 1 else None,
            keys=keys,
            frame_suffix=suffix,
            factor=factor,
            beta=beta,
            edge_sigma=seq.edge_sigma,
            targets=seq.targets(i),
        )
        for i in range(seq.pairs)
    ]

    holes: dict[int, float] = {}
    for job, result in _run_jobs(jobs, workers):
        holes.update(result)
        if progress is not None:
            progress(1 + len(job.targets) + (job.right_number is not None))

    records = []
    for rec in seq.records:
        number = rec["frame_number"]
        rec = {**rec, **{key: _out_rel(key, number, suffix) for key in keys}}
        if rec["interpolated"]:
            rec[HOLE_MASK.key] = _out_rel(HOLE_MASK.key, number, suffix)
            rec["hole_fraction"] = holes[number]
        records.append(rec)
    out_meta = {**seq.header, "frames": records}
    transforms.write(output_dir / "transforms.json", out_meta)
    log.info("interpolated %d frames into %d (%s)", seq.pairs + 1, len(records), output_dir)
    return out_meta


def settings(factor: int, beta: float) -> dict[str, Any]:
    """What changes an interpolated sequence (recorded, and compared by --allow-skips)."""
    return {"factor": int(factor), "beta": float(beta), "colour": COLOUR_METHOD}


COLOUR_METHOD = (
    "exact warp fused with DIS appearance flow (cubic where the flows are consistent) where it explains the change "
    "better or the exact flow is a thin structure's mix (on its 3x3 neighbours and where the exact warp carried "
    "it); the neighbours' cross-fade below a pixel of motion (fusion.py)"
)
"""How new frames' colours are made; part of the settings, so outputs of another method are not mixed in."""


def output_count(n_source: int, factor: int) -> int:
    """Frames of the interpolated sequence (and progress units of a run): every source frame plus factor - 1
    between each pair."""
    return max(n_source - 1, 0) * factor + 1


def _conventions(
    meta: dict[str, Any], keys: tuple[str, ...], records: list[dict[str, Any]]
) -> dict[str, str]:
    """The source's conventions for what the interpolated sequence holds, rewritten where its frames differ."""
    src = dict(meta.get("conventions") or {})
    out = {k: v for k, v in src.items() if k not in _PASS_OF_CONVENTION or _PASS_OF_CONVENTION[k] in keys}
    if "camera" in out and not all("camera" in r for r in records):
        del out["camera"]
    out["time"] = (
        f"{_TIME}; a source frame keeps its time, frame k of n between source frames i and i+1 is at "
        "time_i + k/n (time_(i+1) - time_i)"
    )
    out["frame_number"] = (
        "source frame f: f x n; frame k of n between source frames f_i and f_(i+1): f_i x n + k (f_(i+1) - f_i), "
        "the number a render at n times the keyframe multiplier gives (n = subframes_per_source_frame)"
    )
    out["source_frame_number"] = _SOURCE_FRAME_NUMBER
    if "rgb" in out:
        out["rgb"] += (
            "; frames with interpolated = true are made from their two rendered neighbours (moved along the "
            "rendered flow, blended in linear light), not rendered"
        )
    if "sampling" in out:
        out["sampling"] += (
            "; on interpolated frames every pass comes from the nearest surface of the warped neighbours "
            "(depth, normals, segmentation and flow never blended)"
        )
    if "flow" in out:
        out["flow"] += (
            "; in steps of this sequence: a source frame's flow divided by n, an interpolated frame's warped "
            "from its neighbours"
        )
    out["hole_mask"] = (
        "masks/hole_NNNNNN.png (frames[i].hole_mask_file_path, interpolated frames only): 255 where neither "
        "neighbour covered the pixel (filled from the nearest covered pixel), else 0; hole_fraction is its mean"
    )
    return out


CHUNK_PAIRS = 4
"""Most consecutive pairs one worker interpolates in a row (each frame is loaded and modelled once per chunk)."""


def _run_jobs(jobs: list[_PairJob], workers: int):
    """Yield (job, result) in job order. A process pool runs chunks of consecutive pairs (`run_pairs`; at most
    `CHUNK_PAIRS`, fewer when there are few pairs per worker) and keeps at most 2·workers chunks in flight."""
    if workers <= 0:
        workers = min(available_cpus(), len(jobs))
    if workers <= 1 or len(jobs) <= 1:
        reuse: dict[str, Any] = {}
        for job in jobs:
            yield job, run_pair(job, reuse)
        return
    size = max(1, min(CHUNK_PAIRS, len(jobs) // workers))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    _import_what_workers_use()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[int, Future] = {}
        done: dict[int, Any] = {}
        nxt_submit = nxt_yield = 0
        while nxt_yield < len(chunks):
            while nxt_submit < len(chunks) and len(pending) + len(done) < 2 * workers:
                pending[nxt_submit] = pool.submit(run_pairs, chunks[nxt_submit])
                nxt_submit += 1
            wait(pending.values(), return_when=FIRST_COMPLETED)
            for i in [i for i, f in pending.items() if f.done()]:
                done[i] = pending.pop(i).result()
            while nxt_yield in done:
                yield from zip(chunks[nxt_yield], done.pop(nxt_yield), strict=True)
                nxt_yield += 1


def _import_what_workers_use() -> None:
    """Import the libraries the warp loads on first use, so that workers forked from this process start with
    them (each would otherwise spend ~0.15 s importing them)."""
    import cv2  # noqa: F401
    import scipy.ndimage
    import scipy.special  # noqa: F401
