"""Direct time-of-flight photon arrivals: each pixel's transient and the SPAD's first detection per laser cycle.

Time is counted in TDC ticks (the histogram's finest bin, `tick` seconds) from the laser pulse's peak. The
detector is gated: armed during [0, n) ticks of every cycle (the gate), off for the rest of the period. Per
pixel and cycle the photons reaching it form a Poisson process whose mean count per tick is piecewise constant
(the transient, sampled at the TDC's resolution): a background `beta` (ambient light and dark counts) plus the
laser's return, a Gaussian pulse truncated at +-TRUNCATE sigma (the mass it drops is below 1e-15) of `signal`
photons centred at the round trip 2 rho / c (modulo the period: a target beyond the unambiguous range returns
in a later cycle, as real LiDARs see it).

A cycle records only its first detection (the TDC's stop: pile-up). Without dead time that reaches the next
gate the cycles are independent, so a pixel's detections over N cycles are Binomial(N, 1 - exp(-total)) and
their times are independent draws of the first-arrival law. That law gives segment j (cumulative count C_j
at its start) the probability exp(-C_j) (1 - exp(-dC_j)), so the detections fall into the segments as a
multinomial, and within its segment a detection's clock reading is an exponential truncated to dC_j: both
drawn exactly, without searching for any detection's segment. Otherwise the cycles are simulated one by one,
the detector blind until its dead time has passed (inverting the cumulative rate per detection). Timing jitter
(Gaussian) is added to each detection's time before the TDC quantises it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

C_LIGHT = 299_792_458.0
"""Speed of light in vacuum (m/s)."""
TRUNCATE = 8.0
"""The pulse is a Gaussian truncated at +-TRUNCATE standard deviations (and renormalised)."""
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@cache
def _tail() -> float:
    """The Gaussian's mass beyond -TRUNCATE sigma (scipy is imported on first use, not with the configs)."""
    from scipy.special import ndtr

    return float(ndtr(-TRUNCATE))


def window_ticks(sigma: float, n: int) -> int:
    """Ticks of the window that holds a pulse of standard deviation `sigma` ticks (at most the gate's n)."""
    return min(n, math.ceil(2.0 * TRUNCATE * sigma) + 2)


def pulse_centre(rho: np.ndarray, tick: float, period: float, sigma: float) -> np.ndarray:
    """The return's peak in ticks for radial distances `rho` (m): the round trip modulo the laser period, moved
    one period earlier when its truncated pulse starts within TRUNCATE sigma of the period's end (its gate mass
    is then that of the previous pulse's return). Needs the gate to end TRUNCATE*2 sigma before the period."""
    t = np.mod(2.0 * np.asarray(rho, np.float64) / C_LIGHT, period) / tick
    per = period / tick
    return np.where(t > per - TRUNCATE * sigma, t - per, t)


