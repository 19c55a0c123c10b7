"""Active single-photon LiDAR (direct time of flight): photon-count histograms and point clouds.

Per pixel and point: the laser's return comes from the rendered radial distance rho (the depth pass along the
pixel's ray, through any lens: camsim.emulate.rays) and the diffuse albedo a (the albedo pass: its Rec. 709
luminance or one channel), Lambertian (the cosine between the normal pass and the ray; --no-incidence: 1) and
falling off with the inverse square: pde * signal_photons * a * cos / rho^2 detectable photons per pulse.
Ambient photons come from the linear RGB's luminance L: pde * ambient_rate * L per second, dark counts at
dark_count_rate, both spread evenly over the gate. camsim.emulate.lidar_transient draws the SPAD's first
detection per laser cycle (pile-up), dead time and timing jitter; camsim.emulate.lidar_histogram bins them
(equi-width or equi-depth), corrects pile-up (Coates) and estimates the return time; camsim.emulate.lidar_scan
times every point (flash, rows, rotating head) and picks the source frame it sees.

Output: histograms.npy (frames, H, W, B) counts, or (frames, H, W, B + 1) equi-depth edges in TDC ticks,
uint16 or uint32 as transforms.json's `lidar.histogram_dtype` says; points.npy (frames, H, W) organised point
clouds (camsim.emulate.lidar_points.POINT_DTYPE) in the camera and the world frame with per-point times.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camsim import trajectory
from camsim.emulate import lidar_transient as tra
from camsim.emulate import timebase
from camsim.emulate.common import (
    Progress,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.lidar_model import measure, photon_model
from camsim.emulate.lidar_points import POINT_DTYPE, camera_points, world_points
from camsim.emulate.lidar_scan import Scan, fractional_index, line_of_pixel, nearest_frames, plan_scan
from camsim.emulate.light import LUMA, Sequence, output_meta, run_emulator
from camsim.emulate.rays import RayGeometry, incidence_cosine, require_passes
from camsim.emulate.scratch import PerThread, Scratch
from camsim.errors import ConfigError
from camsim.fileio import atomic_path
from camsim.passes import LIDAR_HISTOGRAMS, LIDAR_POINTS

log = logging.getLogger(__name__)

__all__ = ["LidarConfig", "emulate_lidar", "progress_total"]

CHANNELS = {"red": 0, "green": 1, "blue": 2}
BLOCK = 4096
"""Pixels per random stream: a constant, so the noise never depends on threads or memory."""


def check_source(seq: Sequence, cfg: LidarConfig) -> None:
    """DatasetError when the sequence cannot feed a LiDAR: no albedo or depth pass (or normal pass, for the
    incidence cosine), or frames interpolated on the fly."""
    require_passes(seq, "lidar", cfg.incidence)


def plan(seq: Sequence, cfg: LidarConfig) -> Scan:
    """The scan of a run (pure); DatasetError or ConfigError when no output is possible."""
    check_source(seq, cfg)
    rate = cfg.frame_rate if cfg.frame_rate is not None else seq.fps
    return plan_scan(cfg.scan, seq.times, seq.h, seq.w, rate, cfg.scan_time, cfg.cycles / cfg.repetition_rate)


def progress_total(seq: Sequence, cfg: LidarConfig) -> int:
    """Progress units of a run: output frames."""
    return plan(seq, cfg).frames


def emulate_lidar(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: LidarConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
    workers: int = 0,
) -> Path:
    """Emulate a single-photon LiDAR on a sequence rendered with depth and albedo; returns the output folder.

    `progress` is called with 1 after each output frame; `workers` threads share a frame's pixel blocks
    (0: one per CPU core; same output)."""
    return run_emulator(
        _run, progress_total, cfg or LidarConfig(), input_dir, output_dir, overwrite, progress, workers
    )


@dataclass
class _SourceFrame:
    rho: np.ndarray
    albedo: np.ndarray
    ambient: np.ndarray
    rays: np.ndarray
    pose: np.ndarray
    number: float


class _Frames:
    """Source frames as the LiDAR reads them (radial range, reflectance, ambient luminance, rays), a few kept."""

    def __init__(self, seq: Sequence, cfg: LidarConfig, keep: int = 4) -> None:
        self.seq = seq
        self.cfg = cfg
        self.geometry = RayGeometry(seq)
        self.keep = keep
        self.cache: dict[int, _SourceFrame] = {}

    def __getitem__(self, j: int) -> _SourceFrame:
        if j not in self.cache:
            seq, cfg = self.seq, self.cfg
            scale, rays = self.geometry.of(j)
            albedo = seq.albedo(j)
            luma = LUMA.astype(np.float32)
            reflectance = (
                albedo @ luma
                if cfg.albedo_channel == "luminance"
                else albedo[..., CHANNELS[cfg.albedo_channel]]
            )
            if cfg.incidence:
                reflectance = reflectance * incidence_cosine(seq.normal(j), rays)
            self.cache[j] = _SourceFrame(
                rho=seq.depth(j).astype(np.float64) * scale,
                albedo=reflectance,
                ambient=seq.linear(j) @ luma,
                rays=rays,
                pose=seq.poses[j],
                number=float(seq.frame_numbers[j]),
            )
            while len(self.cache) > self.keep:
                self.cache.pop(next(iter(self.cache)))
        return self.cache[j]


@dataclass
class _Counts:
    beyond_gate: int = 0
    beyond_unambiguous: int = 0
    clipped: int = 0
    detections: int = 0
    max_offset: float = 0.0


def _run(seq: Sequence, out: Path, cfg: LidarConfig, progress: Progress, workers: int = 1) -> Path:
    scan = plan(seq, cfg)
    h, w, npx = seq.h, seq.w, seq.h * seq.w
    n, bins, tick = cfg.tdc_bins, cfg.histogram_bins, cfg.bin_width
    depth_bins = bins + 1 if cfg.histogram == "equi-depth" else bins
    lines = line_of_pixel(cfg.scan, h, w).ravel()
    frames = _Frames(seq, cfg)
    counts = _Counts()
    blocks = math.ceil(npx / BLOCK)
    subframes = max(1, math.ceil(scan.frame_period**-1 / seq.fps - 1e-9))
    numbers = _frame_numbers(seq, scan, subframes)
    scratch = PerThread()  # the blocks' scratch arrays, kept from block to block
    with (
        atomic_path(out / LIDAR_HISTOGRAMS.filename) as hist_tmp,
        atomic_path(out / LIDAR_POINTS.filename) as pts_tmp,
    ):
        hists = np.lib.format.open_memmap(
            hist_tmp, mode="w+", dtype=cfg.dtype, shape=(scan.frames, h, w, depth_bins)
        )
        points = np.lib.format.open_memmap(pts_tmp, mode="w+", dtype=POINT_DTYPE, shape=(scan.frames, h, w))
        for k in range(scan.frames):
            t_line = scan.line_times(k)
            src_line = nearest_frames(seq.times, t_line)
            counts.max_offset = max(counts.max_offset, float(np.abs(seq.times[src_line] - t_line).max()))
            src = src_line[lines]
            inputs = _gather(frames, src, npx)
            rho = inputs["rho"]
            finite = np.isfinite(rho)
            counts.beyond_gate += int(np.count_nonzero(finite & (2 * rho / tra.C_LIGHT > n * tick)))
            counts.beyond_unambiguous += int(
                np.count_nonzero(finite & (rho > tra.C_LIGHT / (2 * cfg.repetition_rate)))
            )
            results = parallel_map(
                lambda b, k=k, inputs=inputs: _block(
                    cfg, inputs, k * blocks + b, b * BLOCK, min(npx, (b + 1) * BLOCK), scratch.get()
                ),
                range(blocks),
                workers,
            )
            hist_frame = np.concatenate([r[0] for r in results]).astype(cfg.dtype)
            t_est = np.concatenate([r[1] for r in results])
            found = np.concatenate([r[2] for r in results])
            counts.clipped += sum(r[3] for r in results)
            counts.detections += int(found.sum())
            hists[k] = hist_frame.reshape(h, w, depth_bins)
            points[k] = _points(cfg, inputs, t_est, found, t_line[lines], src, frames).reshape(h, w)
            if progress:
                progress(1)
        hists.flush()
        points.flush()
        del hists, points
    warnings = _warnings(cfg, counts, scan, seq)
    for message in warnings:
        log.warning("lidar: %s", message)
    block = acquisition(cfg, scan)
    meta = output_meta(
        seq,
        _conventions(seq, cfg),
        subframes=subframes,
        fps=1.0 / scan.frame_period,
        sensor="lidar",
        histograms_file_path=LIDAR_HISTOGRAMS.filename,
        points_file_path=LIDAR_POINTS.filename,
        lidar=block,
        warnings=warnings,
    )
    write_params(out, "lidar", cfg, seq, **block, **_derived(scan, counts, seq, warnings))
    write_transforms_streamed(
        out / "transforms.json", meta, lambda k: _frame_entry(seq, scan, k, numbers[k]), scan.frames
    )
    return out


def _gather(frames: _Frames, src: np.ndarray, npx: int) -> dict[str, Any]:
    """Per-pixel inputs (flattened) of one output frame whose pixels see source frames `src` (npx,)."""
    out = {
        "rho": np.empty(npx, np.float64),
        "albedo": np.empty(npx, np.float64),
        "ambient": np.empty(npx, np.float64),
        "rays": np.empty((npx, 3), np.float64),
        "src": src,
    }
    for j in np.unique(src):
        f = frames[int(j)]
        sel = src == j
        out["rho"][sel] = f.rho.ravel()[sel]
        out["albedo"][sel] = f.albedo.ravel()[sel]
        out["ambient"][sel] = f.ambient.ravel()[sel]
        out["rays"][sel] = f.rays.reshape(-1, 3)[sel]
    return out


def _block(cfg: LidarConfig, inputs: dict[str, Any], index: int, lo: int, hi: int, scratch: Scratch) -> tuple:
    tr = photon_model(cfg, inputs["rho"][lo:hi], inputs["albedo"][lo:hi], inputs["ambient"][lo:hi])
    return measure(cfg, tr, rng(cfg.seed, "lidar_block", index), scratch)


def _points(
    cfg: LidarConfig,
    inputs: dict[str, Any],
    t_est: np.ndarray,
    found: np.ndarray,
    t_point: np.ndarray,
    src: np.ndarray,
    frames: _Frames,
) -> np.ndarray:
    """The organised point cloud (npx,) of one output frame."""
    pts = np.zeros(len(t_est), POINT_DTYPE)
    valid = (found >= cfg.min_detections) & inputs["rays"].any(axis=1)  # (a fisheye's corners have no ray)
    rng_m = np.where(valid, t_est * cfg.bin_width * tra.C_LIGHT / 2.0, np.nan)
    cam = camera_points(rng_m, inputs["rays"])
    world = np.full_like(cam, np.nan)
    for j in np.unique(src):
        sel = src == j
        world[sel] = world_points(cam[sel], frames[int(j)].pose)
        pts["source_frame_number"][sel] = frames[int(j)].number
    pts["valid"] = valid
    pts["t"] = t_point
    pts["range"] = rng_m
    pts["range_true"] = inputs["rho"]
    pts["x_cam"], pts["y_cam"], pts["z_cam"] = cam.T
    pts["x"], pts["y"], pts["z"] = world.T
    pts["detections"] = found
    return pts


def _frame_numbers(seq: Sequence, scan: Scan, subframes: int) -> list[int]:
    """frame_number of each output frame: the source's frame number at its first line, x subframes, rounded."""
    out = []
    for k in range(scan.frames):
        x = fractional_index(seq.times, float(scan.line_times(k)[0]))
        out.append(math.floor(timebase.at(seq.frame_numbers, x) * subframes + 0.5))
    if np.any(np.diff(out) <= 0):
        raise ConfigError("lidar frames would share frame numbers (the source's numbering is irregular)")
    return out


