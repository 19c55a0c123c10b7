"""Event camera (DVS) after v2e's pixel model, with ESIM-style interpolated timestamps.

Per pixel: intensity I = 255 * luminance (v2e's DN scale) goes through lin-log (linear below
`lin_log_threshold`, log above), then a first-order photoreceptor low-pass whose cutoff scales with
intensity (v2e: eps = (I + 20) / 275 * dt * 2 pi f_3dB, clipped to 1). Between two frames the
filtered log intensity y(t) is linear. The pixel keeps d(t) = y(t) - memorised level; leak makes the
memorised level drift down at `leak_rate * threshold_on` per second, so d(t) stays linear in t and
every threshold crossing has an exact time. A pixel fires ON when d reaches its ON threshold (OFF at
minus its OFF threshold), not before its refractory period since the last event has passed; firing
resets the memorised level to the present y (so d = 0). Several crossings between two frames each get
their own time. Shot-noise events are Poisson (more frequent in the dark: the rate falls to 25 % at
white), random polarity, reset the pixel like any event and respect the refractory period.

One module, over 400 lines: one sensor model (v2e pixel, ESIM timestamps) with its config and writers.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from camsim.emulate import timebase
from camsim.emulate.common import (
    Progress,
    batches,
    check_positive,
    parallel_map,
    rng,
    write_params,
    write_transforms_streamed,
)
from camsim.emulate.light import LUMA, Sequence, output_meta, run_emulator
from camsim.errors import ConfigError
from camsim.fileio import atomic_path, write_image

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("t_us", "x", "y", "p")
ON_COLOUR = np.array([255, 64, 32], np.float32)
OFF_COLOUR = np.array([32, 128, 255], np.float32)
_MAX_ITER = 100_000
_H5_CHUNK = 16384
"""Rows per chunk of the events dataset."""
_H5_GZIP = 4


def _deflate_chunk(rows: np.ndarray) -> bytes:
    """One whole chunk as HDF5 stores it with the shuffle and deflate filters: bytes regrouped by significance
    (byte 0 of every value, then byte 1, ...), then zlib at the dataset's level."""
    shuffled = np.ascontiguousarray(np.ascontiguousarray(rows, dtype="<i8").view(np.uint8).reshape(-1, 8).T)
    return zlib.compress(shuffled, _H5_GZIP)


@dataclass
class EventsConfig:
    """Event-camera parameters (defaults close to v2e's 'noisy' DAVIS346-like pixel)."""

    threshold_on: float = 0.2
    """Mean ON contrast threshold (log-intensity units)."""
    threshold_off: float = 0.2
    """Mean OFF contrast threshold (log-intensity units, positive)."""
    threshold_sigma: float = 0.03
    """Pixel-to-pixel standard deviation of the thresholds (mismatch)."""
    refractory: float = 0.0005
    """Refractory period (s): a pixel fires at most once in this time."""
    cutoff_hz: float = 300.0
    """Photoreceptor 3 dB cutoff at full intensity (Hz); 0 turns the low-pass off."""
    lin_log_threshold: float = 20.0
    """Lin-log knee in DN (0..255 scale): linear below, log above."""
    leak_rate: float = 0.1
    """Leak event rate (Hz per pixel): the memorised level drifts down by this many ON thresholds a second."""
    leak_jitter: float = 0.1
    """Relative pixel-to-pixel spread of the leak rate."""
    shot_noise_rate: float = 1.0
    """Shot-noise event rate (Hz per pixel) in the dark; 25 % of it at white."""
    hdf5: bool = True
    """Write events.h5 (`events` dataset, int64 rows t_us, x, y, p; p = 1 ON, 0 OFF; gzip)."""
    txt: bool = False
    """Also write events.txt (one 't_us x y p' line per event)."""
    npz: bool = False
    """Also write events.npz (t_us, x, y, p arrays; loads every event into memory once)."""
    preview_window: float | None = None
    """Write event-frame previews (previews/*.png, ON and OFF in two colours) of this many seconds each."""
    light: Literal["auto", "linear", "srgb"] = "auto"
    """Input light: linear EXR when present (auto), or force the linear EXR or the sRGB PNG."""
    seed: int = 0
    """Random seed; same seed and input give bit-identical output."""
    batch_size: int = 32
    """Input frames read at once (bounds memory; does not change the output)."""

    def validate(self) -> None:
        check_positive("threshold_on", self.threshold_on)
        check_positive("threshold_off", self.threshold_off)
        for name in (
            "threshold_sigma",
            "refractory",
            "cutoff_hz",
            "leak_rate",
            "leak_jitter",
            "shot_noise_rate",
        ):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_positive("lin_log_threshold", self.lin_log_threshold)
        if self.preview_window is not None:
            check_positive("preview_window", self.preview_window)
        if not (self.hdf5 or self.txt or self.npz):
            raise ConfigError("choose at least one event output (--hdf5, --txt or --npz)")
        if self.npz and not self.hdf5:
            raise ConfigError("--npz is converted from events.h5; keep --hdf5 on")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")


