"""Single-photon (SPAD) camera: binary frames from linear light.

Per pixel and gate: photo-electrons and dark counts are Poisson with mean
`lambda = (qe * photons_per_s * L + dcr) * gate_time`, so a gate detects with `p = 1 - exp(-lambda)`.
Dark count rates are log-normal across pixels with a fraction of hot pixels (a fixed pattern drawn
once from the seed). Optional effects, applied in time order so state carries across batches:
dead time (a pixel that fired in the previous gate is blind for what is left of its dead time),
afterpulsing (a detection re-fires in the next gate with a probability) and crosstalk (a detection
fires each 4-neighbour with a probability, one generation).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from camsim import transforms
from camsim.emulate.common import (
    Progress,
    batches,
    check_positive,
    check_probability,
    interpolate_pose,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.light import LUMA, Sequence, output_meta, photon_rate, run_emulator
from camsim.errors import ConfigError
from camsim.fileio import atomic_path, write_image

log = logging.getLogger(__name__)


@dataclass
class SpadConfig:
    """Single-photon camera parameters (defaults: a typical SPAD array, e.g. SPAD512-like)."""

    flux: float = 1000.0
    """Photons per pixel at white (linear value 1), per second or per input frame (see flux_per)."""
    flux_per: Literal["second", "frame"] = "second"
    """Unit of --flux: photons per pixel per second, or per input frame."""
    qe: float = 0.4
    """Photon detection efficiency (0..1)."""
    frames_per_input: int = 1
    """Binary frames per input frame (K); they share the input's light."""
    gate_time: float | None = None
    """Gate (exposure) of one binary frame in seconds; default: the whole binary-frame period."""
    dark_count_rate: float = 100.0
    """Median dark count rate per pixel (counts/s)."""
    dcr_sigma: float = 0.5
    """Log-normal spread (sigma of ln DCR) of dark count rates across pixels."""
    hot_pixel_fraction: float = 0.01
    """Fraction of hot pixels."""
    hot_pixel_rate: float = 10000.0
    """Dark count rate of a hot pixel (counts/s)."""
    dead_time: float = 0.0
    """Dead time after a detection (s); matters only when longer than the gap between gates."""
    afterpulsing: float = 0.0
    """Probability that a detection re-fires in the next binary frame."""
    crosstalk: float = 0.0
    """Probability that a detection fires each of its 4 neighbours in the same frame."""
    color: bool = False
    """Colour SPAD (R, G, B planes, each with its own detector) instead of monochrome luminance."""
    bits: int = 1
    """Bit depth B of an output frame: sums 2^B - 1 consecutive binary frames (1 = binary)."""
    mode: Literal["npy", "img"] = "npy"
    """Output: one bit-packed frames.npy (NPY format) or one PNG per output frame (IMG format)."""
    light: Literal["auto", "linear", "srgb"] = "auto"
    """Input light: linear EXR when present (auto), or force the linear EXR or the sRGB PNG."""
    seed: int = 0
    """Random seed; same seed and input give bit-identical output."""
    batch_size: int = 64
    """Input frames processed at once (bounds memory; does not change the output)."""
    workers: int = 1
    """Threads for reading frames and drawing random numbers (does not change the output)."""

    def validate(self) -> None:
        check_positive("flux", self.flux, allow_zero=True)
        check_probability("qe", self.qe)
        for name in ("dark_count_rate", "dcr_sigma", "hot_pixel_rate", "dead_time"):
            check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("hot_pixel_fraction", "afterpulsing", "crosstalk"):
            check_probability(name, getattr(self, name))
        if self.frames_per_input < 1:
            raise ConfigError(f"frames_per_input must be at least 1, got {self.frames_per_input}")
        if not 1 <= self.bits <= 16:
            raise ConfigError(f"bits must be in 1..16, got {self.bits}")
        if self.gate_time is not None:
            check_positive("gate_time", self.gate_time)
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")


