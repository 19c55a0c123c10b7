"""8-bit sRGB codes of float32 linear light by table lookup: the same codes as the formula, several times faster.

`encode(x)` equals `np.rint(linear_to_srgb(x) * 255).astype(np.uint8)` for every float32 x (the formula is
computed here, with this machine's numpy, to build the table). The code is a non-decreasing step function of
x, and for non-negative floats the order of x is the order of its bit pattern, so the 2^32 patterns fall into
2^16 buckets by their high 16 bits (sign, exponent, 7 mantissa bits) in which the code changes at most once
(a bucket spans at most 2^-8 and codes are at least 1/170 apart): a bucket holds its first code and, when the
code steps inside it, the low 16 bits of the first pattern that has the next code (found by bisection on
the formula itself). Negative numbers (clipped to 0 by the formula) get code 0, above 1 code 255; NaN (no
code in the formula: its cast to uint8 is undefined) gets 255 or 0 by its sign bit.
`tests/test_emulate_srgb8_codes.py` compares the table with the formula around every step.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from camsim.emulate.light import linear_to_srgb


def formula(x: np.ndarray) -> np.ndarray:
    """The 8-bit code by the formula (float32 arithmetic, as the RGB ISP does it)."""
    return np.rint(linear_to_srgb(np.asarray(x, np.float32)) * 255).astype(np.uint8)


def _codes_of_patterns(bits: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN patterns, replaced by the caller
        return formula(np.asarray(bits, np.uint32).view(np.float32)).astype(np.int64)


@cache
def tables() -> tuple[np.ndarray, np.ndarray]:
    """(base, step): uint8 and uint32 tables over the high 16 bits of a float32. The code of pattern b with
    high half h and low half l is base[h] + (l >= step[h]) in uint8 arithmetic (a bucket without a step
    stores its code minus 1, modulo 256, and step 0)."""
    hi = np.arange(2**16, dtype=np.uint32)
    first = _codes_of_patterns(hi << 16)
    last = _codes_of_patterns(hi << 16 | 0xFFFF)
    # Buckets of infinities and NaNs (exponent all ones): code 255 (+inf) or 0 (-inf); NaN has no code.
    special = (hi & 0x7F80) == 0x7F80
    first[special] = last[special] = np.where(hi[special] < 0x8000, 255, 0)
    steps = np.flatnonzero(last != first)
    if np.any(last[steps] - first[steps] != 1):  # pragma: no cover - holds for the sRGB curve
        raise RuntimeError("the 8-bit sRGB code steps twice inside one table bucket")
    # Bisection per stepping bucket: lo has the first code, hi the next.
    lo = np.zeros(len(steps), np.int64)
    up = np.full(len(steps), 0xFFFF, np.int64)
    base_bits = steps.astype(np.int64) << 16
    want = first[steps] + 1
    while np.any(up - lo > 1):
        mid = (lo + up) // 2
        at = _codes_of_patterns((base_bits + mid).astype(np.uint32))
        if np.any((at != want) & (at != want - 1)):  # pragma: no cover - a non-monotonic formula
            raise RuntimeError("the 8-bit sRGB code is not monotonic in a table bucket")
        reached = at == want
        up = np.where(reached, mid, up)
        lo = np.where(reached, lo, mid)
    base = ((first - 1) % 256).astype(np.uint8)
    step = np.zeros(2**16, np.uint32)
    base[steps] = first[steps].astype(np.uint8)
    step[steps] = up
    return base, step


def encode(x: np.ndarray) -> np.ndarray:
    """`formula(x)` for a float32 array, by table lookup."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    base, step = tables()
    high = np.right_shift(bits, 16, dtype=np.int64)
    out = np.take(base, high)
    out += (bits & np.uint32(0xFFFF)) >= np.take(step, high)
    return out