def _frame_entry(seq: Sequence, scan: Scan, k: int, number: int) -> dict[str, Any]:
    """transforms.json entry of output frame k: its scan's middle time, and the pose there."""
    x = fractional_index(seq.times, scan.frame_time(k))
    return {"transform_matrix": trajectory.linear_pose(seq.poses, x).tolist(), **seq.place(x, number)}


def _warnings(cfg: LidarConfig, counts: _Counts, scan: Scan, seq: Sequence) -> list[str]:
    out = []
    if counts.beyond_unambiguous:
        out.append(
            f"{counts.beyond_unambiguous} point(s) lie beyond the unambiguous range "
            f"{tra.C_LIGHT / (2 * cfg.repetition_rate):.6g} m: their returns fold into later cycles (range "
            "aliasing), as a real LiDAR sees them"
        )
    if counts.beyond_gate:
        out.append(
            f"{counts.beyond_gate} point(s) lie beyond the gate ({cfg.tdc_bins * cfg.bin_width * tra.C_LIGHT / 2:.6g} m): "
            "no return of theirs is in their histogram"
        )
    if counts.clipped > 1e-3 * max(counts.detections, 1):
        out.append(
            f"{counts.clipped} of {counts.detections} detections were moved into the gate's first or last bin "
            "after jitter (more than 0.1 %)"
        )
    return out


