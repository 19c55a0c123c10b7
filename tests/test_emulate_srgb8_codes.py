"""The RGB ISP's 8-bit sRGB table gives the formula's code for every float32 it can meet.

`camsim.emulate.srgb8.encode` replaces `np.rint(linear_to_srgb(x) * 255).astype(np.uint8)` by a table over the
float32 bit patterns. The code only changes at 255 steps, so the table is right everywhere when it is right on
every pattern around every step (and the bisection found the first pattern of each code), at the bucket edges,
and on patterns drawn at random over the whole 32-bit range (an exhaustive run over all 1.07e9 patterns in
[0, 1] agreed too, at the time of writing: 25 s, too slow for a test).
"""

from __future__ import annotations

import numpy as np

from camsim.emulate import srgb8


def _check(bits: np.ndarray) -> None:
    x = np.asarray(bits, np.uint32).view(np.float32)
    x = x[~np.isnan(x)]  # NaN has no code in the formula (its cast to uint8 is undefined)
    want = srgb8.formula(x)
    got = srgb8.encode(x)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} codes differ, first at {x[bad[0]]!r}: {got[bad[0]]} != {want[bad[0]]}"


def test_srgb8_table_matches_the_formula_around_every_step():
    step = srgb8.tables()[1]
    stepping = np.flatnonzero(step)
    assert stepping.size == 255  # codes 1..255 each begin at one pattern
    first = (stepping.astype(np.int64) << 16) + step[stepping]
    around = (first[:, None] + np.arange(-4096, 4096)[None, :]).ravel()
    _check(around)
    # the step is where the formula's code first reaches the next value
    x = first.astype(np.uint32).view(np.float32)
    assert np.array_equal(srgb8.formula(x), np.arange(1, 256))
    assert np.array_equal(srgb8.formula((first - 1).astype(np.uint32).view(np.float32)), np.arange(0, 255))


def test_srgb8_table_matches_the_formula_on_bucket_edges_random_patterns_and_specials():
    hi = np.arange(2**16, dtype=np.uint32) << 16
    _check(np.concatenate([hi, hi | 0xFFFF]))
    rng = np.random.default_rng(18)
    _check(rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32))
    _check(rng.integers(0, 0x3F800001, 2_000_000, dtype=np.uint64).astype(np.uint32))  # [0, 1]
    specials = np.array(
        [0.0, -0.0, 1e-45, 0.0031308, 0.04045, 0.5, 1.0, 1.0000001, 2.0, np.inf, -np.inf, -1.0]
    )
    _check(specials.astype(np.float32).view(np.uint32))


def test_srgb8_encode_keeps_the_shape_of_an_image():
    img = np.random.default_rng(1).random((5, 7, 3), dtype=np.float32) * 1.2 - 0.1
    out = srgb8.encode(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, srgb8.formula(img))
