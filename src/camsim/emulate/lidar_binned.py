"""Equi-width histograms of a LiDAR's independent cycles drawn straight from each pixel's detections per segment
of the first-photon law (camsim.emulate.lidar_transient), without per-detection pixel and tick arrays: the same
draws in the same order as `detect_independent` and `quantise`, and the same histogram but for rounding."""

from __future__ import annotations

import math

import numpy as np

from camsim.emulate import lidar_transient as tra
from camsim.emulate.scratch import Scratch


def binned_independent(
    tr: tra.Transient,
    cycles: int,
    jitter: float,
    bins: int,
    g: np.random.Generator,
    scratch: Scratch | None = None,
) -> tuple[np.ndarray, int]:
    """The equi-width histogram (P, bins) int64 of `tra.detect_independent`'s detections after `tra.quantise`,
    and how many detections the clip moved; `bins` divides n. Its per-detection arrays come from `scratch`.

    Each pixel's times live in its own span of a time axis counted in bins (the gate with a margin of whole bins
    on each side wider than any jitter drawn), so the integer part of a jittered time is the (pixel, bin) key of
    its detection, the margins holding the clipped ones. A window tick farther from its bin's edges than the
    largest jitter drawn (and half a tick, for rounding) keeps all its detections in that bin: those are counted
    by segment, the others one by one, each with its own draws."""
    scratch = scratch or Scratch()
    npx, n = len(tr.total), tr.n
    width = n // bins
    d, per_segment = tra.segment_counts(tr, cycles, g)
    count = int(d.sum())
    u = g.random(count, out=scratch.array("u", count))
    z = g.standard_normal(count, out=scratch.array("z", count)) if jitter > 0 else None
    reach = jitter * max(-float(z.min()), float(z.max())) if z is not None and count else 0.0  # ticks
    pad = math.floor((reach + 1.0) / width) + 1  # bins: more than any time can leave the gate by
    span = bins + 2 * pad  # bins of a pixel's span
    origin = np.arange(npx, dtype=np.int64) * span + pad  # the key of each pixel's first bin
    # Window tick k's detections lie in [k - reach, k + 1 + reach): all in one bin when [k - m, k + m] is (m: the
    # reach and half a tick for rounding, rounded up to whole ticks), then counted by segment.
    m = math.ceil(reach + 0.5)
    fixed = None
    if 2 * m < width:  # (else no tick fits)
        low = tr.w0[:, None] + np.arange(-m, tr.k - m)  # k - m of the window ticks (P, K)
        bin_of = low // width
        fixed = (low >= 0) & (low < n - 2 * m)
        low += 2 * m
        low //= width
        fixed &= bin_of == low
        fixed &= per_segment[:, 1:-1] > 0
    if fixed is None or not fixed.any():  # every detection one by one
        counts = None
        seg = tra.segment_index(per_segment)
        t, other = u, scratch.array("t", count)
    else:
        bin_of += origin[:, None]
        counts = np.bincount(bin_of[fixed], per_segment[:, 1:-1][fixed], minlength=npx * span)
        counts = counts.astype(np.int64)
        loose = per_segment.copy()
        loose[:, 1:-1][fixed] = 0
        seg, pos = _loose(per_segment, loose)
        t = np.take(u, pos, out=scratch.array("t", len(seg)), mode="clip")
        other = u[: len(seg)]  # (u is read)
    tra.place_in_segments(t, seg, other, tr.neg_reach, tr.ticks_per_count(-1.0 / width))
    if z is not None:
        shift = z if t is u else np.take(z, pos, out=other, mode="clip")
        shift *= jitter / width
        t += shift
    # Segment starts in bins, the gate of pixel p from p span + pad.
    start = np.empty(per_segment.shape, np.float64)
    start[:, 0] = origin
    np.add((origin + tr.w0 / width)[:, None], np.arange(tr.k + 1, dtype=np.float64) / width, out=start[:, 1:])
    t += np.take(start, seg, out=other, mode="clip")
    np.copyto(seg, t, casting="unsafe")  # floor: every time is positive
    found = np.bincount(seg, minlength=npx * span)
    if counts is not None:
        found += counts
    counts = found.reshape(npx, span)
    out = counts[:, pad : pad + bins].copy()
    below = counts[:, :pad].sum(axis=1)
    above = counts[:, pad + bins :].sum(axis=1)
    out[:, 0] += below
    out[:, -1] += above
    return out, int(below.sum() + above.sum())


def _loose(per_segment: np.ndarray, loose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat segment index, position among all detections in segment order) of each detection of the segments
    `loose` (P, S) counts (each either 0 or that of `per_segment`)."""
    flat = per_segment.ravel()
    which = np.flatnonzero(loose)
    each = flat[which]
    seg = np.repeat(which, each)
    pos = np.repeat((np.cumsum(flat) - flat)[which] - (np.cumsum(each) - each), each)
    pos += np.arange(len(pos))
    return seg, pos
