"""Indirect time-of-flight (continuous-wave lock-in) camera: taps from radial depth, albedo and ambient light.

Per tap t (frequency f, phase offset psi_k = 2 pi k / K, t = f_index * K + k) and pixel, the mean signal in
photo-electrons is

    mu = qe * (P * rho * cos_i / d^2 * c(4 pi f d / c0 - psi_k) + S * Y / 2)

with d the radial distance along the pixel's ray (the depth pass converted through the lens: not planar z), rho
the albedo pass (luminance or one channel, --albedo-channel), cos_i the cosine between the surface normal and
the ray back to the camera (the source sits at the camera; --no-incidence: 1), P = --source-power (photons
per pixel per tap from albedo 1 at 1 m facing the camera), c the code's correlation with the reference in
closed form (camsim.emulate.itof_codes: 1/2 + cos/4 for the sinusoid, the triangle for the square code), and
S Y / 2 the ambient light (S = --ambient-scale photons per tap at linear luminance Y = 1 of the source's RGB,
half of it gated into the tap). The sensor then counts electrons ~ Poisson(mu) (drawn with mu clipped at
4 x full well + 1000: after the full-well clip the same but with probability below e^-900), clips at the full well,
adds read noise N(0, read_noise^2) and digitises: DN = clip(round(gain * e), 0, 2^adc_bits - 1). Phases wrap
by themselves: c is 2 pi periodic.

Motion between taps: tap t of output frame j is source frame j * K_total + t (K_total = taps x frequencies),
so every tap sees the scene at its own instant (the source should be high-rate: rendered at a high frame rate
or interpolated, `camsim interpolate --factor`); frames[j].tap_times and tap_source_frame_numbers say which.
The scene does not move within a tap.

`decode` (camsim.emulate.itof_decode) turns taps back into radial depth and amplitude.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from camsim import trajectory, transforms
from camsim.emulate import gpu, timebase
from camsim.emulate.common import (
    Progress,
    batches,
    check_positive,
    check_probability,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.gpu import OnDevice
from camsim.emulate.itof_codes import CODES, C, correlation, phase_response, tap_phases, unambiguous_range
from camsim.emulate.itof_decode import check_frequencies, common_frequency_mhz, decode, extended_range
from camsim.emulate.light import LUMA, Sequence, output_meta, run_emulator
from camsim.emulate.rays import RayGeometry, incidence_cosine, require_passes
from camsim.errors import ConfigError, DatasetError
from camsim.fileio import atomic_path

log = logging.getLogger(__name__)

__all__ = ["ItofConfig", "decode", "emulate_itof", "read_taps"]

ALBEDO_CHANNELS = {"red": 0, "green": 1, "blue": 2}


@dataclass
class ItofConfig(OnDevice):
    """Continuous-wave indirect time-of-flight camera (defaults: a 20 MHz, 4-tap sensor with a 12-bit ADC)."""

    frequencies: tuple[float, ...] = (20.0,)
    """Modulation frequencies (MHz), captured one after the other, each with --taps taps; several extend the unambiguous range to c / (2 gcd) (e.g. --frequencies 80 100: 7.5 m)."""
    code: Literal["sinusoid", "square"] = "sinusoid"
    """Modulation code of the source and the reference: sinusoid, or square (50 % duty; triangle correlation, whose harmonics the decoder corrects)."""
    taps: int = 4
    """Taps K per frequency (phase offsets 2 pi k / K; at least 3)."""
    tap_exposure: float | None = None
    """Exposure of one tap (s), centred on its source frame's time and recorded in transforms.json; at most the source frame period (default: that period). Photon counts are given per tap (--source-power, --ambient-scale)."""
    source_power: float = 2000.0
    """Source photons per pixel per tap returned by albedo 1 at 1 m radial distance, facing the camera."""
    ambient_scale: float = 1000.0
    """Ambient photons per pixel per tap at linear luminance 1 of the source's RGB (half of them reach a tap)."""
    albedo_channel: Literal["luminance", "red", "green", "blue"] = "luminance"
    """Reflectance the source sees: Rec. 709 luminance of the albedo pass, or one of its channels (the near-infrared albedo is not rendered)."""
    incidence: bool = True
    """Lambertian return: scale by the cosine between the surface normal (normal pass) and the ray to the camera; --no-incidence treats every surface as facing the camera."""
    qe: float = 0.35
    """Quantum efficiency at the source's wavelength (0..1)."""
    read_noise: float = 5.0
    """Read noise (e- rms) per tap."""
    full_well: float = 20000.0
    """Full-well capacity of a tap (e-)."""
    adc_bits: int = 12
    """ADC resolution (bits, 1..16); taps are stored as uint16."""
    adc_gain: float | None = None
    """Conversion gain (DN per e-); default: full well to the ADC's full scale, (2^adc_bits - 1) / full_well."""
    noise: bool = True
    """Photon shot noise and read noise; --no-noise gives the mean signal (still clipped and quantised)."""
    light: Literal["auto", "linear", "srgb"] = "auto"
    """Input light for the ambient term: linear EXR when present (auto), or force the linear EXR or the sRGB PNG."""
    seed: int = 0
    """Random seed; same seed and input give bit-identical output."""
    batch_size: int = 4
    """Output frames processed at once (bounds memory; does not change the output)."""

    @property
    def total_taps(self) -> int:
        """Taps per output frame: taps x frequencies."""
        return self.taps * len(self.frequencies)

    def dn_per_electron(self) -> float:
        """The conversion gain (DN/e-)."""
        return float(self.adc_gain) if self.adc_gain is not None else (2**self.adc_bits - 1) / self.full_well

    def validate(self) -> None:
        check_frequencies(tuple(self.frequencies))
        if self.code not in CODES:
            raise ConfigError(f"code must be one of {', '.join(CODES)}, got {self.code!r}")
        phase_response(self.code, self.taps)  # at least 3 taps; a monotonic response
        if self.tap_exposure is not None:
            check_positive("tap_exposure", self.tap_exposure)
        for name in ("source_power", "ambient_scale", "read_noise"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_positive("full_well", self.full_well)
        check_probability("qe", self.qe)
        if not 1 <= self.adc_bits <= 16:
            raise ConfigError(f"adc_bits must be in 1..16, got {self.adc_bits}")
        if self.adc_gain is not None:
            check_positive("adc_gain", self.adc_gain)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        self.check_device()


# ------------------------------------------------------------------------------------------------ the model


def tap_mean(
    cfg: ItofConfig,
    radial: np.ndarray,
    albedo: np.ndarray,
    luminance: np.ndarray,
    frequency_mhz: float,
    psi: float,
    cos_incidence: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Mean photo-electrons of one tap (HxW float32) from radial distance (m, inf: nothing), reflectance,
    ambient luminance and the incidence cosine (module docstring)."""
    d = np.asarray(radial, dtype=np.float32)
    hit = (d > 0) & (d < np.inf)
    inv = np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=hit)
    returned = np.float32(cfg.source_power) * np.asarray(albedo, np.float32) * cos_incidence * inv * inv
    phase = np.where(hit, d, np.float32(0.0)) * np.float32(4.0 * math.pi * frequency_mhz * 1e6 / C)
    mean = returned * correlation(cfg.code, phase - np.float32(psi))
    mean += np.float32(0.5 * cfg.ambient_scale) * np.asarray(luminance, np.float32)
    mean *= np.float32(cfg.qe)
    return mean


def digitise(cfg: ItofConfig, mean_e: np.ndarray, index: int) -> tuple[np.ndarray, int]:
    """Tap `index` (the global source-frame index) from its mean electrons: (uint16 DN, saturated pixels).
    Draws, from the tap's own stream: a Poisson per pixel, then a float32 standard normal per pixel."""
    well = np.float32(cfg.full_well)
    if cfg.noise:
        g = rng(cfg.seed, "itof_tap", index)
        e = g.poisson(np.minimum(mean_e, np.float32(4.0 * cfg.full_well + 1000.0))).astype(np.float32)
        full = e >= well
        np.minimum(e, well, out=e)
        e += np.float32(cfg.read_noise) * g.standard_normal(e.shape, dtype=np.float32)
    else:
        full = mean_e >= well
        e = np.minimum(mean_e, well)
    white = 2**cfg.adc_bits - 1
    dn = np.rint(e * np.float32(cfg.dn_per_electron()))
    top = dn >= white
    return np.clip(dn, 0, white).astype(np.uint16), int(np.count_nonzero(full | top))


def _reflectance(albedo: np.ndarray, channel: str) -> np.ndarray:
    if channel == "luminance":
        return albedo @ LUMA.astype(np.float32)
    return albedo[..., ALBEDO_CHANNELS[channel]]


# ------------------------------------------------------------------------------------------------ a run


@dataclass(frozen=True)
class Plan:
    """How taps fall on the source: K_total consecutive source frames per output frame."""

    taps: int
    n_out: int
    unused: int
    """Source frames after the last whole output frame (not read)."""
    tap_exposure: float


def plan(seq: Sequence, cfg: ItofConfig) -> Plan:
    """The pure plan of a run; refuses (typed, one line) a source that cannot give one output frame."""
    require_passes(seq, "emulate itof", cfg.incidence)
    kt = cfg.total_taps
    if seq.n < kt:
        raise ConfigError(f"{seq.n} source frames give no iToF frame of {kt} taps (one source frame per tap)")
    period = 1.0 / seq.fps
    exposure = period if cfg.tap_exposure is None else float(cfg.tap_exposure)
    if exposure > period * (1 + 1e-9):
        raise ConfigError(f"tap_exposure {exposure} s is longer than the source frame period {period} s")
    return Plan(kt, seq.n // kt, seq.n % kt, exposure)


def progress_total(seq: Sequence, cfg: ItofConfig) -> int:
    """Progress units of a run: source frames read (one per tap)."""
    p = plan(seq, cfg)
    return p.n_out * p.taps


def emulate_itof(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: ItofConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
    workers: int = 0,
) -> Path:
    """Emulate an iToF camera on a sequence; write frames.npy (N, H, W, taps) uint16 DN. Returns the folder."""
    return run_emulator(
        _run, progress_total, cfg or ItofConfig(), input_dir, output_dir, overwrite, progress, workers
    )


def tap_layout(cfg: ItofConfig) -> tuple[list[float], list[float]]:
    """(frequency MHz, phase offset rad) of each tap of an output frame, in capture order."""
    psi = tap_phases(cfg.taps).tolist()
    return [float(f) for f in cfg.frequencies for _ in psi], [p for _ in cfg.frequencies for p in psi]


def _run(seq: Sequence, out: Path, cfg: ItofConfig, progress: Progress, workers: int = 1) -> Path:
    h, w = seq.h, seq.w
    p = plan(seq, cfg)
    kt, n_out = p.taps, p.n_out
    freqs, psis = tap_layout(cfg)
    geometry = RayGeometry(seq)
    limit = extended_range(cfg.frequencies)
    stats = {"max_depth": 0.0, "frames_beyond": 0, "saturated": 0}
    device = gpu.resolve(cfg.device)
    if device is None:

        def digitised(mean: np.ndarray, i: int) -> tuple[np.ndarray, int]:
            return digitise(cfg, mean, i)

    else:
        from camsim.emulate.itof_gpu import TorchDigitiser

        digitised = TorchDigitiser(cfg, device)

    def tap(i: int) -> tuple[np.ndarray, int, float]:
        t = i % kt
        scale, rays = geometry.of(i)
        radial = seq.depth(i) * scale
        cos_i = incidence_cosine(seq.normal(i), rays) if cfg.incidence else 1.0
        lum = seq.linear(i) @ LUMA.astype(np.float32)
        mean = tap_mean(cfg, radial, _reflectance(seq.albedo(i), cfg.albedo_channel), lum, freqs[t], psis[t],
                        cos_i)  # fmt: skip
        dn, saturated = digitised(mean, i)
        return dn, saturated, float(np.max(radial, where=radial < np.inf, initial=0.0))

    with atomic_path(out / "frames.npy") as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint16, shape=(n_out, h, w, kt))
        for o0, o1 in batches(n_out, cfg.batch_size):
            results = parallel_map(tap, range(o0 * kt, o1 * kt), workers)
            for o in range(o0, o1):
                frame = results[(o - o0) * kt : (o - o0 + 1) * kt]
                arr[o] = np.stack([r[0] for r in frame], axis=-1)
                deepest = max(r[2] for r in frame)
                stats["max_depth"] = max(stats["max_depth"], deepest)
                stats["frames_beyond"] += deepest >= limit
                stats["saturated"] += sum(r[1] for r in frame)
            if progress:
                progress((o1 - o0) * kt)
        arr.flush()
        del arr
    warnings = _warnings(cfg, stats, limit, n_out * kt * h * w)
    for text in warnings:
        log.warning("%s: %s", seq.root, text)
    numbers = [round(float(seq.frame_numbers[o * kt])) for o in range(n_out)]
    block = _acquisition(cfg, p, limit)
    meta = output_meta(seq, _conventions(seq, cfg), fps=seq.fps / kt, sensor="itof", itof=block,
                       file_path="frames.npy", warnings=warnings)  # fmt: skip
    write_params(
        out,
        "itof",
        cfg,
        seq,
        output_frames=n_out,
        taps_per_frame=kt,
        unused_source_frames=p.unused,
        tap_exposure_s=p.tap_exposure,
        adc_gain_dn_per_e=cfg.dn_per_electron(),
        unambiguous_range_m=limit,
        range_per_frequency_m=[unambiguous_range(f * 1e6) for f in cfg.frequencies],
        max_radial_depth_m=stats["max_depth"],
        frames_beyond_range=stats["frames_beyond"],
        saturated_fraction=stats["saturated"] / max(1, n_out * kt * h * w),
        input_light=seq.light_name,
        warnings=warnings,
        device_used=gpu.describe(device),
    )
    write_transforms_streamed(
        out / "transforms.json", meta, lambda o: _frame_entry(seq, o, numbers[o], kt), n_out
    )
    return out


def _warnings(cfg: ItofConfig, stats: dict[str, Any], limit: float, values: int) -> list[str]:
    out = []
    if stats["frames_beyond"]:
        out.append(
            f"depths up to {stats['max_depth']:.3f} m exceed the unambiguous range {limit:.3f} m (c / (2 x "
            f"{common_frequency_mhz(cfg.frequencies):g} MHz)) in {stats['frames_beyond']} frame(s): decoded depth "
            "there wraps to depth mod the range"
        )
    if stats["saturated"]:
        out.append(
            f"{stats['saturated'] / values:.3%} of tap values saturate (full well {cfg.full_well:g} e- or the "
            f"ADC's {2**cfg.adc_bits - 1} DN): decoded depth there is wrong; lower --source-power or "
            "--ambient-scale"
        )
    return out


def _acquisition(cfg: ItofConfig, p: Plan, limit: float) -> dict[str, Any]:
    """transforms.json `itof`: every acquisition parameter (what `decode` reads)."""
    freqs, psis = tap_layout(cfg)
    return {
        "frequencies_mhz": [float(f) for f in cfg.frequencies],
        "taps_per_frequency": cfg.taps,
        "code": cfg.code,
        "tap_frequencies_mhz": freqs,
        "tap_phases_rad": psis,
        "tap_exposure_s": p.tap_exposure,
        "unambiguous_range_m": limit,
        "source_power": cfg.source_power,
        "ambient_scale": cfg.ambient_scale,
        "albedo_channel": cfg.albedo_channel,
        "incidence": cfg.incidence,
        "qe": cfg.qe,
        "read_noise_e": cfg.read_noise,
        "full_well_e": cfg.full_well,
        "adc_bits": cfg.adc_bits,
        "adc_gain_dn_per_e": cfg.dn_per_electron(),
        "noise": cfg.noise,
        "dtype": "uint16",
    }


def _frame_entry(seq: Sequence, o: int, number: int, kt: int) -> dict[str, Any]:
    """Output frame o: pose and time at the middle of its taps, and each tap's time and source frame."""
    first = o * kt
    mid = first + (kt - 1) / 2.0
    return {
        "transform_matrix": trajectory.linear_pose(seq.poses, mid).tolist(),
        **seq.place(mid, number),
        "tap_times": [float(seq.times[first + t]) for t in range(kt)],
        "tap_source_frame_numbers": [float(seq.frame_numbers[first + t]) for t in range(kt)],
    }


def _conventions(seq: Sequence, cfg: ItofConfig) -> dict[str, str]:
    """What an iToF dataset holds, in words (replaces the source's conventions)."""
    kt = cfg.total_taps
    own = {
        "frames": f"frames.npy: (N, H, W, {kt}) uint16 digital numbers (ADC of {cfg.adc_bits} bits), channel "
        f"t = f x K + k holding tap k (phase offset itof.tap_phases_rad[t] = 2 pi k / K, K = {cfg.taps}) of "
        "modulation frequency f (itof.tap_frequencies_mhz[t]); camsim.emulate.itof.read_taps gives (N, taps, H, "
        "W) and camsim.emulate.itof.decode radial depth and amplitude",
        "taps": f"tap t of frame j is source frame j x {kt} + t: each tap sees the scene at its own time "
        "(frames[j].tap_times, tap_source_frame_numbers), so moving edges mix taps of different depths",
        "time": f"{timebase.TIME}; the middle of the frame's taps",
        "frame_number": "the frame_number of the source frame of the frame's first tap",
        "source_frame_number": timebase.SOURCE_FRAME_NUMBER,
    }
    src = (seq.meta.get("conventions") or {}).get("transform_matrix")
    if src:
        own["transform_matrix"] = (
            f"{src}; the pose at the frame's time (linear position, slerp rotation between source poses)"
        )
    return timebase.conventions(seq.meta, own)


def read_taps(path: str | os.PathLike[str]) -> np.ndarray:
    """An iToF output's taps as (N, taps, H, W) uint16 (a view of the memory-mapped frames.npy)."""
    meta = transforms.read(path)
    if meta.get("sensor") != "itof":
        raise DatasetError(f"{path}: not an iToF output (transforms.json sensor is {meta.get('sensor')!r})")
    arr = np.load(transforms.resolve_path(path, meta["file_path"]), mmap_mode="r")
    return np.moveaxis(arr, -1, 1)
