"""Single-photon (SPAD) camera: binary frames from linear light.

Per pixel and gate: photo-electrons and dark counts are Poisson with mean
`lambda = (qe * photons_per_s * L + dcr) * gate_time`, so a gate detects with `p = 1 - exp(-lambda)`:
the first arrival, in units of the mean arrival time, is an Exp(1) variate E, and the pixel detects when
E < lambda (exactly probability p, with no transcendental function per pixel and gate).
Auto-exposure (the default, when no gate time is given) picks one gate for the whole sequence: the one at
which a pixel of the sequence's mean luminance (sampled on a few frames) detects with a target probability
(0.5), at most the binary-frame period; params.json records the choice.
Dark count rates are log-normal across pixels with a fraction of hot pixels (a fixed pattern drawn
once from the seed). Optional effects, applied in time order so state carries across batches:
dead time (a pixel that fired in the previous gate is blind for what is left of its dead time),
afterpulsing (a detection re-fires in the next gate with a probability) and crosstalk (a detection
fires each 4-neighbour with a probability, one generation).

One module, over 400 lines: one sensor model with its config and auto-exposure; each stage is a pure
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

from camsim import trajectory, transforms
from camsim.emulate import gpu, timebase
from camsim.emulate.common import (
    Progress,
    batches,
    blockwise,
    check_positive,
    check_probability,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.gpu import OnDevice
from camsim.emulate.light import LUMA, Sequence, output_meta, photon_rate, run_emulator
from camsim.errors import ConfigError
from camsim.fileio import atomic_path, write_image
from camsim.passes import FRAME

log = logging.getLogger(__name__)


@dataclass
class SpadConfig(OnDevice):
    """Single-photon camera parameters (defaults: a typical SPAD array, e.g. SPAD512-like)."""

    flux: float = 1e6
    """Photons reaching a pixel at white (linear value 1), per second or per input frame (see flux_per); the default is of the order of a lit indoor scene on a ~10 um pixel."""
    flux_per: Literal["second", "frame"] = "second"
    """Unit of --flux: photons per pixel per second, or per input frame."""
    qe: float = 0.4
    """Photon detection efficiency (0..1)."""
    frames_per_input: int = 1
    """Binary frames per input frame (K); they share the input's light."""
    gate_time: float | None = None
    """Gate (exposure) of one binary frame in seconds; default: auto-exposure (see auto_exposure_target)."""
    auto_exposure_target: float = 0.5
    """Auto-exposure, used when no gate_time is given: the detection probability per binary frame of a pixel at the sequence's mean luminance (0 < target < 1); the gate is at most the binary-frame period."""
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

    def validate(self) -> None:
        check_positive("flux", self.flux, allow_zero=True)
        if not (math.isfinite(self.auto_exposure_target) and 0.0 < self.auto_exposure_target < 1.0):
            raise ConfigError(
                f"auto_exposure_target must be strictly between 0 and 1, got {self.auto_exposure_target}"
            )
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
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        self.check_device()


@dataclass(frozen=True)
class Timing:
    """How binary frames fall on the source: K per source frame, grouped by `levels` into output frames."""

    k: int
    levels: int
    n_out: int
    period: float
    """Binary-frame period (s)."""


