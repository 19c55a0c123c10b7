"""The vectorised threshold crossings of the event camera equal a plain per-pixel loop of the model's rule.

`PixelArray._crossings` computes first crossings on whole arrays and later ones by the recurrence
t_next = t + max(threshold / |slope|, refractory). The reference below applies the model's general rule
(the one events.py states: fire ON when d reaches the ON threshold, OFF at minus the OFF threshold, not
before the refractory period has passed; firing resets d to 0) event after event, one pixel at a time, in
Python floats (the same IEEE doubles). Events, memorised levels and last-event times must agree bit for bit,
on states that start inside, on and beyond the thresholds, in and out of the refractory period, with zero,
tiny and huge slopes. The event order of a whole interval is checked against np.lexsort as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from camsim.emulate.events import EventsConfig, PixelArray, _time_order


def _reference(d, last, on, off, k, refr, t0, t1):
    """Per pixel: the general rule, event after event. Returns events (t, pixel, on?) and the new d, last."""
    dt = t1 - t0
    events, d_new, last_new = [], d.copy(), last.copy()
    for p in range(len(d)):
        d_end = d[p] + k[p] * dt
        d_new[p] = d_end
        if not (max(d[p], d_end) >= on[p] or min(d[p], d_end) <= -off[p]):
            continue
        kk, level, tau, t_last = k[p], d_end - k[p] * dt, t0, last[p]
        while True:
            t_on = tau if level >= on[p] else (tau + (on[p] - level) / kk if kk > 0 else math.inf)
            t_off = tau if level <= -off[p] else (tau + (-off[p] - level) / kk if kk < 0 else math.inf)
            ready = t_last + refr
            f_on, f_off = max(t_on, ready), max(t_off, ready)
            ok_on = math.isfinite(t_on) and f_on <= t1 and (kk > 0 or level + kk * (f_on - tau) >= on[p])
            ok_off = (
                math.isfinite(t_off) and f_off <= t1 and (kk < 0 or level + kk * (f_off - tau) <= -off[p])
            )
            if not (ok_on or ok_off):
                break
            use_on = ok_on and (not ok_off or f_on <= f_off)
            t_fire = f_on if use_on else f_off
            events.append((t_fire, p, int(use_on)))
            t_last, tau, level = t_fire, t_fire, 0.0
            d_new[p] = kk * (t1 - t_fire)
        last_new[p] = t_last
    return events, d_new, last_new


@pytest.mark.parametrize("refr", [0.0, 1e-4, 2e-3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_events_crossings_equal_the_per_pixel_rule(seed, refr):
    rng = np.random.default_rng(seed)
    h, w = 20, 30
    p = h * w
    pixels = PixelArray(EventsConfig(refractory=refr, seed=seed), h, w)
    t0, t1 = 0.25, 0.25 + 1 / 60
    on = np.maximum(rng.uniform(0.01, 0.4, p), 0.01)
    off = np.maximum(rng.uniform(0.01, 0.4, p), 0.01)
    d = rng.uniform(-0.45, 0.45, p)
    d[::7] = on[::7] * rng.uniform(1.0, 1.5, len(d[::7]))  # beyond ON (a refractory-blocked pixel)
    d[3::11] = -off[3::11]  # exactly on the OFF threshold
    k = rng.normal(0, 1, p) * 10.0 ** rng.integers(-3, 4, p)
    k[5::13] = 0.0
    k[6::17] = 1e-300
    last = np.where(rng.random(p) < 0.5, -np.inf, t0 - rng.uniform(0, 3e-3, p))
    pixels.thr_on, pixels.thr_off, pixels.neg_thr_off = on, off, -off
    pixels.d, pixels.last = d.copy(), last.copy()
    want, d_want, last_want = _reference(d, last, on, off, k, refr, t0, t1)

    ts, idx, pol = pixels._crossings(k.copy(), t0, t1)

    got = sorted(zip(idx.tolist(), ts.tolist(), pol.tolist(), strict=True))
    assert got == sorted((q, t, s) for t, q, s in want)
    assert len(got) > 200 and max(np.bincount(idx)) > 5  # many events, several per fast pixel
    assert np.array_equal(pixels.d, d_want)
    assert np.array_equal(pixels.last, last_want)


def test_events_time_order_equals_lexsort_on_both_key_paths():
    rng = np.random.default_rng(3)
    for h, w, span in [(7, 9, 50), (300, 500, 40_000), (3, 4, 2**60)]:  # the last overflows the packed key
        p = h * w
        n = 3000
        t_us = rng.integers(0, span, n).astype(np.int64)
        pixel = rng.integers(0, p, n).astype(np.int64)
        pol = rng.integers(0, 2, n).astype(np.int64)
        bits = max(1, (w - 1).bit_length())
        yx = np.arange(p) // w << bits | np.arange(p) % w
        x, y = pixel % w, pixel // w
        order = np.lexsort((x, y, t_us))
        want = np.stack([t_us[order], x[order], y[order], pol[order]], axis=1)
        assert np.array_equal(_time_order(t_us, pixel, pol, yx, bits), want)