def acquisition(cfg: LidarConfig, scan: Scan) -> dict[str, Any]:
    """Every acquisition parameter (transforms.json `lidar`, and in params.json `derived`)."""
    n = cfg.tdc_bins
    return {
        "pulse_fwhm_s": cfg.pulse_fwhm,
        "pulse_sigma_s": cfg.sigma,
        "pulse_truncated_at_sigmas": tra.TRUNCATE,
        "repetition_rate_hz": cfg.repetition_rate,
        "cycles": cfg.cycles,
        "signal_photons_at_1m": cfg.signal_photons,
        "albedo_channel": cfg.albedo_channel,
        "incidence": cfg.incidence,
        "pde": cfg.pde,
        "ambient_rate_per_s": cfg.ambient_rate,
        "dark_count_rate_per_s": cfg.dark_count_rate,
        "dead_time_s": cfg.dead_time,
        "jitter_s": cfg.jitter,
        "detection_model": "cycle by cycle (the dead time reaches the next gate)"
        if cfg.dead_time_carries_over
        else "independent cycles (the dead time ends before the next gate)",
        "tdc_bin_width_s": cfg.bin_width,
        "tdc_bins": n,
        "gate_s": n * cfg.bin_width,
        "max_range_m": n * cfg.bin_width * tra.C_LIGHT / 2.0,
        "unambiguous_range_m": tra.C_LIGHT / (2.0 * cfg.repetition_rate),
        "histogram": cfg.histogram,
        "histogram_bins": cfg.histogram_bins,
        "histogram_bin_width_s": n // cfg.histogram_bins * cfg.bin_width
        if cfg.histogram == "equi-width"
        else None,
        "histogram_dtype": cfg.dtype.name,
        "estimator": cfg.resolved_estimator,
        "coates": cfg.coates,
        "min_detections": cfg.min_detections,
        "scan": scan.pattern,
        "scan_lines": scan.lines,
        "line_time_s": scan.line_time,
        "scan_time_s": scan.scan_time,
        "dwell_s": scan.dwell,
        "frame_rate_hz": 1.0 / scan.frame_period,
    }


