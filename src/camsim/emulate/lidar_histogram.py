"""Histogrammers, the Coates pile-up correction and depth estimators of a direct time-of-flight pixel.

Detections arrive as (pixel, TDC tick) pairs, pixel-ordered. An equi-width histogram counts them in B equal
bins of the gate (n ticks, n a multiple of B). An equi-depth histogram (Ingle & Lindell's count-free
histogram, here its exact offline form) has B bins holding equal numbers of detections: bin k holds the
detections of ranks floor(k D / B) .. floor((k + 1) D / B) - 1 in time order (D detections), its lower edge
is the tick of its first detection; edge 0 is the gate's start and edge B its end (n).

The Coates correction inverts pile-up: with A_k cycles still armed when bin k starts (N minus the
detections in earlier bins), the mean photon count of bin k is -ln(1 - h_k / A_k). Estimators give a return
time in ticks: `peak` (centre of the highest bin), `matched-filter` (the histogram correlated with the
instrument response, a Gaussian of the pulse and the jitter, peak refined to a fraction of a bin by a
Gaussian fit through three points), `densest-bin` (equi-depth: the centre of the bin with the highest count
per tick, i.e. the narrowest bin; after Coates the highest corrected count per tick).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import ndtr


@dataclass(frozen=True)
class Sparse:
    """An equi-width histogram of npx pixels x B bins by its occupied bins: flat index p * B + b (increasing)
    and count, with the detections of earlier bins of the same pixel."""

    index: np.ndarray
    count: np.ndarray
    before: np.ndarray
    npx: int
    bins: int

    def dense(self, values: np.ndarray | None = None, dtype: Any = np.int64) -> np.ndarray:
        """(npx, B) array of the counts (or of `values` at the occupied bins), zero elsewhere."""
        out = np.zeros(self.npx * self.bins, dtype)
        out[self.index] = self.count if values is None else values
        return out.reshape(self.npx, self.bins)

    def detections(self) -> np.ndarray:
        """Detections per pixel (npx,)."""
        return np.bincount(self.index // self.bins, weights=self.count, minlength=self.npx).astype(np.int64)


def equi_width(pix: np.ndarray, ticks: np.ndarray, npx: int, n: int, bins: int) -> Sparse:
    """Detections in `bins` equal bins of the n-tick gate (bins divides n), kept by occupied bin."""
    key = np.multiply(pix, n, dtype=np.int64)
    key += ticks
    if n != bins:
        key //= n // bins  # pix * bins + ticks // (n / bins)
    if npx * bins <= 8 * len(key):  # dense counting is cheaper than sorting
        return sparse(np.bincount(key, minlength=npx * bins).reshape(npx, bins))
    key = np.sort(key)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1)) if len(key) else key
    return _sparse(key[starts], np.diff(np.append(starts, len(key))), npx, bins)


def sparse(counts: np.ndarray) -> Sparse:
    """The Sparse form of dense equi-width counts (npx, B)."""
    index = np.flatnonzero(counts)
    return _sparse(index, counts.ravel()[index], *counts.shape)


def _sparse(index: np.ndarray, count: np.ndarray, npx: int, bins: int) -> Sparse:
    cum = np.cumsum(count) - count  # detections before this bin, over all pixels
    pixel = index // bins
    first = np.concatenate(([True], pixel[1:] != pixel[:-1])) if len(pixel) else pixel.astype(bool)
    base = cum[first][np.cumsum(first) - 1]  # ... before this bin's pixel
    return Sparse(index, count, cum - base, npx, bins)


def coates_sparse(h: Sparse, cycles: int) -> np.ndarray:
    """Coates' mean photon count of every occupied bin of `h` (float64, aligned with h.index)."""
    return _coates_rate(h.count, cycles - h.before)


def _coates_rate(h: np.ndarray, armed: np.ndarray) -> np.ndarray:
    h, a = h.astype(np.float64), armed.astype(np.float64)
    return -np.log1p(-np.minimum(h / a, 1.0 - 0.5 / a))


