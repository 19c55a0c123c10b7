"""One LiDAR point's measurement, pure: its transient from range, albedo and ambient light, the SPAD's
detections, the histogram and the return-time estimate (camsim.emulate.lidar_transient and lidar_histogram do
the physics and the statistics; this module applies a LidarConfig to them)."""

from __future__ import annotations

import math

import numpy as np

from camsim.emulate import lidar_histogram as hist
from camsim.emulate import lidar_transient as tra
from camsim.emulate.lidar_binned import binned_independent
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.scratch import Scratch

DENSE_BINS = 64
"""Equi-width histograms of at most this many bins are corrected and estimated dense, larger ones by their
occupied bins."""


def photon_model(cfg: LidarConfig, rho: np.ndarray, albedo: np.ndarray, ambient: np.ndarray) -> tra.Transient:
    """The transient of pixels at radial range `rho` (m, inf: no return), with reflectance `albedo` (the
    albedo times the incidence cosine) and ambient luminance `ambient` of the linear RGB."""
    finite = np.isfinite(rho) & (rho > 0)
    safe = np.where(finite, rho, 1.0)
    signal = np.where(finite, cfg.pde * cfg.signal_photons * albedo / safe**2, 0.0)
    beta = (cfg.pde * cfg.ambient_rate * ambient + cfg.dark_count_rate) * cfg.bin_width
    sigma = cfg.sigma / cfg.bin_width
    centre = tra.pulse_centre(np.where(finite, rho, 0.0), cfg.bin_width, 1.0 / cfg.repetition_rate, sigma)
    return tra.transient(signal, beta, centre, sigma, cfg.tdc_bins)


def detections(
    cfg: LidarConfig, tr: tra.Transient, g: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """(pixel, TDC tick) of every detection of a block, pixel-ordered, and how many jitter pushed out of the
    gate (clipped to its first or last tick)."""
    if cfg.dead_time_carries_over:
        period = 1.0 / (cfg.repetition_rate * cfg.bin_width)
        pix, t = tra.detect_with_dead_time(tr, cfg.cycles, cfg.dead_time / cfg.bin_width, period, g)
    else:
        pix, t = tra.detect_independent(tr, cfg.cycles, g)
    ticks, clipped = tra.quantise(t, cfg.jitter / cfg.bin_width, cfg.tdc_bins, g)
    return pix, ticks, clipped


def measure(
    cfg: LidarConfig, tr: tra.Transient, g: np.random.Generator, scratch: Scratch | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(histogram, estimated return time in ticks, detections per pixel, detections clipped by jitter) of a
    block: `histogram_and_estimate` of `detections`; for equi-width histograms of independent cycles straight
    from the binned sampler (the same draws and the same result, without per-detection pixel and tick arrays;
    its scratch arrays from `scratch` when given)."""
    if cfg.histogram == "equi-width" and not cfg.dead_time_carries_over:
        counts, clipped = binned_independent(
            tr, cfg.cycles, cfg.jitter / cfg.bin_width, cfg.histogram_bins, g, scratch
        )
        return (*_equi_width_dense(cfg, counts), clipped)
    pix, ticks, clipped = detections(cfg, tr, g)
    return (*histogram_and_estimate(cfg, pix, ticks, len(tr.total)), clipped)


def histogram_and_estimate(
    cfg: LidarConfig, pix: np.ndarray, ticks: np.ndarray, npx: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(histogram (npx, B) counts or (npx, B + 1) edges, estimated return time in ticks (npx,), detections
    (npx,)) of a block's detections."""
    n, bins = cfg.tdc_bins, cfg.histogram_bins
    if cfg.histogram == "equi-depth":
        edges, found = hist.equi_depth(pix, ticks, npx, n, bins)
        counts = hist.equi_depth_counts(found, bins)
        values = hist.coates(counts, cfg.cycles) if cfg.coates else counts
        return edges, hist.densest_bin(values, edges), found
    return _equi_width_estimate(cfg, hist.equi_width(pix, ticks, npx, n, bins))


def _equi_width_estimate(cfg: LidarConfig, sparse: hist.Sparse) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = sparse.dense(dtype=cfg.dtype)
    values = sparse.dense(hist.coates_sparse(sparse, cfg.cycles), np.float32) if cfg.coates else counts
    return counts, _estimate(cfg, values), sparse.detections()


def _equi_width_dense(cfg: LidarConfig, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_equi_width_estimate` of dense counts (npx, B): the same values, computed dense for few bins."""
    if cfg.histogram_bins > DENSE_BINS:
        return _equi_width_estimate(cfg, hist.sparse(counts))
    values = hist.coates(counts, cfg.cycles).astype(np.float32) if cfg.coates else counts
    return counts.astype(cfg.dtype), _estimate(cfg, values), counts.sum(axis=1)


def _estimate(cfg: LidarConfig, values: np.ndarray) -> np.ndarray:
    """Return time (ticks) of each pixel from its equi-width histogram `values` (counts or Coates rates)."""
    width = cfg.tdc_bins // cfg.histogram_bins
    if cfg.resolved_estimator == "peak":
        return hist.peak(values, width)
    sigma = math.hypot(cfg.sigma, cfg.jitter) / cfg.bin_width
    return hist.matched_filter(values, hist.irf_kernel(sigma, width), width)