def _derived(scan: Scan, counts: _Counts, seq: Sequence, warnings: list[str]) -> dict[str, Any]:
    """What a run found (params.json `derived`, with `acquisition`)."""
    return {
        "input_light": seq.light_name,
        "output_frames": scan.frames,
        "points_per_frame": seq.h * seq.w,
        "max_time_to_source_frame_s": counts.max_offset,
        "detections": counts.detections,
        "detections_clipped_by_jitter": counts.clipped,
        "points_beyond_gate": counts.beyond_gate,
        "points_beyond_unambiguous_range": counts.beyond_unambiguous,
        "warnings": warnings,
    }


def _conventions(seq: Sequence, cfg: LidarConfig) -> dict[str, str]:
    """What a LiDAR dataset holds, in words."""
    if cfg.histogram == "equi-depth":
        what = (
            f"histograms.npy (frames, H, W, B + 1) {cfg.dtype.name}: equi-depth histogram edges in TDC bins "
            f"(tdc_bin_width_s each, from the pulse's peak); bin k of a pixel holding D detections holds "
            f"floor((k+1) D / B) - floor(k D / B) of them (D: points.npy `detections`); edge 0 is 0, edge B the gate's "
            "end (tdc_bins)"
        )
    else:
        what = (
            f"histograms.npy (frames, H, W, B) {cfg.dtype.name}: detections per equal-width bin of the gate (bin "
            "j spans [j, j+1) x tdc_bins / B TDC bins from the pulse's peak), each laser cycle's first detection"
        )
    src = (seq.meta.get("conventions") or {}).get("transform_matrix")
    own = {
        "histograms": what,
        "points": "points.npy (frames, H, W) structured: one point per pixel (organised); valid, t (s, the source's "
        "clock: the middle of the point's laser cycles), range and range_true (estimated and rendered distance "
        "along the pixel ray, m), x_cam/y_cam/z_cam (m, OpenGL camera axes of the source frame the point saw: x "
        "right, y up, looking down -z), x/y/z (m, world, through that frame's pose), detections, "
        "source_frame_number; an invalid point has NaN coordinates",
        "time": f"{timebase.TIME}; the middle of the frame's scan (its points carry their own times)",
        "frame_number": "integer, unique: the source's frame_number at the frame's first line x "
        "subframes_per_source_frame, rounded",
        "source_frame_number": timebase.SOURCE_FRAME_NUMBER,
    }
    if src:
        own["transform_matrix"] = f"{src}; the pose at the frame's time (the middle of its scan)"
    return timebase.conventions(seq.meta, own)