def pulse_masses(
    centre: np.ndarray, sigma: float, n: int, weight: np.ndarray | None = None, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of a unit pulse in each tick of a window per pixel: (w0 (P,) first tick, masses (P, K)), times
    `weight` (P,) when given, written into `out` (P, K) when given.

    The window [w0, w0 + K) lies in the gate [0, n) and holds all of the pulse's mass inside the gate."""
    from scipy.special import ndtr

    tail = _tail()
    k = window_ticks(sigma, n)
    c = np.asarray(centre, np.float64)
    w0 = np.clip(np.floor(c - TRUNCATE * sigma), 0, n - k).astype(np.int64)
    cdf = ((w0 - c) / sigma)[:, None] + np.arange(k + 1, dtype=np.float64)[None, :] / sigma
    ndtr(cdf, out=cdf)
    np.clip(cdf, tail, 1.0 - tail, out=cdf)  # the truncated pulse's CDF is (cdf - tail) / (1 - 2 tail)
    masses = np.subtract(cdf[:, 1:], cdf[:, :-1], out=out)
    norm = 1.0 / (1.0 - 2.0 * tail)
    masses *= norm if weight is None else (np.asarray(weight, np.float64) * norm)[:, None]
    return w0, masses


@dataclass
class Transient:
    """Mean photon counts per tick and cycle of P pixels, piecewise constant: the gate [0, n) is cut into K + 2
    segments (before the pulse's window, its K ticks [w0, w0 + K), after it) of `rate` (P, K + 2) each; the
    background `beta` is the rate outside the window. Derived: each segment's count dcum (P, K + 2), the
    cumulative count C at each segment edge (P, K + 3) and in all (`total`, P), the edges in ticks."""

    rate: np.ndarray
    w0: np.ndarray
    n: int

    def __post_init__(self) -> None:
        k = self.k
        dcum = self.rate.copy()
        dcum[:, 0] *= self.w0
        dcum[:, k + 1] *= self.n - k - self.w0
        self.dcum = dcum
        """Mean photon count of each segment (P, K + 2)."""
        cum = np.empty((len(dcum), k + 3), np.float64)
        cum[:, 0] = 0.0
        np.cumsum(dcum, axis=1, out=cum[:, 1:])
        self.cum = cum
        """C at each segment edge (P, K + 3)."""
        self.total = cum[:, k + 2]
        """Mean photon count of the whole gate (P,)."""

    @property
    def k(self) -> int:
        return self.rate.shape[1] - 2

    @property
    def beta(self) -> np.ndarray:
        return self.rate[:, 0]

    @cached_property
    def edges(self) -> np.ndarray:
        """Segment edges in ticks (P, K + 3)."""
        edges = np.empty((len(self.w0), self.k + 3), np.float64)
        edges[:, 0] = 0.0
        np.add(self.w0[:, None], np.arange(self.k + 1, dtype=np.float64), out=edges[:, 1:-1])
        edges[:, -1] = self.n
        return edges

    @cached_property
    def neg_reach(self) -> np.ndarray:
        """exp(-dcum) - 1 (P, K + 2): minus the probability of a photon within each segment, once it is
        reached."""
        neg = np.negative(self.dcum)
        return np.expm1(neg, out=neg)

    def ticks_per_count(self, scale: float = 1.0) -> np.ndarray:
        """`scale` / rate of each segment (P, K + 2): ticks per unit of C (inf where the rate is 0)."""
        with np.errstate(divide="ignore"):
            return np.divide(scale, self.rate)

    @cached_property
    def _search(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Rows of C and of the edges stacked into increasing arrays, and the ticks per count padded to the
        edges, 0 in empty segments (for `invert` and `cumulative`)."""
        npx = len(self.total)
        span = float(self.total.max(initial=0.0)) + 1.0
        stacked = (self.cum + np.arange(npx, dtype=np.float64)[:, None] * span).ravel()
        stacked_edges = (self.edges + np.arange(npx, dtype=np.float64)[:, None] * (self.n + 1.0)).ravel()
        inverse = np.zeros(self.edges.shape, np.float64)
        np.divide(1.0, self.rate, out=inverse[:, :-1], where=self.rate > 0)
        return span, stacked, stacked_edges, inverse.ravel()

    def rates(self) -> np.ndarray:
        """The dense transient (P, n): mean count per tick (for tests and small checks; the sampler never
        builds it)."""
        dense = np.repeat(self.beta[:, None], self.n, axis=1)
        rows = np.arange(len(self.beta))[:, None]
        dense[rows, self.w0[:, None] + np.arange(self.k)] = self.rate[:, 1:-1]
        return dense

    def _interpolate(self, pix: np.ndarray, x: np.ndarray, stacked: np.ndarray, scale: float, src: np.ndarray,
                     dst: np.ndarray) -> np.ndarray:  # fmt: skip
        """Piecewise-linear map, per pixel, from the stacked rows of `src` (edges or C) to `dst` at x."""
        width = self.k + 3
        seg = np.searchsorted(stacked, x + pix * scale, side="right") - 1 - pix * width
        idx = pix * width + np.clip(seg, 0, width - 2)
        flat_src, flat_dst = src.ravel(), dst.ravel()
        lo, hi = flat_src[idx], flat_src[idx + 1]
        step = hi - lo
        frac = np.clip((x - lo) / np.where(step > 0, step, 1.0), 0.0, 1.0)
        return flat_dst[idx] + frac * (flat_dst[idx + 1] - flat_dst[idx])

    def cumulative(self, pix: np.ndarray, s: np.ndarray) -> np.ndarray:
        """C(s): mean count from the gate's start to time s (ticks, in [0, n]) of pixels `pix`."""
        return self._interpolate(pix, s, self._search[2], self.n + 1.0, self.edges, self.cum)

    def invert(self, pix: np.ndarray, e: np.ndarray) -> np.ndarray:
        """The time t (ticks) at which C(t) = e for pixels `pix` (e < total): the first arrival whose
        unit-exponential clock reads e."""
        width = self.k + 3
        base = pix * width
        span, stacked, _, inverse = self._search
        idx = np.searchsorted(stacked, e + pix * span, side="right") - 1
        np.clip(idx, base, base + width - 2, out=idx)
        t = (e - self.cum.ravel()[idx]) * inverse[idx]
        t += self.edges.ravel()[idx]
        return np.minimum(t, np.nextafter(float(self.n), 0.0), out=t)


def transient(signal: np.ndarray, beta: np.ndarray, centre: np.ndarray, sigma: float, n: int) -> Transient:
    """The transient of P pixels: `signal` (P,) mean detectable photons of one pulse's return (the part outside
    the gate is lost), `beta` (P,) background counts per tick, the pulse's `centre` (P,) and standard deviation
    `sigma` in ticks."""
    beta = np.asarray(beta, np.float64)
    rate = np.empty((len(beta), window_ticks(sigma, n) + 2), np.float64)
    w0, masses = pulse_masses(centre, sigma, n, signal, out=rate[:, 1:-1])
    masses += beta[:, None]
    rate[:, 0] = beta
    rate[:, -1] = beta
    return Transient(rate, w0, n)


def first_detection_law(tr: Transient) -> tuple[np.ndarray, np.ndarray]:
    """(p (P,), q (P, K + 2)): the probability that a cycle detects a photon, and the probability that its first
    detection lies in each segment given that it detects (rows sum to 1; a pixel without light: all in the
    last segment)."""
    p = -np.expm1(-tr.total)
    q = np.negative(tr.cum[:, :-1])
    np.exp(q, out=q)
    q *= tr.neg_reach
    lit = p > 0
    q *= np.divide(-1.0, p, out=np.zeros_like(p), where=lit)[:, None]
    if not lit.all():
        q[~lit, -1] = 1.0
    return p, q


def segment_counts(tr: Transient, cycles: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Detections of N independent cycles per pixel (P,) and per segment (P, K + 2). Draws: one binomial per
    pixel, then one multinomial per pixel (`first_detection_law`)."""
    p, q = first_detection_law(tr)
    d = g.binomial(cycles, p)
    return d, g.multinomial(d, q)


def segment_index(per_segment: np.ndarray) -> np.ndarray:
    """Each detection's flat segment index (D,) int64 for detections counted `per_segment` (P, S), in segment
    order."""
    return np.repeat(np.arange(per_segment.size), per_segment.ravel())


def place_in_segments(
    t: np.ndarray, seg: np.ndarray, scratch: np.ndarray, neg_reach: np.ndarray, neg_scale: np.ndarray
) -> None:
    """Turn uniforms `t` (D,), in place, into the times of detections in segments `seg` (D,) past their
    segments' starts. In a segment of constant rate the first arrival's clock reading past the segment's start
    is an exponential truncated to the segment's count dC: -ln(1 - u (1 - exp(-dC))) = ln(1 + u neg_reach)
    (neg_reach = exp(-dC) - 1); its time is that over the rate (times -neg_scale). `neg_reach`, `neg_scale`:
    (P, S); `scratch` (D,) float64 is overwritten."""
    t *= np.take(neg_reach, seg, out=scratch, mode="clip")
    np.log1p(t, out=t)
    t *= np.take(neg_scale, seg, out=scratch, mode="clip")


def detect_independent(tr: Transient, cycles: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """First detections of N independent cycles per pixel: (pixel (D,), time in ticks (D,)), pixel-ordered
    (and segment-ordered within a pixel). Draws: one binomial per pixel (its detections), one multinomial per
    pixel (their segments, `first_detection_law`), then one uniform per detection (its time in its segment)."""
    d, per_segment = segment_counts(tr, cycles, g)
    t = g.random(int(d.sum()))
    seg = segment_index(per_segment)
    scratch = np.empty_like(t)
    place_in_segments(t, seg, scratch, tr.neg_reach, tr.ticks_per_count(-1.0))
    t += np.take(tr.edges[:, :-1], seg, out=scratch, mode="clip")
    np.minimum(t, np.nextafter(float(tr.n), 0.0), out=t)  # (t < n but for rounding)
    return np.repeat(np.arange(len(d)), d), t


def detect_with_dead_time(
    tr: Transient, cycles: int, dead: float, period: float, g: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """First detections over N cycles simulated one by one, the detector blind for `dead` ticks after each
    detection (into the following gates when the dead time outlasts the period's rest); `period` in ticks. The
    detector is armed at the first cycle. Draws: one uniform per pixel per cycle. Pixel-ordered output."""
    npx = len(tr.total)
    every = np.arange(npx)
    blind = np.zeros(npx)
    found_pix, found_t = [], []
    for _ in range(cycles):
        start = np.clip(blind, 0.0, float(tr.n))
        before = tr.cumulative(every, start)
        e = before - np.log1p(-g.random(npx))
        hit = e < tr.total
        if hit.any():
            pix = every[hit]
            t = tr.invert(pix, e[hit])
            found_pix.append(pix)
            found_t.append(t)
            blind[hit] = t + dead
        blind -= period
    if not found_pix:
        return np.zeros(0, np.int64), np.zeros(0)
    pix = np.concatenate(found_pix)
    t = np.concatenate(found_t)
    order = np.argsort(pix, kind="stable")
    return pix[order], t[order]


def quantise(t: np.ndarray, jitter: float, n: int, g: np.random.Generator) -> tuple[np.ndarray, int]:
    """TDC ticks of detection times `t` (ticks) after Gaussian jitter (`jitter` ticks, one normal draw per
    detection when > 0), clipped into the gate; and how many the clip moved."""
    if jitter > 0:
        tj = g.standard_normal(len(t))
        tj *= jitter
        tj += t
    else:
        tj = t.copy()
    clipped = 0
    for outside, edge in ((np.less(tj, 0.0), 0.0), (np.greater_equal(tj, n), n - 1.0)):
        count = int(np.count_nonzero(outside))
        if count:
            tj[outside] = edge
            clipped += count
    return tj.astype(np.int64), clipped  # floor: every time is now non-negative
