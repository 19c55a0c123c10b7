"""The configuration of `camsim emulate lidar` (its fields are the --help text) and the values derived from it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from camsim.emulate import lidar_transient as tra
from camsim.emulate.common import check_positive, check_probability
from camsim.errors import ConfigError

EQUI_DEPTH_BINS = 16
"""Bins of an equi-depth histogram when --bins is not given."""


@dataclass
class LidarConfig:
    """Single-photon direct time-of-flight LiDAR (defaults: a short-range SPAD flash LiDAR)."""

    pulse_fwhm: float = 1e-9
    """Laser pulse: Gaussian of this full width at half maximum (s)."""
    repetition_rate: float = 1e6
    """Laser pulses per second; the unambiguous range is c / (2 x repetition_rate)."""
    cycles: int = 1000
    """Laser cycles (pulses) per point: the histogram of a point sums their first detections."""
    signal_photons: float = 10.0
    """Photons of one pulse's return reaching a pixel from a target of albedo 1 facing the sensor at 1 m (before the detection efficiency); it scales as albedo x cos(incidence) / range^2."""
    albedo_channel: Literal["luminance", "red", "green", "blue"] = "luminance"
    """Reflectance the laser sees: Rec. 709 luminance of the albedo pass, or one of its channels (the near-infrared albedo is not rendered)."""
    incidence: bool = True
    """Lambertian return: scale by the cosine between the surface normal (normal pass) and the ray to the sensor; --no-incidence treats every surface as facing the sensor."""
    pde: float = 0.3
    """Photon detection efficiency of the SPAD (0..1), for laser and ambient photons alike."""
    ambient_rate: float = 1e6
    """Ambient photons per second reaching a pixel at linear luminance 1 (before the detection efficiency): each pixel gets ambient_rate x its luminance in the linear RGB, spread evenly over time."""
    dark_count_rate: float = 1000.0
    """Dark counts per second of every pixel."""
    dead_time: float = 50e-9
    """SPAD dead time after a detection (s). Each laser cycle records only its first detection (the TDC's stop); a dead time that reaches into the next gate blinds its start (simulated cycle by cycle)."""
    jitter: float = 50e-12
    """Timing jitter (s): standard deviation of the Gaussian error added to each detection's time."""
    bin_width: float = 250e-12
    """TDC resolution (s): the finest histogram bin (c x bin_width / 2 in range)."""
    max_range: float = 30.0
    """Range covered by the gate (m): the SPAD is armed from the pulse for 2 x max_range / c, rounded up to whole TDC bins (to a multiple of --bins for equi-width); at most the unambiguous range less the pulse."""
    histogram: Literal["equi-width", "equi-depth"] = "equi-width"
    """Histogrammer: equal-width bins of detection counts, or equal-count bins (equi-depth: their edges)."""
    bins: int | None = None
    """Histogram bins B; default: every TDC bin (equi-width) or 16 (equi-depth)."""
    estimator: Literal["matched-filter", "peak", "densest-bin"] | None = None
    """Depth estimator: matched-filter (correlation with the pulse and jitter, sub-bin peak) or peak (highest bin) for equi-width histograms, densest-bin (the narrowest bin) for equi-depth; default matched-filter / densest-bin."""
    coates: bool = True
    """Correct pile-up (Coates) before estimating: needs every cycle to start armed (dead time ending before the next gate)."""
    min_detections: int = 1
    """A point is valid when its histogram holds at least this many detections (at least 1)."""
    scan: Literal["flash", "rows", "rotating"] = "flash"
    """Scanning pattern: flash (every pixel at once), rows (top to bottom) or rotating (columns left to right); each line sees the source frame nearest its time."""
    frame_rate: float | None = None
    """LiDAR frames per second; default: the source's frame rate."""
    scan_time: float | None = None
    """Rows and rotating: time from the first to past the last line of a frame (s); default 1 / frame_rate."""
    light: Literal["auto", "linear", "srgb"] = "auto"
    """Input light for the ambient: linear EXR when present (auto), or force the linear EXR or the sRGB PNG."""
    seed: int = 0
    """Random seed; same seed and input give bit-identical output."""

    def validate(self) -> None:
        for name in ("pulse_fwhm", "repetition_rate", "bin_width", "max_range"):
            check_positive(name, getattr(self, name))
        for name in ("signal_photons", "ambient_rate", "dark_count_rate", "dead_time", "jitter"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_probability("pde", self.pde)
        if self.cycles < 1:
            raise ConfigError(f"cycles must be at least 1, got {self.cycles}")
        if self.bins is not None and self.bins < 1:
            raise ConfigError(f"bins must be at least 1, got {self.bins}")
        if self.min_detections < 1:
            raise ConfigError(f"min_detections must be at least 1, got {self.min_detections}")
        for name in ("frame_rate", "scan_time"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))
        est = self.resolved_estimator
        if (self.histogram == "equi-depth") != (est == "densest-bin"):
            raise ConfigError(
                f"estimator {est} does not apply to {self.histogram} histograms (equi-width: matched-filter or "
                "peak; equi-depth: densest-bin)"
            )
        gate = self.tdc_bins * self.bin_width
        room = 1.0 / self.repetition_rate - 2.0 * tra.TRUNCATE * self.sigma
        if gate > room * (1 + 1e-12):
            raise ConfigError(
                f"max_range {self.max_range} m needs a {gate * 1e9:.6g} ns gate, more than the laser period "
                f"({1e9 / self.repetition_rate:.6g} ns) less the pulse ({2 * tra.TRUNCATE * self.sigma * 1e9:.3g} "
                f"ns): lower max_range (unambiguous range {tra.C_LIGHT / (2 * self.repetition_rate):.6g} m) "
                "or repetition_rate"
            )
        if self.coates and self.dead_time_carries_over:
            raise ConfigError(
                f"the Coates correction needs every cycle to start armed, but the dead time "
                f"({self.dead_time:.6g} s) outlasts the {1 / self.repetition_rate - gate:.6g} s between a gate's "
                "end and the next: lower dead_time or repetition_rate, shorten max_range, or pass --no-coates"
            )

    @property
    def sigma(self) -> float:
        """The pulse's standard deviation (s)."""
        return self.pulse_fwhm * tra.FWHM_TO_SIGMA

    @property
    def resolved_estimator(self) -> str:
        if self.estimator is not None:
            return self.estimator
        return "densest-bin" if self.histogram == "equi-depth" else "matched-filter"

    @property
    def histogram_bins(self) -> int:
        """B: bins of the histogram."""
        if self.bins is not None:
            return self.bins
        return EQUI_DEPTH_BINS if self.histogram == "equi-depth" else self.tdc_bins

    @property
    def tdc_bins(self) -> int:
        """TDC bins in the gate: 2 max_range / c in bins, rounded up (for equi-width --bins, to a multiple)."""
        n = max(1, math.ceil(2.0 * self.max_range / tra.C_LIGHT / self.bin_width - 1e-9))
        if self.histogram == "equi-width" and self.bins is not None:
            n = self.bins * math.ceil(n / self.bins)
        return n

    @property
    def dead_time_carries_over(self) -> bool:
        """A detection at the gate's end leaves the detector blind at the next gate's start."""
        return self.tdc_bins * self.bin_width + self.dead_time > (1.0 / self.repetition_rate) * (1 + 1e-12)

    @property
    def dtype(self) -> np.dtype:
        """Histogram dtype: counts (at most `cycles`) or equi-depth edges (at most the TDC bins)."""
        top = self.tdc_bins if self.histogram == "equi-depth" else self.cycles
        return np.dtype(np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32)
