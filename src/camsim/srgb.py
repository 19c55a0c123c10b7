"""Exact sRGB transfer functions (IEC 61966-2-1) so frames are blended in linear light, not in code values."""

from __future__ import annotations

import numpy as np


def decode(code: np.ndarray) -> np.ndarray:
    """uint8/uint16 sRGB code values -> linear light in [0, 1] (float64). Extra channels (alpha) stay linear."""
    arr = np.asarray(code)
    scale = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
    v = arr.astype(np.float64) / scale
    out = eotf(v)
    if out.ndim == 3 and out.shape[2] > 3:
        out[..., 3:] = v[..., 3:]
    return out


def encode(linear: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Linear light -> sRGB code values of `dtype` (rounded, clipped). Extra channels (alpha) stay linear."""
    lin = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    v = oetf(lin)
    if v.ndim == 3 and v.shape[2] > 3:
        v[..., 3:] = lin[..., 3:]
    maxval = np.iinfo(np.dtype(dtype)).max
    return np.floor(v * maxval + 0.5).astype(dtype)


def _float(v: np.ndarray) -> np.ndarray:
    """Keep float32 as float32 (speed in the emulators); everything else becomes float64."""
    arr = np.asarray(v)
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def eotf(v: np.ndarray) -> np.ndarray:
    """sRGB encoded value in [0, 1] -> linear (piecewise: linear toe below 0.04045, 2.4 power above)."""
    v = _float(v)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(v.dtype)


def oetf(lin: np.ndarray) -> np.ndarray:
    """Linear value in [0, 1] -> sRGB encoded."""
    lin = _float(lin)
    out = np.where(
        lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(np.maximum(lin, 0.0031308), 1 / 2.4) - 0.055
    )
    return out.astype(lin.dtype)