def lin_log(intensity: np.ndarray, threshold: float = 20.0) -> np.ndarray:
    """v2e's lin-log: x * ln(thr) / thr below thr, ln(x) above (continuous at thr)."""
    x = np.asarray(intensity, dtype=np.float64)
    return np.where(x <= threshold, x * (math.log(threshold) / threshold), np.log(np.maximum(x, threshold)))


def event_frame(events: np.ndarray, h: int, w: int) -> np.ndarray:
    """HxWx3 uint8 preview of events (rows t_us, x, y, p): ON and OFF in two colours on black."""
    on = np.zeros((h, w), np.float32)
    off = np.zeros((h, w), np.float32)
    if len(events):
        pol = events[:, 3] > 0
        np.add.at(on, (events[pol, 2], events[pol, 1]), 1)
        np.add.at(off, (events[~pol, 2], events[~pol, 1]), 1)
    img = np.minimum(on, 1)[..., None] * ON_COLOUR + np.minimum(off, 1)[..., None] * OFF_COLOUR
    return np.clip(img, 0, 255).astype(np.uint8)


def _time_order(
    t_us: np.ndarray, pixel: np.ndarray, pol: np.ndarray, yx: np.ndarray, bits: int
) -> np.ndarray:
    """int64 rows (t_us, x, y, p) in the stable order of (time, row, column), as `np.lexsort((x, y, t_us))`
    gives it (events of one time and pixel keep their order in the input).

    `yx[pixel]` is the pixel's (row, column) packed as row << `bits` | column, which orders like the two keys,
    so one integer key packing (time offset, yx, position) in bit fields sorts the same way; it is unique, so
    sorting the keys themselves (faster than an argsort and a gather) keeps lexsort's tie order, and the rows
    are unpacked from the sorted keys. Falls back to lexsort when the key could overflow int64.
    """
    n = len(t_us)
    ev = np.empty((n, 4), np.int64)
    if n == 0:
        return ev
    t_min = int(t_us.min())
    span = int(t_us.max()) - t_min + 1
    b_pos = max(1, (n - 1).bit_length())
    b_yx = max(1, int(yx[-1]).bit_length())
    code = yx[pixel]
    if span.bit_length() + b_yx + b_pos <= 62:
        key = t_us - t_min
        key <<= b_yx
        key |= code
        key <<= b_pos
        key |= np.arange(n)
        key.sort()
        ev[:, 3] = pol[key & ((1 << b_pos) - 1)]
        key >>= b_pos
        ev[:, 1] = key & ((1 << bits) - 1)
        key >>= bits
        ev[:, 2] = key & ((1 << (b_yx - bits)) - 1)
        key >>= b_yx - bits
        key += t_min
        ev[:, 0] = key
        return ev
    order = np.lexsort((code, t_us))
    ev[:, 0] = t_us[order]
    ev[:, 1] = code[order] & ((1 << bits) - 1)
    ev[:, 2] = code[order] >> bits
    ev[:, 3] = pol[order]
    return ev


