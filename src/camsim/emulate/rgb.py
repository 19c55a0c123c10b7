"""Conventional RGB camera: exposure (motion blur, rolling shutter), Bayer sensor noise, then an ISP.

Sensor model per output frame, in photo-electrons e- of the pixel's Bayer colour:
  signal  = Poisson(qe * photons * PRNU) + Poisson(dark_current * t_exp + DSNU)   clipped at full well
  DN      = round((signal + N(0, read_noise)) * gain + black_level)                clipped to the ADC range
with gain = iso/100 * (2^adc_bits - 1 - black_level) / full_well DN/e-. The photon-transfer curve of
this model is var(DN) = gain * mean(DN - black) + gain^2 * read_noise^2 (+ 1/12 quantisation).
ISP: black subtraction, white balance, bilinear demosaic, 3x3 colour matrix, sRGB curve, 8 bit.

Output frame o integrates input frames o*N.. (N = chunk_size). When the input does not divide into
whole exposures, the last frame is kept (as VisionSim rounds up): it averages the frames that are left
(less motion blur, same exposure level), and says so (`exposure_input_frames`, params.json).

One module, over 400 lines: one sensor model (exposure, noise, ISP) with its config; each stage is a pure
function.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from camsim import trajectory
from camsim.emulate import gpu, srgb8, timebase
from camsim.emulate.common import (
    Progress,
    blockwise,
    check_positive,
    check_probability,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.gpu import OnDevice
from camsim.emulate.light import Sequence, output_meta, photon_rate, run_emulator
from camsim.errors import ConfigError
from camsim.fileio import write_image
from camsim.passes import FRAME, RAW

log = logging.getLogger(__name__)


@dataclass
class RgbConfig(OnDevice):
    """Conventional camera parameters (defaults: a typical global-shutter machine-vision camera)."""

    chunk_size: int = 1
    """Input frames averaged into one exposure (motion blur); output frame o uses frames o*N..o*N+N-1 (the last one fewer when the input does not divide into whole exposures)."""
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
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        self.check_device()

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


# The RGGB sites as slices (rows, columns) per channel: R at even/even, G at even/odd and odd/even, B at
# odd/odd (what `bayer_channel` says); strided copies, no per-pixel index arrays.
_SITES = {
    0: ((slice(0, None, 2), slice(0, None, 2)),),
    1: ((slice(0, None, 2), slice(1, None, 2)), (slice(1, None, 2), slice(0, None, 2))),
    2: ((slice(1, None, 2), slice(1, None, 2)),),
}


def mosaic(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 -> HxW RGGB mosaic."""
    h, w, _ = rgb.shape
    out = np.empty((h, w), rgb.dtype)
    for c, sites in _SITES.items():
        for rows, cols in sites:
            out[rows, cols] = rgb[rows, cols, c]
    return out


