"""When each LiDAR point is acquired: flash (every pixel at once), rows (top to bottom) or a rotating head
(columns left to right), and which source frame each point sees.

Frame k's first line is acquired at t0 + k / frame_rate (t0: the source's first frame), line l at
t0 + k / frame_rate + l * scan_time / L (L lines: 1, H or W). A point's time is the middle of its N laser
cycles (its dwell, N / repetition_rate, which must fit in a line's slot). Each point sees the source frame
nearest its time (the earlier one at a tie): a high-rate or interpolated source resolves motion during a scan.
Output frames are those whose every point lies within the source's time span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from camsim.errors import ConfigError

PATTERNS = ("flash", "rows", "rotating")


@dataclass(frozen=True)
class Scan:
    """The acquisition timing of a run (all times in seconds on the source's clock)."""

    pattern: str
    lines: int
    """L: lines acquired one after another (flash 1, rows H, rotating W)."""
    line_time: float
    """Time from one line to the next (scan_time / L)."""
    frame_period: float
    """1 / frame_rate."""
    start: float
    """The source's first frame time."""
    frames: int
    """Output frames."""
    dwell: float
    """Time one point's laser cycles take."""

    @property
    def scan_time(self) -> float:
        return self.line_time * self.lines

    def line_times(self, k: int) -> np.ndarray:
        """Time of each line (L,) of output frame k (the middle of its laser cycles)."""
        return self.start + k * self.frame_period + np.arange(self.lines) * self.line_time

    def frame_time(self, k: int) -> float:
        """Middle of output frame k's scan."""
        return self.start + k * self.frame_period + (self.lines - 1) * self.line_time / 2.0


def plan_scan(
    pattern: str,
    times: np.ndarray,
    h: int,
    w: int,
    frame_rate: float,
    scan_time: float | None,
    dwell: float,
) -> Scan:
    """The scan of a source with frame `times` (s) and size h x w; ConfigError when it cannot be done."""
    if pattern not in PATTERNS:
        raise ConfigError(f"scan must be one of {', '.join(PATTERNS)}, got {pattern!r}")
    lines = {"flash": 1, "rows": h, "rotating": w}[pattern]
    period = 1.0 / frame_rate
    if pattern == "flash":
        if scan_time is not None:
            raise ConfigError("scan_time applies to the rows and rotating scans (a flash acquires at once)")
        if dwell > period * (1 + 1e-9):
            raise ConfigError(
                f"a flash frame's {dwell:.6g} s of laser cycles do not fit in the frame period {period:.6g} s: "
                "lower cycles or frame_rate, or raise repetition_rate"
            )
        total = dwell
    else:
        total = period if scan_time is None else float(scan_time)
        if total > period * (1 + 1e-9):
            raise ConfigError(
                f"scan_time {total:.6g} s is longer than the frame period 1/frame_rate = {period:.6g} s"
            )
        if total / lines < dwell * (1 - 1e-9):
            raise ConfigError(
                f"{lines} lines of {dwell:.6g} s of laser cycles each do not fit in a {total:.6g} s scan: lower "
                "cycles, raise repetition_rate or scan_time"
            )
    line_time = total / lines
    span = float(times[-1] - times[0]) - (lines - 1) * line_time
    if span < -1e-12:
        raise ConfigError(
            f"one scan ({(lines - 1) * line_time:.6g} s from first to last line) is longer than the source "
            f"({float(times[-1] - times[0]):.6g} s): shorten scan_time or use a longer sequence"
        )
    frames = math.floor(max(span, 0.0) * frame_rate + 1e-9) + 1
    return Scan(pattern, lines, line_time, period, float(times[0]), frames, dwell)


def line_of_pixel(pattern: str, h: int, w: int) -> np.ndarray:
    """Line index (H, W) of every pixel."""
    if pattern == "rows":
        return np.repeat(np.arange(h)[:, None], w, axis=1)
    if pattern == "rotating":
        return np.repeat(np.arange(w)[None, :], h, axis=0)
    return np.zeros((h, w), np.int64)


def nearest_frames(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the source frame nearest each time (the earlier one at a tie)."""
    times = np.asarray(times, np.float64)
    i = np.clip(np.searchsorted(times, t, side="left"), 1, len(times) - 1)
    earlier = (t - times[i - 1]) <= (times[i] - t)
    return np.where(earlier, i - 1, i)


def fractional_index(times: np.ndarray, t: float) -> float:
    """Fractional source index x of time t (linear between frames, within the source's span)."""
    return float(np.interp(t, times, np.arange(len(times), dtype=np.float64)))
