"""Conventional RGB camera: exposure (motion blur, rolling shutter), Bayer sensor noise, then an ISP.

Sensor model per output frame, in photo-electrons e- of the pixel's Bayer colour:
  signal  = Poisson(qe * photons * PRNU) + Poisson(dark_current * t_exp + DSNU)   clipped at full well
  DN      = round((signal + N(0, read_noise)) * gain + black_level)                clipped to the ADC range
with gain = iso/100 * (2^adc_bits - 1 - black_level) / full_well DN/e-. The photon-transfer curve of
this model is var(DN) = gain * mean(DN - black) + gain^2 * read_noise^2 (+ 1/12 quantisation).
ISP: black subtraction, white balance, bilinear demosaic, 3x3 colour matrix, sRGB curve, 8 bit.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from camsim.emulate.common import (
    Progress,
    check_positive,
    check_probability,
    interpolate_pose,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.light import Sequence, linear_to_srgb, output_meta, photon_rate, run_emulator
from camsim.errors import ConfigError
from camsim.fileio import write_image

log = logging.getLogger(__name__)


@dataclass
class RgbConfig:
    """Conventional camera parameters (defaults: a typical global-shutter machine-vision camera)."""

    chunk_size: int = 1
    """Input frames averaged into one exposure (motion blur); output frame o uses frames o*N..o*N+N-1."""
    exposure: float | None = None
    """Exposure time (s) used for the photon count; default chunk_size / fps (a 100% duty cycle)."""
    rolling_shutter: bool = False
    """Rolling shutter: row r integrates over a window shifted by r * line_time."""
    line_time: float | None = None
    """Row-to-row delay (s) of the rolling shutter; default: the exposure spread over the rows."""
    flux: float = 300000.0
    """Photons per pixel at white (linear value 1), per second or per input frame (see flux_per)."""
    flux_per: Literal["second", "frame"] = "second"
    """Unit of --flux: photons per pixel per second, or per input frame."""
    qe: float = 0.6
    """Quantum efficiency (0..1)."""
    full_well: float = 10000.0
    """Full-well capacity (e-)."""
    read_noise: float = 2.0
    """Read noise (e- rms)."""
    dark_current: float = 1.0
    """Dark current (e-/s per pixel)."""
    prnu: float = 0.01
    """Photo-response non-uniformity: relative rms gain spread across pixels."""
    dsnu: float = 0.5
    """Dark-signal non-uniformity: rms spread of a per-pixel dark offset (e- per exposure)."""
    adc_bits: int = 12
    """ADC resolution (bits)."""
    black_level: int = 64
    """Black level (DN) added before quantisation."""
    iso: float = 100.0
    """ISO; 100 maps full well to the ADC range, higher multiplies the gain."""
    noise: bool = True
    """Photon, dark, read and fixed-pattern noise; off gives the deterministic mean signal."""
    bayer: bool = True
    """RGGB Bayer mosaic and demosaic; off gives a 3-channel sensor (no colour filter array)."""
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """White-balance gains applied by the ISP to R, G, B."""
    color_matrix: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    """3x3 colour-correction matrix (row-major), applied to white-balanced linear RGB."""
    raw: bool = False
    """Also write the raw DN mosaic as a 16-bit PNG per frame (raw/, frames[i].raw_file_path)."""
    light: Literal["auto", "linear", "srgb"] = "auto"
    """Input light: linear EXR when present (auto), or force the linear EXR or the sRGB PNG."""
    seed: int = 0
    """Random seed; same seed and input give bit-identical output."""
    batch_size: int = 16
    """Output frames processed at once (bounds memory; does not change the output)."""
    workers: int = 1
    """Threads for reading frames and drawing noise (does not change the output)."""

    def validate(self) -> None:
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {self.chunk_size}")
        for name in ("flux", "full_well", "iso"):
            check_positive(name, getattr(self, name), allow_zero=name == "flux")
        for name in ("read_noise", "dark_current", "prnu", "dsnu"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_probability("qe", self.qe)
        if self.exposure is not None:
            check_positive("exposure", self.exposure)
        if self.line_time is not None:
            check_positive("line_time", self.line_time, allow_zero=True)
        if not 1 <= self.adc_bits <= 16:
            raise ConfigError(f"adc_bits must be in 1..16, got {self.adc_bits}")
        if not 0 <= self.black_level < 2**self.adc_bits - 1:
            raise ConfigError(f"black_level must be in [0, 2^adc_bits - 1), got {self.black_level}")
        if len(self.color_matrix) != 9:
            raise ConfigError(f"color_matrix needs 9 numbers, got {len(self.color_matrix)}")
        if self.workers < 1 or self.batch_size < 1:
            raise ConfigError("workers and batch_size must be at least 1")

    @property
    def white_level(self) -> int:
        return 2**self.adc_bits - 1

    @property
    def gain(self) -> float:
        """Conversion gain in DN per e-."""
        return self.iso / 100.0 * (self.white_level - self.black_level) / self.full_well


def bayer_channel(h: int, w: int) -> np.ndarray:
    """Index (0=R, 1=G, 2=B) of the RGGB colour filter over each pixel."""
    y, x = np.mgrid[0:h, 0:w]
    return np.where((y % 2 == 0) & (x % 2 == 0), 0, np.where((y % 2 == 1) & (x % 2 == 1), 2, 1)).astype(
        np.int8
    )


def mosaic(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 -> HxW RGGB mosaic."""
    h, w, _ = rgb.shape
    ch = bayer_channel(h, w)
    return np.take_along_axis(rgb, ch[..., None].astype(np.intp), axis=2)[..., 0]