def demosaic_bilinear(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB mosaic (HxW float) to HxWx3; mirror borders keep the Bayer parity."""
    import cv2

    h, w = raw.shape
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    out = np.empty((h, w, 3), np.float32)
    plane = np.empty((h, w), np.float32)
    for c, k in ((0, k_rb), (1, k_g), (2, k_rb)):
        plane.fill(0)
        for rows, cols in _SITES[c]:
            plane[rows, cols] = raw[rows, cols]
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
        if len(frames) == 1:  # the mean of one frame is the frame (x / 1), without stacking a copy first
            return np.array(frames[0], dtype=np.float32)
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


def dark_mean(cfg: RgbConfig, t_exp: float, fpn: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean dark electrons per pixel of an exposure: dark current plus DSNU, at least 0."""
    return np.clip(cfg.dark_current * t_exp + fpn[1], 0, None)


def sense(
    cfg: RgbConfig,
    photons: np.ndarray,
    t_exp: float,
    fpn: tuple[np.ndarray, np.ndarray],
    index: int,
    dark: np.ndarray | None = None,
) -> np.ndarray:
    """Photons per pixel (mosaic or HxWx3) -> raw DN (uint16) with the noise of frame `index`; `dark` is
    `dark_mean` (computed when not given). In-place steps, each the formula's own operation."""
    if cfg.noise:
        g = rng(cfg.seed, "rgb_frame", index)
        lam = cfg.qe * photons
        lam *= fpn[0]  # PRNU
        e = g.poisson(lam).astype(np.float32)
        e += g.poisson(dark_mean(cfg, t_exp, fpn) if dark is None else dark).astype(np.float32)
        np.minimum(e, np.float32(cfg.full_well), out=e)
        read = g.standard_normal(e.shape, dtype=np.float32)
        read *= np.float32(cfg.read_noise)
        e += read
    else:
        e = np.minimum(np.float32(cfg.qe) * photons, np.float32(cfg.full_well))
    e *= np.float32(cfg.gain)
    e += np.float32(cfg.black_level)
    np.rint(e, out=e)
    np.clip(e, 0, cfg.white_level, out=e)
    return e.astype(np.uint16)


def isp(cfg: RgbConfig, raw: np.ndarray, exposure_white_e: float) -> np.ndarray:
    """Raw DN -> 8-bit sRGB: black level, normalise so white input maps to 1, WB, demosaic, CCM, curve."""
    lin = raw.astype(np.float32)
    lin -= cfg.black_level
    lin /= np.float32(exposure_white_e * cfg.gain)
    # Unit white-balance gains and an identity colour matrix are skipped: x * 1 and x * 1 + y * 0 + z * 0 are x
    # for finite x (a -0.0 that becomes +0.0 is clipped to the same code).
    wb = np.asarray(cfg.white_balance, np.float32)
    if cfg.bayer:
        for c, sites in _SITES.items():
            for rows, cols in sites:
                if wb[c] != 1:
                    lin[rows, cols] *= wb[c]
        rgb = demosaic_bilinear(lin)
    else:
        rgb = lin * wb if np.any(wb != 1) else lin
    ccm = np.asarray(cfg.color_matrix, np.float32).reshape(3, 3)
    if not np.array_equal(ccm, np.eye(3, dtype=np.float32)):
        rgb = rgb @ ccm.T
    return srgb8.encode(rgb)  # = np.rint(linear_to_srgb(rgb) * 255).astype(np.uint8), by table


@dataclass(frozen=True)
class Exposures:
    """How output frames fall on the input: the pure plan of a run."""

    m: int
    """Input frames between two output frames (chunk_size)."""
    n_span: int
    """Input frames one whole exposure touches (more than m with a rolling shutter)."""
    shift: float
    """Rolling-shutter row delay in input frames."""
    line_time: float
    t_exp: float
    weights: np.ndarray | None
    """Per-row weights of the n_span frames (rolling shutter), None for a plain mean."""
    n_out: int
    last_frames: int
    """Input frames the last exposure integrates (n_span unless the input runs out)."""

    def frames_of(self, o: int) -> int:
        return self.last_frames if o == self.n_out - 1 else self.n_span

    def weights_of(self, o: int) -> np.ndarray | None:
        """Row weights of exposure o: a partial last one keeps what falls on existing frames, renormalised."""
        if self.weights is None or self.frames_of(o) == self.n_span:
            return self.weights
        w = self.weights[:, : self.frames_of(o)]
        return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)

    def middle(self, o: int, h: int) -> float:
        """Fractional input index of the middle of exposure o (of its middle row with a rolling shutter)."""
        start = -0.5 + (h - 1) * self.shift / 2
        end = min(start + self.m, self.frames_of(o) - 0.5)
        return o * self.m + (start + end) / 2


def exposures(seq: Sequence, cfg: RgbConfig) -> Exposures:
    """Plan the exposures; ConfigError when the input cannot fill the rows of one rolling-shutter exposure."""
    h, m = seq.h, cfg.chunk_size
    t_exp = cfg.exposure if cfg.exposure is not None else m / seq.fps
    line_time = 0.0
    if cfg.rolling_shutter:
        line_time = cfg.line_time if cfg.line_time is not None else (m / seq.fps) / h
    shift = line_time * seq.fps
    n_span, weights = row_weights(h, m, shift)
    if not cfg.rolling_shutter:
        weights = None
        n_span = m
    if cfg.rolling_shutter and seq.n < n_span:
        raise ConfigError(f"{seq.n} input frames cannot fill one rolling-shutter exposure of {n_span} frames")
    n_out = math.ceil((seq.n - n_span) / m) + 1 if seq.n >= n_span else 1
    last = min(n_span, seq.n - (n_out - 1) * m)
    return Exposures(m, n_span, shift, line_time, t_exp, weights, n_out, last)


def progress_total(seq: Sequence, cfg: RgbConfig) -> int:
    """Progress units of a run: output frames."""
    return exposures(seq, cfg).n_out


def emulate_rgb(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: RgbConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
    workers: int = 0,
) -> Path:
    """Emulate a conventional camera; write an IMG dataset (8-bit sRGB PNGs). Returns the folder.

    `progress` is called with the number of output frames finished after each batch (`progress_total` in
    all); `workers` threads read frames and draw noise (0: one per CPU core; same output).
    """
    return run_emulator(
        _run, progress_total, cfg or RgbConfig(), input_dir, output_dir, overwrite, progress, workers
    )


