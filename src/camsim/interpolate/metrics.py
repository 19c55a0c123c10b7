"""Image-quality metrics for judging interpolated frames against rendered truth."""

from __future__ import annotations

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (inf for identical images)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0, sigma: float = 1.5) -> float:
    """Mean SSIM of Wang et al. (2004): 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03.

    Computed per channel and averaged; borders closer than the window radius are left out of the mean
    (as scikit-image does), statistics use the Gaussian weights directly (no sample-size correction).
    """
    from scipy.ndimage import gaussian_filter

    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    radius = int(3.5 * sigma + 0.5)
    scores = []
    for c in range(x.shape[2]):
        xc, yc = x[..., c], y[..., c]

        def f(img: np.ndarray) -> np.ndarray:
            return gaussian_filter(img, sigma, truncate=3.5, mode="reflect")

        mx, my = f(xc), f(yc)
        vx, vy, cxy = f(xc * xc) - mx * mx, f(yc * yc) - my * my, f(xc * yc) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        crop = s[radius:-radius, radius:-radius] if min(s.shape) > 2 * radius else s
        scores.append(float(crop.mean()))
    return float(np.mean(scores))