def demosaic_bilinear(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB mosaic (HxW float) to HxWx3; mirror borders keep the Bayer parity."""
    import cv2

    h, w = raw.shape
    ch = bayer_channel(h, w)
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    out = np.empty((h, w, 3), np.float32)
    for c, k in ((0, k_rb), (1, k_g), (2, k_rb)):
        plane = np.where(ch == c, raw, 0).astype(np.float32)
        out[..., c] = cv2.filter2D(plane, -1, k, borderType=cv2.BORDER_REFLECT_101)
    return out


def row_weights(n_rows: int, m: int, shift: float) -> tuple[int, np.ndarray]:
    """Weights (rows x frames) of input frames in each row's exposure window, and the first frame.

    Input frame i stands for the interval [i - 1/2, i + 1/2) (frame units). Row r integrates
    [-1/2 + r*shift, -1/2 + r*shift + m) relative to the output's first frame; with shift 0 every row
    is the plain average of m frames.
    """
    span = m + (n_rows - 1) * shift
    n_frames = math.ceil(span - 1e-9)
    starts = -0.5 + np.arange(n_rows) * shift
    lo = np.arange(n_frames) - 0.5
    overlap = np.clip(
        np.minimum(starts[:, None] + m, lo[None, :] + 1) - np.maximum(starts[:, None], lo[None, :]), 0, None
    )
    return n_frames, (overlap / m).astype(np.float32)


def expose(frames: list[np.ndarray], weights: np.ndarray | None) -> np.ndarray:
    """Integrate linear frames over the exposure: plain mean, or per-row weights (rolling shutter)."""
    if weights is None:
        return np.mean(np.stack(frames), axis=0, dtype=np.float32).astype(np.float32)
    out = np.zeros_like(frames[0], dtype=np.float32)
    for j, f in enumerate(frames):
        wj = weights[:, j]
        if np.any(wj):
            out += wj[:, None, None] * f
    return out


def fixed_pattern(cfg: RgbConfig, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel PRNU gain (mean 1) and DSNU offset (e-), drawn once from the seed."""
    g = rng(cfg.seed, "rgb_fpn")
    prnu = (1.0 + cfg.prnu * g.standard_normal(shape)).clip(0, None).astype(np.float32)
    dsnu = (cfg.dsnu * g.standard_normal(shape)).astype(np.float32)
    return prnu, dsnu


def sense(
    cfg: RgbConfig, photons: np.ndarray, t_exp: float, fpn: tuple[np.ndarray, np.ndarray], index: int
) -> np.ndarray:
    """Photons per pixel (mosaic or HxWx3) -> raw DN (uint16) with the noise of frame `index`."""
    if cfg.noise:
        g = rng(cfg.seed, "rgb_frame", index)
        prnu, dsnu = fpn
        e = g.poisson(cfg.qe * photons * prnu).astype(np.float32)
        dark = np.clip(cfg.dark_current * t_exp + dsnu, 0, None)
        e += g.poisson(dark).astype(np.float32)
        e = np.minimum(e, np.float32(cfg.full_well))
        e += np.float32(cfg.read_noise) * g.standard_normal(e.shape, dtype=np.float32)
    else:
        e = np.minimum(np.float32(cfg.qe) * photons, np.float32(cfg.full_well))
    dn = np.rint(e * np.float32(cfg.gain) + np.float32(cfg.black_level))
    return np.clip(dn, 0, cfg.white_level).astype(np.uint16)


def isp(cfg: RgbConfig, raw: np.ndarray, exposure_white_e: float) -> np.ndarray:
    """Raw DN -> 8-bit sRGB: black level, normalise so white input maps to 1, WB, demosaic, CCM, curve."""
    lin = (raw.astype(np.float32) - cfg.black_level) / np.float32(exposure_white_e * cfg.gain)
    if cfg.bayer:
        wb = np.asarray(cfg.white_balance, np.float32)[bayer_channel(*raw.shape)]
        rgb = demosaic_bilinear(lin * wb)
    else:
        rgb = lin * np.asarray(cfg.white_balance, np.float32)
    ccm = np.asarray(cfg.color_matrix, np.float32).reshape(3, 3)
    rgb = rgb @ ccm.T
    return np.rint(linear_to_srgb(rgb) * 255).astype(np.uint8)


def emulate_rgb(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: RgbConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
) -> Path:
    """Emulate a conventional camera; write an IMG dataset (8-bit sRGB PNGs). Returns the folder.

    `progress` is called with the number of output frames finished after each batch.
    """
    return run_emulator(_run, cfg or RgbConfig(), input_dir, output_dir, overwrite, progress)


def _run(seq: Sequence, out: Path, cfg: RgbConfig, progress: Progress) -> Path:
    h, w, m = seq.h, seq.w, cfg.chunk_size
    t_exp = cfg.exposure if cfg.exposure is not None else m / seq.fps
    line_time = 0.0
    if cfg.rolling_shutter:
        line_time = cfg.line_time if cfg.line_time is not None else (m / seq.fps) / h
    shift = line_time * seq.fps
    n_span, weights = row_weights(h, m, shift)
    if not cfg.rolling_shutter:
        weights = None
        n_span = m
    n_out = (seq.n - n_span) // m + 1 if seq.n >= n_span else 0
    if n_out < 1:
        raise ConfigError(f"{seq.n} input frames cannot fill one exposure of {n_span} frames")
    phot = photon_rate(cfg.flux, cfg.flux_per, seq.fps)
    shape = (h, w) if cfg.bayer else (h, w, 3)
    fpn = (
        fixed_pattern(cfg, shape) if cfg.noise else (np.ones(shape, np.float32), np.zeros(shape, np.float32))
    )
    white_e = cfg.qe * phot * t_exp
    if white_e <= 0:
        raise ConfigError("flux, qe and exposure give no signal at white")
    if white_e > cfg.full_well:
        log.info("white saturates: %.0f e- > full well %.0f e-", white_e, cfg.full_well)
    (out / "frames").mkdir(exist_ok=True)
    if cfg.raw:
        (out / "raw").mkdir(exist_ok=True)
    cache: dict[int, np.ndarray] = {}

    def entry(o: int) -> dict:
        """Pose and time at the middle of the exposure (middle row for a rolling shutter)."""
        mid = o * m + (m - 1) / 2 + (h - 1) * shift / 2
        fr = {
            "file_path": f"frames/frame_{o:06d}.png",
            "transform_matrix": interpolate_pose(seq.poses, mid).tolist(),
            "time": float(np.interp(mid, np.arange(seq.n), seq.times)),
            "frame_number": o,
        }
        if cfg.raw:
            fr["raw_file_path"] = f"raw/raw_{o:06d}.png"
        return fr

    def one(o: int) -> None:
        first = o * m
        lin = expose([cache[first + j] for j in range(n_span)], weights)
        photons = phot * t_exp * lin
        raw = sense(cfg, mosaic(photons) if cfg.bayer else photons, t_exp, fpn, o)
        img = isp(cfg, raw, white_e)
        write_image(out / f"frames/frame_{o:06d}.png", img)
        if cfg.raw:
            write_image(out / f"raw/raw_{o:06d}.png", raw)

    for o0 in range(0, n_out, cfg.batch_size):
        o1 = min(n_out, o0 + cfg.batch_size)
        need = range(o0 * m, (o1 - 1) * m + n_span)
        for i in [i for i in cache if i < need.start]:
            del cache[i]
        todo = [i for i in need if i not in cache]
        for i, f in zip(todo, parallel_map(seq.linear, todo, cfg.workers), strict=True):
            cache[i] = f
        parallel_map(one, range(o0, o1), cfg.workers)
        if progress:
            progress(o1 - o0)
    meta = output_meta(seq, fps=seq.fps / m, sensor="rgb")
    write_params(
        out,
        "rgb",
        cfg,
        seq.root,
        exposure_s=t_exp,
        line_time_s=line_time,
        gain_dn_per_e=cfg.gain,
        photons_per_pixel_per_s_at_white=phot,
        electrons_at_white=white_e,
        input_frames_per_exposure=n_span,
        output_frames=n_out,
        input_light="linear EXR" if seq.uses_linear(0) else "sRGB PNG (linearised)",
    )
    write_transforms_streamed(out / "transforms.json", meta, entry, n_out)
    return out