class PixelArray:
    """State of every pixel; `step` advances it by one frame interval and returns that interval's events.

    Whole-array arithmetic runs in preallocated work buffers (no per-frame allocation, so no page faults on
    fresh memory), in the same operations and order as the model's formulas, so the results are the same bits.
    """

    def __init__(self, cfg: EventsConfig, h: int, w: int) -> None:
        self.cfg, self.h, self.w = cfg, h, w
        p = h * w
        g = rng(cfg.seed, "events_pixel")
        s = cfg.threshold_sigma
        self.thr_on = np.maximum(cfg.threshold_on + s * g.standard_normal(p), 0.01)
        self.thr_off = np.maximum(cfg.threshold_off + s * g.standard_normal(p), 0.01)
        self.neg_thr_off = -self.thr_off
        leak = cfg.leak_rate * np.maximum(1 + cfg.leak_jitter * g.standard_normal(p), 0)
        self.leak_slope = leak * self.thr_on
        phase = g.random(p)
        # Memorised levels start at a random phase of the leak cycle so leak events do not all coincide.
        self.d = phase * self.thr_on if cfg.leak_rate > 0 else np.zeros(p)
        self.last = np.full(p, -np.inf)
        self.y: np.ndarray | None = None
        self.max_step = 0.0
        self.fast_intervals = 0
        self._lin = np.empty((h, w, 3))
        self._xbits = max(1, (int(w) - 1).bit_length())
        self._yx = np.arange(p, dtype=np.int64) // w << self._xbits | np.arange(p, dtype=np.int64) % w
        self._inten, self._target, self._i01, self._tmp, self._k, self._u = (np.empty(p) for _ in range(6))
        self._y1, self._d_end = np.empty(p), np.empty(p)
        self._num, self._t = np.empty(p), np.empty(p)
        self._m1, self._m2, self._m3, self._up = (np.empty(p, bool) for _ in range(4))

    def log_intensity(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lin-log intensity and intensity (DN, 255 * luminance) of a frame, flat; both are work buffers."""
        np.copyto(self._lin, lin)
        inten = self._inten
        np.matmul(self._lin, LUMA, out=inten.reshape(self.h, self.w))
        inten *= 255.0
        thr = self.cfg.lin_log_threshold
        # lin_log(inten, thr), written into the target buffer.
        target = self._target
        np.maximum(inten, thr, out=target)
        np.log(target, out=target)
        np.less_equal(inten, thr, out=self._m1)
        np.multiply(inten, math.log(thr) / thr, out=target, where=self._m1)
        return target, inten

    def start(self, lin: np.ndarray) -> None:
        self.y = self.log_intensity(lin)[0].copy()

    def step(self, lin: np.ndarray, t0: float, t1: float, index: int) -> np.ndarray:
        """Advance from t0 to t1 (the new frame `lin` is at t1). Returns int64 events (t_us, x, y, p)."""
        cfg = self.cfg
        dt = t1 - t0
        target, inten = self.log_intensity(lin)
        inten01 = self._i01  # clip((inten + 20) / 275, 0, 1)
        np.add(inten, 20.0, out=inten01)
        np.divide(inten01, 275.0, out=inten01)
        np.clip(inten01, 0.0, 1.0, out=inten01)
        y1 = self._y1
        if cfg.cutoff_hz > 0:
            # eps = min(inten01 * dt * 2 * pi * f, 1); y1 = (1 - eps) * y + eps * target
            eps = self._tmp
            np.multiply(inten01, dt, out=eps)
            eps *= 2
            eps *= math.pi
            eps *= cfg.cutoff_hz
            np.minimum(eps, 1.0, out=eps)
            np.subtract(1, eps, out=y1)
            y1 *= self.y
            eps *= target
            y1 += eps
        else:
            np.copyto(y1, target)
        k = self._k  # dy / dt + leak slope, dy = y1 - y
        np.subtract(y1, self.y, out=k)
        step = max(float(k.max(initial=0.0)), -float(k.min(initial=0.0)))
        self.max_step = max(self.max_step, step)
        if step > min(cfg.threshold_on, cfg.threshold_off):
            self.fast_intervals += 1
        k /= dt
        k += self.leak_slope
        ts, idx, pol = self._crossings(k, t0, t1)
        ts2, idx2, pol2 = self._shot_noise(inten01, k, t0, t1, index)
        self.y, self._y1 = y1, self.y
        t = np.concatenate([ts, ts2])
        t *= 1e6
        np.rint(t, out=t)
        return _time_order(
            t.astype(np.int64),
            np.concatenate([idx, idx2]),
            np.concatenate([pol, pol2]),
            self._yx,
            self._xbits,
        )

    def _crossings(self, k: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every threshold crossing in (t0, t1] of the linear d(t); updates d and last-event times.

        The first crossing of each pixel follows the general rule (a pixel may start beyond a threshold, or in
        its refractory period). After an event d restarts at 0 with the same slope, so the next one of the same
        polarity comes after P = max(threshold / |slope|, refractory): later crossings are that recurrence, run
        on the pixels still firing (t_next = t + P; rounding is monotonic, so this is the same number as
        max(t + threshold / |slope|, t + refractory), the general rule with d = 0).
        """
        dt = t1 - t0
        d_end = self._d_end
        np.multiply(k, dt, out=d_end)
        d_end += self.d
        m1, m2, tmp = self._m1, self._m2, self._tmp
        np.maximum(self.d, d_end, out=tmp)
        np.greater_equal(tmp, self.thr_on, out=m1)
        np.minimum(self.d, d_end, out=tmp)
        np.less_equal(tmp, self.neg_thr_off, out=m2)
        m1 |= m2
        cand = m1
        self.d, self._d_end = d_end, self.d  # pixels that fire get their d recomputed below
        refr = self.cfg.refractory
        # First crossings. Most candidates start strictly between their thresholds: with slope kk (never 0
        # for them: kk == 0 keeps d_end == d) they cross the threshold on kk's side at t0 + (thr - d) / kk,
        # firing then or when their refractory period ends, if that is by t1. Whole-array arithmetic (cheaper
        # than gathering the candidates), the same operations as the general rule below.
        d, num, t = self._tmp, self._num, self._t
        np.multiply(k, dt, out=d)
        np.subtract(d_end, d, out=d)  # d at t0, as d_end - kk * dt
        up = self._up
        np.greater(k, 0, out=up)
        np.subtract(self.neg_thr_off, d, out=num)
        np.subtract(self.thr_on, d, out=t)
        np.copyto(num, t, where=up)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            np.divide(num, k, out=t)
        t += t0
        np.add(self.last, refr, out=num)  # ready
        np.maximum(t, num, out=t)  # firing time
        simple = self._m2
        np.less(d, self.thr_on, out=simple)
        fire = self._m3
        np.greater(d, self.neg_thr_off, out=fire)
        simple &= fire
        np.less_equal(t, t1, out=fire)
        fire &= simple
        fire &= cand
        idx = np.flatnonzero(fire)
        kk = k[idx]
        tau = t[idx]
        use_on = up[idx]
        # The other candidates (beyond a threshold at t0): the general rule.
        np.logical_not(simple, out=simple)
        simple &= cand
        cx = np.flatnonzero(simple)
        if len(cx):
            kc, on, off, last = k[cx], self.thr_on[cx], self.thr_off[cx], self.last[cx]
            dc = d[cx]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                t_on = np.where(dc >= on, t0, np.where(kc > 0, t0 + (on - dc) / kc, np.inf))
                t_off = np.where(dc <= -off, t0, np.where(kc < 0, t0 + (-off - dc) / kc, np.inf))
                ready = last + refr
                f_on = np.maximum(t_on, ready)
                f_off = np.maximum(t_off, ready)
                ok_on = np.isfinite(t_on) & (f_on <= t1) & ((kc > 0) | (dc + kc * (f_on - t0) >= on))
                ok_off = np.isfinite(t_off) & (f_off <= t1) & ((kc < 0) | (dc + kc * (f_off - t0) <= -off))
            on_c = ok_on & (~ok_off | (f_on <= f_off))
            fc = ok_on | ok_off
            idx = np.concatenate([idx, cx[fc]])
            kk = np.concatenate([kk, kc[fc]])
            tau = np.concatenate([tau, np.where(on_c, f_on, f_off)[fc]])
            use_on = np.concatenate([use_on, on_c[fc]])
        if len(idx) == 0:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
        out_t, out_i, out_p = [tau], [idx], [use_on.astype(np.int64)]
        # Later crossings of the pixels that fired (kk == 0: period inf, no more events).
        with np.errstate(divide="ignore"):
            period = np.where(kk > 0, self.thr_on[idx], self.thr_off[idx]) / np.abs(kk)
        np.maximum(period, refr, out=period)
        pol = (kk > 0).astype(np.int64)
        done_i, done_t, done_k = [], [], []
        for _ in range(_MAX_ITER):
            if len(idx) == 0:
                break
            nxt = tau + period
            fire = nxt <= t1
            stop = ~fire
            done_i.append(idx[stop])
            done_t.append(tau[stop])
            done_k.append(kk[stop])
            idx, tau, kk, period, pol = idx[fire], nxt[fire], kk[fire], period[fire], pol[fire]
            out_t.append(tau)
            out_i.append(idx)
            out_p.append(pol)
        else:  # pragma: no cover - guards against a pathological loop
            raise ConfigError("event generation did not converge (thresholds too small?)")
        # Each pixel that fired restarts from its last event: d(t1) = slope * (t1 - t_last).
        fired, t_last, slope = np.concatenate(done_i), np.concatenate(done_t), np.concatenate(done_k)
        self.last[fired] = t_last
        self.d[fired] = slope * (t1 - t_last)
        return np.concatenate(out_t), np.concatenate(out_i), np.concatenate(out_p)

    def _shot_noise(
        self, inten01: np.ndarray, k: np.ndarray, t0: float, t1: float, index: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.cfg
        if cfg.shot_noise_rate <= 0:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
        g = rng(cfg.seed, "events_interval", index)
        dt = t1 - t0
        u = g.random(out=self._u)
        # rate <= shot_noise_rate, so only pixels under that rate's probability can fire: the exact per-pixel
        # test (same arithmetic as on the whole array) runs on those few (bound padded against libm rounding).
        bound = -math.expm1(-cfg.shot_noise_rate * dt) * (1 + 1e-9) + 1e-300
        hit = np.flatnonzero(u < bound)
        rate = cfg.shot_noise_rate * (1.0 - 0.75 * inten01[hit])
        hit = hit[u[hit] < -np.expm1(-rate * dt)]
        t = t0 + g.random(len(hit)) * dt
        pol = (g.random(len(hit)) < 0.5).astype(np.int64)
        ok = t >= self.last[hit] + cfg.refractory
        hit, t, pol = hit[ok], t[ok], pol[ok]
        self.last[hit] = np.maximum(self.last[hit], t)
        # A noise event resets the pixel like any event: memorised level = present (noise-free) level.
        self.d[hit] = k[hit] * (t1 - t)
        return t, hit, pol


class _Writers:
    """Streams events to events.h5 (resizable, gzip) and events.txt; previews per time window."""

    def __init__(
        self, out: Path, cfg: EventsConfig, h: int, w: int, t_start: float, threads: int = 1
    ) -> None:
        self.out, self.cfg, self.h, self.w = out, cfg, h, w
        self.count = 0
        self._ctx = []
        if cfg.hdf5:
            import h5py

            ctx = atomic_path(out / "events.h5")
            self._ctx.append(ctx)
            self.h5 = h5py.File(ctx.__enter__(), "w")
            self.ds = self.h5.create_dataset(
                "events",
                shape=(0, 4),
                maxshape=(None, 4),
                dtype=np.int64,
                chunks=(_H5_CHUNK, 4),
                compression="gzip",
                compression_opts=_H5_GZIP,
                shuffle=True,
            )
            self._threads = max(1, threads)  # compress chunks in parallel (stored in order: the same file)
            self._pool = ThreadPoolExecutor(max_workers=self._threads)
            self._futures: list[tuple[int, Future[bytes]]] = []
            self._pending: list[np.ndarray] = []
            self._pending_n = 0
            self._h5_rows = 0
            self._h5_capacity = 0
            self.ds.attrs["columns"] = ",".join(EVENT_COLUMNS)
            self.ds.attrs["polarity"] = "1 = ON (brighter), 0 = OFF (darker)"
            self.ds.attrs["width"], self.ds.attrs["height"] = w, h
        if cfg.txt:
            ctx = atomic_path(out / "events.txt")
            self._ctx.append(ctx)
            self.txt = open(ctx.__enter__(), "w")  # noqa: SIM115 - closed in close()
        if cfg.preview_window:
            (out / "previews").mkdir(exist_ok=True)
            self.t_start = t_start
            self.win = 0
            self.buf: list[np.ndarray] = []
            self.previews: list[str] = []

    def add(self, ev: np.ndarray) -> None:
        if len(ev) == 0:
            return
        self.count += len(ev)
        if self.cfg.hdf5:
            self._h5_add(ev)
        if self.cfg.txt:
            np.savetxt(self.txt, ev, fmt="%d")
        if self.cfg.preview_window:
            win = np.floor((ev[:, 0] * 1e-6 - self.t_start) / self.cfg.preview_window + 1e-9).astype(np.int64)
            for wi in np.unique(win):
                while wi > self.win:
                    self._flush()
                self.buf.append(ev[win == wi])

    def _h5_add(self, ev: np.ndarray) -> None:
        """Append rows: whole chunks are shuffled and deflated on background threads (zlib drops the GIL, so
        compression overlaps the pixel model) and stored with direct chunk writes; the rest waits for more."""
        self._pending.append(ev)
        self._pending_n += len(ev)
        if self._pending_n < _H5_CHUNK:
            return
        rows = np.concatenate(self._pending)
        whole = len(rows) // _H5_CHUNK * _H5_CHUNK
        for s in range(0, whole, _H5_CHUNK):
            self._futures.append((self._h5_rows, self._pool.submit(_deflate_chunk, rows[s : s + _H5_CHUNK])))
            self._h5_rows += _H5_CHUNK
            if (
                self._h5_rows > self._h5_capacity
            ):  # grow by doubling (each resize costs ~1 ms); cut at the end
                self._h5_capacity = max(self._h5_rows, 2 * self._h5_capacity)
                self.ds.resize(self._h5_capacity, axis=0)
            while len(self._futures) > 2 * self._threads:  # bounded: at most 2 per thread + 1 in flight
                self._store_chunk()
        self._pending = [rows[whole:]]
        self._pending_n = len(rows) - whole

    def _store_chunk(self) -> None:
        row, fut = self._futures.pop(0)
        self.ds.id.write_direct_chunk((row, 0), fut.result())

    def _h5_finish(self) -> None:
        while self._futures:
            self._store_chunk()
        rest = np.concatenate(self._pending) if self._pending else np.zeros((0, 4), np.int64)
        self.ds.resize(self._h5_rows + len(rest), axis=0)
        if len(rest):
            self.ds[self._h5_rows :] = rest

    def _flush(self) -> None:
        ev = np.concatenate(self.buf) if self.buf else np.zeros((0, 4), np.int64)
        rel = f"previews/events_{self.win:06d}.png"
        write_image(self.out / rel, event_frame(ev, self.h, self.w))
        self.previews.append(rel)
        self.buf = []
        self.win += 1

    def close(self, t_end: float, error: BaseException | None = None) -> None:
        if self.cfg.preview_window and error is None:
            last = max(0, math.ceil((t_end - self.t_start) / self.cfg.preview_window - 1e-9) - 1)
            while self.win <= last:
                self._flush()
        if self.cfg.hdf5:
            try:
                if error is None:
                    self._h5_finish()
            finally:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self.h5.close()
        if self.cfg.txt:
            self.txt.close()
        exc_info = (type(error), error, error.__traceback__) if error else (None, None, None)
        for ctx in self._ctx:
            ctx.__exit__(*exc_info)
        if self.cfg.npz and error is None:
            import h5py

            with h5py.File(self.out / "events.h5", "r") as f:
                ev = f["events"][:]
            with atomic_path(self.out / "events.npz") as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(fh, **{c: ev[:, j] for j, c in enumerate(EVENT_COLUMNS)})


def progress_total(seq: Sequence, cfg: EventsConfig) -> int:
    """Progress units of a run: input frames."""
    return seq.n


def emulate_events(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: EventsConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
    workers: int = 0,
) -> Path:
    """Emulate an event camera; write events.h5 (+ txt/npz, previews) and a transforms.json. Returns the folder.

    `progress` is called with the number of input frames finished after each batch (`progress_total` in
    all); `workers` threads read frames and compress events.h5 (0: one per CPU core; same output).
    """
    return run_emulator(
        _run, progress_total, cfg or EventsConfig(), input_dir, output_dir, overwrite, progress, workers
    )


def _run(seq: Sequence, out: Path, cfg: EventsConfig, progress: Progress, workers: int = 1) -> Path:
    pixels = PixelArray(cfg, seq.h, seq.w)
    writers = _Writers(out, cfg, seq.h, seq.w, float(seq.times[0]), workers)
    error: BaseException | None = None
    try:
        for b0, b1 in batches(seq.n, cfg.batch_size):
            frames = parallel_map(seq.linear, range(b0, b1), workers)
            for i, lin in zip(range(b0, b1), frames, strict=True):
                if i == 0:
                    pixels.start(lin)
                    continue
                writers.add(pixels.step(lin, float(seq.times[i - 1]), float(seq.times[i]), i))
            if progress:
                progress(b1 - b0)
    except BaseException as exc:
        error = exc
        raise
    finally:
        writers.close(float(seq.times[-1]), error)
    if pixels.fast_intervals:
        log.warning(
            "input frame rate too low for the thresholds: log intensity changed by up to %.3f (threshold %.3f) "
            "between frames in %d of %d intervals; interpolate the sequence to a higher frame rate",
            pixels.max_step,
            min(cfg.threshold_on, cfg.threshold_off),
            pixels.fast_intervals,
            seq.n - 1,
        )
    extra = {"events_file_path": "events.h5"} if cfg.hdf5 else {}
    if cfg.preview_window:
        extra["event_previews"] = writers.previews
    meta = output_meta(
        seq, _conventions(seq, cfg), fps=seq.fps, sensor="events", event_count=writers.count, **extra
    )
    write_params(
        out,
        "events",
        cfg,
        seq,
        event_count=writers.count,
        max_log_step_between_frames=pixels.max_step,
        intervals_faster_than_threshold=pixels.fast_intervals,
        input_light=seq.light_name,
    )
    numbers = seq.frame_numbers
    write_transforms_streamed(
        out / "transforms.json",
        meta,
        lambda i: {"transform_matrix": seq.poses[i].tolist(), **seq.place(i, round(float(numbers[i])))},
        seq.n,
    )
    return out


def _conventions(seq: Sequence, cfg: EventsConfig) -> dict[str, str]:
    """What an event dataset holds, in words (replaces the source's conventions)."""
    files = [
        name
        for name, on in (
            ("events.h5 (dataset events)", cfg.hdf5),
            ("events.txt", cfg.txt),
            ("events.npz", cfg.npz),
        )
        if on
    ]
    own = {
        "events": f"{', '.join(files)}: int64 rows (t_us, x, y, p) in time order; t_us = microseconds on the "
        "source's clock (time x 1e6: since the scene's first frame); x column, y row of the pixel (top-left "
        "origin); p = 1 ON (log intensity rose by the pixel's threshold), 0 OFF (fell)",
        "poses": "frames[i] are the source frames (poses and times, no images): the events of the interval "
        "between frames i-1 and i have time[i-1] <= t_us / 1e6 <= time[i] (to the microsecond)",
        "time": f"{timebase.TIME}; the instant of the source frame",
        "frame_number": "the source frame's frame_number (one frame per source frame)",
        "source_frame_number": timebase.SOURCE_FRAME_NUMBER,
    }
    if cfg.preview_window:
        own["event_previews"] = (
            f"previews/events_NNNNNN.png: window NNNNNN of {cfg.preview_window} s from the first frame's time; "
            "ON events orange, OFF events blue, on black"
        )
    return timebase.conventions(seq.meta, own)


def read_events(path: str | os.PathLike[str]) -> np.ndarray:
    """All events of an emulated dataset (or an events.h5) as int64 rows (t_us, x, y, p)."""
    import h5py

    p = Path(path)
    if p.is_dir():
        p = p / "events.h5"
    with h5py.File(p, "r") as f:
        return f["events"][:]