def timing(seq: Sequence, cfg: SpadConfig) -> Timing:
    """The pure plan of a run; ConfigError when the input cannot give one output frame or the gate is too long."""
    k = cfg.frames_per_input
    levels = 2**cfg.bits - 1
    n_bin = seq.n * k
    if n_bin // levels < 1:
        raise ConfigError(
            f"{seq.n} input frames x {k} give {n_bin} binary frames, fewer than 2^bits-1 = {levels}"
        )
    period = 1.0 / (seq.fps * k)
    if cfg.gate_time is not None and cfg.gate_time > period * (1 + 1e-9):
        raise ConfigError(f"gate_time {cfg.gate_time} s is longer than the binary-frame period {period} s")
    return Timing(k, levels, n_bin // levels, period)


def progress_total(seq: Sequence, cfg: SpadConfig) -> int:
    """Progress units of a run: input frames."""
    timing(seq, cfg)
    return seq.n


def exposure_frames(n: int, count: int = 9) -> list[int]:
    """Up to `count` evenly spaced frame indices (first and last included) that auto-exposure looks at."""
    return sorted({round(v) for v in np.linspace(0, n - 1, min(n, count))})


def auto_gate(signal_rate: float, dark_rate: float, target: float, period: float) -> float:
    """The gate (s) at which Poisson rate signal_rate + dark_rate (counts/s) detects with probability `target`, at most `period`."""
    rate = signal_rate + dark_rate
    if rate <= 0:
        return period
    return min(period, -math.log1p(-target) / rate)


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
    """What carries from one binary frame to the next (for dead time and afterpulsing), and the work buffers
    of a binary frame (reused: a fresh array per frame costs page faults)."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.arrival: np.ndarray | None = None
        self.lam: np.ndarray | None = None
        self.det: list[np.ndarray] = []

    def buffers(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrivals (Exp(1) variates), Poisson means and a detection map of `shape`; the detection map
        alternates between two arrays, so the previous frame's (`prev`) stays intact."""
        if self.arrival is None or self.arrival.shape != shape:
            self.arrival, self.lam = np.empty(shape, np.float32), np.empty(shape, np.float32)
            self.det = [np.empty(shape, bool), np.empty(shape, bool)]
        self.det.reverse()
        return self.arrival, self.lam, self.det[0]


def _binary_frame(
    cfg: SpadConfig, rate: np.ndarray, gate: float, period: float, j: int, state: _State
) -> np.ndarray:
    """One binary frame (HxWxC bool) for global binary-frame index j from a rate map (counts/s)."""
    g = rng(cfg.seed, "spad_frame", j)
    arrival, lam, det = state.buffers(rate.shape)
    g.standard_exponential(out=arrival, dtype=np.float32)
    np.multiply(rate, np.float32(gate), out=lam)
    if state.prev is not None and cfg.dead_time > period - gate:
        blind = min(gate, cfg.dead_time - (period - gate))
        np.copyto(lam, rate * np.float32(gate - blind), where=state.prev)
    # The first arrival (in mean arrival times) comes within the gate: probability 1 - exp(-lam).
    np.less(arrival, lam, out=det)
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
    workers: int = 0,
) -> Path:
    """Emulate a SPAD camera on a sequence; write an NPY (bit-packed) or IMG dataset. Returns the folder.

    `progress` is called with the number of input frames finished after each batch (`progress_total` in
    all); `workers` threads read frames and draw random numbers (0: one per CPU core; same output).
    """
    return run_emulator(
        _run, progress_total, cfg or SpadConfig(), input_dir, output_dir, overwrite, progress, workers
    )


def _mean_signal(seq: Sequence, cfg: SpadConfig, workers: int) -> tuple[float, list[int]]:
    """Mean luminance (colour: mean of the planes) of the frames auto-exposure samples."""
    idx = exposure_frames(seq.n)

    def mean(i: int) -> float:
        lin = seq.linear(i)
        return float(lin.mean()) if cfg.color else float((lin @ LUMA.astype(np.float32)).mean())

    return float(np.mean(parallel_map(mean, idx, workers))), idx