def equi_depth_counts(detections: np.ndarray, bins: int) -> np.ndarray:
    """Detections (npx, bins) in each equi-depth bin of pixels that detected `detections` (npx,) in all."""
    d = np.asarray(detections, np.int64)[:, None]
    k = np.arange(bins + 1, dtype=np.int64)[None, :]
    return np.diff((k * d) // bins, axis=1)


def equi_depth(
    pix: np.ndarray, ticks: np.ndarray, npx: int, n: int, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """(edges (npx, bins+1) int64 in ticks, detections per pixel (npx,)) of the equi-depth histogram; `pix`
    must be non-decreasing. A pixel without detections has edges 0, ..., 0, n."""
    d = np.bincount(pix, minlength=npx)
    key = np.sort(pix.astype(np.int64) * n + ticks)
    ordered = key - pix.astype(np.int64) * n  # pix is sorted, so sorting the key keeps each pixel's slice
    start = np.concatenate(([0], np.cumsum(d)[:-1]))
    k = np.arange(1, bins, dtype=np.int64)[None, :]
    rank = (k * d[:, None]) // bins
    edges = np.zeros((npx, bins + 1), np.int64)
    edges[:, bins] = n
    has = d > 0
    if has.any():
        edges[has, 1:bins] = ordered[start[has, None] + rank[has]]
    return edges, d


def coates(counts: np.ndarray, cycles: int) -> np.ndarray:
    """Mean photon count per bin (float64) from first-detection counts (npx, B) over `cycles` cycles; a bin
    every armed cycle detected in counts as if half a cycle had not (its rate has no finite estimate)."""
    h = counts.astype(np.float64)
    armed = np.cumsum(h, axis=1)  # (exact: integers)
    armed -= h
    np.subtract(cycles, armed, out=armed)  # >= h: every cycle that detected in a bin was armed there
    with np.errstate(divide="ignore", invalid="ignore"):  # (armed 0: no detection there, rate 0 below)
        rate = h / armed
        np.minimum(rate, 1.0 - 0.5 / armed, out=rate)
    np.negative(rate, out=rate)
    np.log1p(rate, out=rate)
    np.negative(rate, out=rate)
    rate[h == 0] = 0.0
    return rate


def irf_kernel(sigma: float, width: float) -> np.ndarray:
    """The instrument response at histogram resolution: mass of a Gaussian (`sigma` ticks) in bins of `width`
    ticks centred on offsets -h..h (h bins reach 4 sigma)."""
    h = max(1, int(np.ceil(4.0 * sigma / width)))
    j = np.arange(-h, h + 1, dtype=np.float64)
    if sigma <= 0:
        return (j == 0).astype(np.float64)
    return ndtr(((j + 0.5) * width) / sigma) - ndtr(((j - 0.5) * width) / sigma)


def peak(values: np.ndarray, width: float) -> np.ndarray:
    """Centre (ticks) of each pixel's highest bin (the first of equal ones)."""
    return (np.argmax(values, axis=1) + 0.5) * width


def _refine(c: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sub-bin offset of the peak at k of each row of c: the vertex of a Gaussian (log-parabola) through the
    three points around it when all are positive, else of a parabola; within +-1/2."""
    rows = np.arange(len(k))
    b = c.shape[1]
    left = c[rows, np.maximum(k - 1, 0)]
    mid = c[rows, k]
    right = c[rows, np.minimum(k + 1, b - 1)]
    inner = (k > 0) & (k < b - 1)
    positive = (left > 0) & (mid > 0) & (right > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll, lm, lr = (np.log(np.where(positive, x, 1.0)) for x in (left, mid, right))
        a = np.where(positive, ll, left)
        m = np.where(positive, lm, mid)
        r = np.where(positive, lr, right)
        den = a - 2.0 * m + r
        delta = np.where(inner & (den < 0), 0.5 * (a - r) / np.where(den < 0, den, -1.0), 0.0)
    return np.clip(delta, -0.5, 0.5)


def matched_filter(values: np.ndarray, kernel: np.ndarray, width: float) -> np.ndarray:
    """Return time (ticks) of each pixel: argmax of the histogram correlated with `kernel` (zero outside the
    gate), refined to a fraction of a bin."""
    c = correlate1d(values.astype(np.float32, copy=False), kernel.astype(np.float32), axis=1, mode="constant")
    k = np.argmax(c, axis=1)
    return (k + 0.5 + _refine(c, k)) * width


def densest_bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Centre (ticks) of the equi-depth bin of highest `values` (counts, or Coates rates) per tick; a bin whose
    edges coincide (its detections share one tick) is one tick wide."""
    lo = edges[:, :-1].astype(np.float64)
    hi = np.maximum(edges[:, 1:].astype(np.float64), lo + 1.0)
    k = np.argmax(values / (hi - lo), axis=1)
    rows = np.arange(len(k))
    return 0.5 * (lo[rows, k] + hi[rows, k])