def _run(seq: Sequence, out: Path, cfg: RgbConfig, progress: Progress, workers: int = 1) -> Path:
    h, w, m = seq.h, seq.w, cfg.chunk_size
    ex = exposures(seq, cfg)
    n_out, n_span, t_exp = ex.n_out, ex.n_span, ex.t_exp
    if ex.last_frames < n_span:
        log.info(
            "the last RGB frame integrates %d of %d input frames (%d frames do not divide into exposures of %d)",
            ex.last_frames,
            n_span,
            seq.n,
            m,
        )
    phot = photon_rate(cfg.flux, cfg.flux_per, seq.fps)
    shape = (h, w) if cfg.bayer else (h, w, 3)
    fpn = (
        fixed_pattern(cfg, shape) if cfg.noise else (np.ones(shape, np.float32), np.zeros(shape, np.float32))
    )
    dark = dark_mean(cfg, t_exp, fpn) if cfg.noise else None
    white_e = cfg.qe * phot * t_exp
    if white_e <= 0:
        raise ConfigError("flux, qe and exposure give no signal at white")
    if white_e > cfg.full_well:
        log.info("white saturates: %.0f e- > full well %.0f e-", white_e, cfg.full_well)
    (out / "frames").mkdir(exist_ok=True)
    if cfg.raw:
        (out / RAW.folder).mkdir(exist_ok=True)
    source_numbers = seq.frame_numbers
    numbers = [round(float(source_numbers[o * m])) for o in range(n_out)]
    del source_numbers  # not held while frames are processed (memory flat in the sequence length)
    cache: dict[int, np.ndarray] = {}
    pose = blockwise(lambda os: trajectory.linear_poses(seq.poses, [ex.middle(int(o), h) for o in os]), n_out)

    def entry(o: int) -> dict:
        """Pose and time at the middle of the exposure (middle row for a rolling shutter)."""
        mid = ex.middle(o, h)
        fr = {
            FRAME.key: FRAME.relpath(numbers[o]),
            "transform_matrix": pose(o).tolist(),
            **seq.place(mid, numbers[o]),
            "exposure_input_frames": ex.frames_of(o),
        }
        if cfg.raw:
            fr[RAW.key] = RAW.relpath(numbers[o])
        return fr

    device = gpu.resolve(cfg.device)
    if device is not None:
        from camsim.emulate.rgb_gpu import TorchCamera

        camera = TorchCamera(cfg, fpn, dark, white_e, device)

    def one(o: int) -> None:
        first = o * m
        lin = expose([cache[first + j] for j in range(ex.frames_of(o))], ex.weights_of(o))
        photons = phot * t_exp * lin
        sensed = mosaic(photons) if cfg.bayer else photons
        if device is None:
            raw = sense(cfg, sensed, t_exp, fpn, o, dark)
            img = isp(cfg, raw, white_e)
        else:
            img, raw = camera(sensed, o)
        write_image(out / FRAME.relpath(numbers[o]), img)
        if cfg.raw:
            write_image(out / RAW.relpath(numbers[o]), raw)

    for o0 in range(0, n_out, cfg.batch_size):
        o1 = min(n_out, o0 + cfg.batch_size)
        need = range(o0 * m, min(seq.n, (o1 - 1) * m + n_span))
        for i in [i for i in cache if i < need.start]:
            del cache[i]
        todo = [i for i in need if i not in cache]
        for i, f in zip(todo, parallel_map(seq.linear, todo, workers), strict=True):
            cache[i] = f
        parallel_map(one, range(o0, o1), workers)
        if progress:
            progress(o1 - o0)
    meta = output_meta(
        seq, _conventions(seq, cfg), fps=seq.fps / m, sensor="rgb", input_frames_per_exposure=n_span
    )
    write_params(
        out,
        "rgb",
        cfg,
        seq,
        exposure_s=t_exp,
        line_time_s=ex.line_time,
        gain_dn_per_e=cfg.gain,
        photons_per_pixel_per_s_at_white=phot,
        electrons_at_white=white_e,
        device_used=gpu.describe(device),
        input_frames_per_exposure=n_span,
        output_frames=n_out,
        partial_last_exposure=(
            {"input_frames": ex.last_frames, "of": n_span} if ex.last_frames < n_span else None
        ),
        input_light=seq.light_name,
    )
    write_transforms_streamed(out / "transforms.json", meta, entry, n_out)
    return out


def _conventions(seq: Sequence, cfg: RgbConfig) -> dict[str, str]:
    """What an emulated RGB dataset holds, in words (replaces the source's conventions)."""
    steps = (
        "black level, white balance, bilinear RGGB demosaic, colour matrix"
        if cfg.bayer
        else ("black level, white balance, colour matrix (no colour filter array)")
    )
    own = {
        "frames": f"frames/frame_NNNNNN.png (NNNNNN = frame_number): 8-bit sRGB (IEC 61966-2-1 curve) from the "
        f"emulated camera's ISP ({steps}); the source's linear 1 (white) seen for the whole exposure is 255 "
        "before noise",
        "time": f"{timebase.TIME}; the middle of the exposure (of its middle row with a rolling shutter)",
        "frame_number": "the frame_number of the first source frame the exposure integrates; "
        "frames[i].exposure_input_frames source frames from there (chunk_size between frames; the last frame "
        "fewer when the input does not divide into whole exposures)",
        "source_frame_number": timebase.SOURCE_FRAME_NUMBER,
    }
    if cfg.raw:
        layout = "RGGB mosaic, one channel" if cfg.bayer else "R, G, B"
        own["raw"] = (
            f"raw/raw_NNNNNN.png: 16-bit PNG of the sensor's digital numbers ({layout}; black level "
            f"{cfg.black_level}, white level {cfg.white_level})"
        )
    src = (seq.meta.get("conventions") or {}).get("transform_matrix")
    if src:
        own["transform_matrix"] = (
            f"{src}; the pose at the frame's time (linear position, slerp rotation between source poses)"
        )
    return timebase.conventions(seq.meta, own)