def _run(seq: Sequence, out: Path, cfg: SpadConfig, progress: Progress, workers: int = 1) -> Path:
    h, w = seq.h, seq.w
    tm = timing(seq, cfg)
    k, levels, n_out, period = tm.k, tm.levels, tm.n_out, tm.period
    c = 3 if cfg.color else 1
    phot = photon_rate(cfg.flux, cfg.flux_per, seq.fps)
    auto: dict = {}
    if cfg.gate_time is None:
        mean_lum, sampled = _mean_signal(seq, cfg, workers)
        gate = auto_gate(cfg.qe * phot * mean_lum, cfg.dark_count_rate, cfg.auto_exposure_target, period)
        p_mean = float(
            detection_probability(np.float64((cfg.qe * phot * mean_lum + cfg.dark_count_rate) * gate))
        )
        auto = {
            "target_detection_probability": cfg.auto_exposure_target,
            "mean_luminance": mean_lum,
            "sampled_frames": sampled,
            "detection_probability_at_mean": p_mean,
            "limited_by_period": bool(gate >= period),
        }
        signal = cfg.qe * phot * mean_lum
        if cfg.dark_count_rate > signal:
            log.warning(
                "SPAD auto-exposure: dark counts (%.3g /s) outweigh the signal at the mean luminance (%.3g /s): "
                "the frames are mostly noise; raise --flux",
                cfg.dark_count_rate,
                signal,
            )
        if p_mean < cfg.auto_exposure_target / 2:
            log.warning(
                "SPAD auto-exposure: the whole binary-frame period (%.3g s) gives detection probability %.3g at "
                "the mean luminance (target %.3g); raise --flux or lower --frames-per-input",
                period,
                p_mean,
                cfg.auto_exposure_target,
            )
    else:
        gate = float(cfg.gate_time)
    dcr = dark_count_map(cfg, h, w, c)
    dtype = np.uint8 if cfg.bits <= 8 else np.uint16
    source_numbers = seq.frame_numbers
    numbers = [timebase.subframe_number(source_numbers, o * levels, k) for o in range(n_out)]
    del source_numbers  # not held while frames are processed (memory flat in the sequence length)

    def rate_of(i: int) -> np.ndarray:
        """qe * photons * signal + dark counts (counts/s), in place where the array is this function's own."""
        lin = seq.linear(i)
        if cfg.color:
            rate = np.float32(cfg.qe * phot) * lin
        else:
            rate = (lin @ LUMA.astype(np.float32))[..., None]
            rate *= np.float32(cfg.qe * phot)
        rate += dcr
        return rate.astype(np.float32, copy=False)

    packed_w = math.ceil(w / 8)
    state = _State()
    device = gpu.resolve(cfg.device)
    if device is None:

        def draw(rate: np.ndarray, gate: float, period: float, j: int) -> np.ndarray:
            return _binary_frame(cfg, rate, gate, period, j, state)

    else:
        from camsim.emulate.spad_gpu import TorchFrames

        draw = TorchFrames(cfg, device)
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
            rates = parallel_map(rate_of, range(b0, b1), workers)
            for i, rate in zip(range(b0, b1), rates, strict=True):
                for kk in range(k):
                    j = i * k + kk
                    if o >= n_out:
                        break
                    det = draw(rate, gate, period, j)
                    if levels == 1:  # binary output: the frame itself
                        _emit(cfg, out, arr, det, o, numbers[o], levels, dtype)
                        o += 1
                        continue
                    acc += det
                    filled += 1
                    if filled == levels:
                        _emit(cfg, out, arr, acc, o, numbers[o], levels, dtype)
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
        _conventions(seq, cfg, levels, k),
        subframes=k,
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
        seq,
        binary_frame_period_s=period,
        gate_time_s=gate,
        exposure="auto" if cfg.gate_time is None else "gate_time",
        auto_exposure=auto or None,
        photons_per_pixel_per_s_at_white=phot,
        expected_detections_per_gate_at_white=cfg.qe * phot * gate,
        output_frames=n_out,
        binary_frames_per_output=levels,
        input_light=seq.light_name,
        dark_count_rate_mean=float(dcr.mean()),
        device_used=gpu.describe(device),
    )
    pose = blockwise(
        lambda os: trajectory.linear_poses(seq.poses, [_middle(int(o), levels, k) for o in os]), n_out
    )
    write_transforms_streamed(
        out / "transforms.json",
        meta,
        lambda o: _frame_entry(cfg, seq, o, numbers[o], levels, k, pose(o)),
        n_out,
    )
    return out