def detection_probability(lam: np.ndarray) -> np.ndarray:
    """P(at least one count) for Poisson mean lam: 1 - exp(-lam), accurate for tiny lam."""
    return -np.expm1(-lam)


def dark_count_map(cfg: SpadConfig, h: int, w: int, c: int) -> np.ndarray:
    """Per-pixel dark count rates (counts/s): log-normal around the median, plus hot pixels."""
    g = rng(cfg.seed, "spad_dcr")
    dcr = cfg.dark_count_rate * np.exp(cfg.dcr_sigma * g.standard_normal((h, w, c)))
    hot = g.random((h, w, c)) < cfg.hot_pixel_fraction
    dcr[hot] = cfg.hot_pixel_rate
    return dcr.astype(np.float32)


def _neighbours(det: np.ndarray) -> np.ndarray:
    """Count of detecting 4-neighbours of each pixel (HxWxC uint8)."""
    n = np.zeros(det.shape, np.uint8)
    n[1:] += det[:-1]
    n[:-1] += det[1:]
    n[:, 1:] += det[:, :-1]
    n[:, :-1] += det[:, 1:]
    return n


class _State:
    """What carries from one binary frame to the next (for dead time and afterpulsing)."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None


def _binary_frame(
    cfg: SpadConfig, rate: np.ndarray, gate: float, period: float, j: int, state: _State
) -> np.ndarray:
    """One binary frame (HxWxC bool) for global binary-frame index j from a rate map (counts/s)."""
    g = rng(cfg.seed, "spad_frame", j)
    u = g.random(rate.shape, dtype=np.float32)
    lam = rate * np.float32(gate)
    if state.prev is not None and cfg.dead_time > period - gate:
        blind = min(gate, cfg.dead_time - (period - gate))
        lam = np.where(state.prev, rate * np.float32(gate - blind), lam)
    det = u < detection_probability(lam)
    if cfg.afterpulsing > 0 and state.prev is not None:
        det |= state.prev & (g.random(rate.shape, dtype=np.float32) < cfg.afterpulsing)
    if cfg.crosstalk > 0:
        k = _neighbours(det)
        p_ct = 1.0 - (1.0 - cfg.crosstalk) ** k.astype(np.float32)
        det |= g.random(rate.shape, dtype=np.float32) < p_ct
    state.prev = det
    return det


def emulate_spad(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: SpadConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
) -> Path:
    """Emulate a SPAD camera on a sequence; write an NPY (bit-packed) or IMG dataset. Returns the folder.

    `progress` is called with the number of input frames finished after each batch.
    """
    return run_emulator(_run, cfg or SpadConfig(), input_dir, output_dir, overwrite, progress)


def _run(seq: Sequence, out: Path, cfg: SpadConfig, progress: Progress) -> Path:
    h, w, k = seq.h, seq.w, cfg.frames_per_input
    c = 3 if cfg.color else 1
    levels = 2**cfg.bits - 1
    n_bin = seq.n * k
    n_out = n_bin // levels
    if n_out < 1:
        raise ConfigError(
            f"{seq.n} input frames x {k} give {n_bin} binary frames, fewer than 2^bits-1 = {levels}"
        )
    period = 1.0 / (seq.fps * k)
    gate = period if cfg.gate_time is None else float(cfg.gate_time)
    if gate > period * (1 + 1e-9):
        raise ConfigError(f"gate_time {gate} s is longer than the binary-frame period {period} s")
    phot = photon_rate(cfg.flux, cfg.flux_per, seq.fps)
    dcr = dark_count_map(cfg, h, w, c)
    dtype = np.uint8 if cfg.bits <= 8 else np.uint16

    def rate_of(i: int) -> np.ndarray:
        lin = seq.linear(i)
        sig = lin if cfg.color else (lin @ LUMA.astype(np.float32))[..., None]
        return (np.float32(cfg.qe * phot) * sig + dcr).astype(np.float32)

    packed_w = math.ceil(w / 8)
    state = _State()
    arr = None
    tmp_ctx = None
    if cfg.mode == "npy":
        shape = (n_out, h, packed_w, c) if cfg.bits == 1 else (n_out, h, w, c)
        tmp_ctx = atomic_path(out / "frames.npy")
        tmp = tmp_ctx.__enter__()
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    else:
        (out / "frames").mkdir(exist_ok=True)
    try:
        acc = np.zeros((h, w, c), np.uint16)
        filled = 0
        o = 0
        for b0, b1 in batches(seq.n, cfg.batch_size):
            rates = parallel_map(rate_of, range(b0, b1), cfg.workers)
            for i, rate in zip(range(b0, b1), rates, strict=True):
                for kk in range(k):
                    j = i * k + kk
                    if o >= n_out:
                        break
                    acc += _binary_frame(cfg, rate, gate, period, j, state)
                    filled += 1
                    if filled == levels:
                        _emit(cfg, out, arr, acc, o, levels, dtype)
                        acc[:] = 0
                        filled = 0
                        o += 1
            if progress:
                progress(b1 - b0)
        if arr is not None:
            arr.flush()
            del arr
            tmp_ctx.__exit__(None, None, None)
            tmp_ctx = None
    except BaseException as exc:
        if tmp_ctx is not None:
            tmp_ctx.__exit__(type(exc), exc, exc.__traceback__)
        raise
    meta = output_meta(
        seq,
        fps=seq.fps * k / levels,
        sensor="spad",
        spad_levels=levels,
    )
    if cfg.mode == "npy":
        meta["file_path"] = "frames.npy"
        if cfg.bits == 1:
            meta.update(bitpack=True, bitpack_dim=2)
    write_params(
        out,
        "spad",
        cfg,
        seq.root,
        binary_frame_period_s=period,
        gate_time_s=gate,
        photons_per_pixel_per_s_at_white=phot,
        output_frames=n_out,
        binary_frames_per_output=levels,
        input_light="linear EXR" if seq.uses_linear(0) else "sRGB PNG (linearised)",
        dark_count_rate_mean=float(dcr.mean()),
    )
    write_transforms_streamed(
        out / "transforms.json", meta, lambda o: _frame_entry(cfg, seq, o, levels, k), n_out
    )
    return out


def _frame_entry(cfg: SpadConfig, seq: Sequence, o: int, levels: int, k: int) -> dict:
    """transforms.json entry of output frame o: pose and time at the middle of its binary frames."""
    x = (o * levels + (levels - 1) / 2.0 + 0.5) / k - 0.5  # fractional input-frame index
    entry = {
        "transform_matrix": interpolate_pose(seq.poses, x).tolist(),
        "time": float(np.interp(x, np.arange(seq.n), seq.times)),
        "frame_number": o,
    }
    if cfg.mode == "img":
        entry["file_path"] = f"frames/frame_{o:06d}.png"
    return entry


def _emit(cfg, out, arr, acc, o, levels, dtype) -> None:
    """Store output frame o (the sum of `levels` binary frames)."""
    if cfg.bits == 1:
        frame = acc.astype(bool)
        if arr is not None:
            arr[o] = np.packbits(frame, axis=1)
    else:
        frame = acc.astype(dtype)
        if arr is not None:
            arr[o] = frame
    if arr is None:
        scale = 65535 if cfg.bits > 8 else 255
        img = np.rint(acc.astype(np.float64) * (scale / levels)).astype(
            np.uint16 if cfg.bits > 8 else np.uint8
        )
        write_image(out / f"frames/frame_{o:06d}.png", img[..., 0] if img.shape[2] == 1 else img)


def unpack_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an NPY SPAD dataset's frames as (N, H, W, C) (unpacking bits when bitpacked)."""
    meta = transforms.read(path)
    arr = np.load(transforms.resolve_path(path, meta["file_path"]), mmap_mode="r")
    if meta.get("bitpack"):
        arr = np.unpackbits(arr, axis=int(meta.get("bitpack_dim", 2)), count=int(meta["w"]))
    return np.asarray(arr)