def _conventions(seq: Sequence, cfg: SpadConfig, levels: int, k: int) -> dict[str, str]:
    """What a SPAD dataset holds, in words (replaces the source's conventions)."""
    planes = (
        "channels R, G, B: one detector per colour plane"
        if cfg.color
        else "one channel: a monochrome detector seeing Rec. 709 luminance"
    )
    if cfg.bits == 1:
        values = (
            "binary photon detections: 1 where the pixel detected at least one photon or dark count during its "
            "gate, 0 where it detected none"
        )
        store = (
            "NPY (frames.npy): one bit per pixel, packed with numpy.packbits (big bit order) along bitpack_dim, "
            "w the unpacked width; IMG (frames/frame_NNNNNN.png, NNNNNN = frame_number): 8 bit, 0 = no "
            "detection, 255 = detection"
        )
    else:
        scale = 65535 if cfg.bits > 8 else 255
        values = (
            f"detection counts: how many of the spad_levels = {levels} binary frames summed into the frame "
            f"detected (0..{levels})"
        )
        store = (
            f"NPY (frames.npy): the counts, {'uint8' if cfg.bits <= 8 else 'uint16'}; IMG written by emulate "
            f"spad --mode img (frames/frame_NNNNNN.png, NNNNNN = frame_number): round(count x {scale} / {levels})"
        )
    src = (seq.meta.get("conventions") or {}).get("transform_matrix")
    own = {
        "frames": f"{values}; {planes}; {store}",
        "time": f"{timebase.TIME}; the middle of the binary frames the frame holds. Binary frame k (0..K-1, "
        f"K = frames_per_input = {k}) of source frame i spans [i - 1/2 + k/K, i - 1/2 + (k+1)/K) in source "
        "frames and sees source frame i's light",
        "frame_number": f"integer, unique: source frame_number x subframes_per_source_frame (K = {k}) + k for "
        "binary frame k of that source frame; a frame that sums several binary frames (spad_levels) carries its "
        "first one's number",
        "source_frame_number": timebase.SOURCE_FRAME_NUMBER,
    }
    if src:
        own["transform_matrix"] = (
            f"{src}; the pose at the frame's time (linear position, slerp rotation between source poses; the "
            "first or last source pose beyond them)"
        )
    return timebase.conventions(seq.meta, own)


def _middle(o: int, levels: int, k: int) -> float:
    """Fractional input-frame index of the middle of output frame o's binary frames."""
    return (o * levels + levels / 2.0) / k - 0.5


def _frame_entry(
    cfg: SpadConfig, seq: Sequence, o: int, number: int, levels: int, k: int, pose: np.ndarray
) -> dict:
    """transforms.json entry of output frame o: pose (`trajectory.linear_pose` at its middle, given) and time at
    the middle of its binary frames."""
    x = _middle(o, levels, k)
    entry = {"transform_matrix": pose.tolist(), **seq.place(x, number)}
    if cfg.mode == "img":
        entry[FRAME.key] = FRAME.relpath(number)
    return entry


def _emit(cfg, out, arr, acc, o, number, levels, dtype) -> None:
    """Store output frame o (the sum of `levels` binary frames)."""
    if cfg.bits == 1:
        frame = acc.astype(bool, copy=False)
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
        write_image(out / FRAME.relpath(number), img[..., 0] if img.shape[2] == 1 else img)


def unpack_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an NPY SPAD dataset's frames as (N, H, W, C) (unpacking bits when bitpacked)."""
    meta = transforms.read(path)
    arr = np.load(transforms.resolve_path(path, meta["file_path"]), mmap_mode="r")
    if meta.get("bitpack"):
        arr = np.unpackbits(arr, axis=int(meta.get("bitpack_dim", 2)), count=int(meta["w"]))
    return np.asarray(arr)
