"""PSNR and SSIM behave as their definitions say."""

from __future__ import annotations

import numpy as np

from camsim.interpolate.metrics import psnr, ssim


def test_identical_images_score_perfectly():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3))
    assert psnr(img, img) == float("inf")
    assert ssim(img, img) == 1.0


def test_psnr_of_a_constant_offset_is_analytic():
    a = np.full((8, 8), 100.0)
    assert np.isclose(psnr(a, a + 5), 10 * np.log10(255**2 / 25))


def test_ssim_drops_with_noise_but_barely_with_a_small_brightness_shift():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (48, 48)).astype(float)
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255)
    assert ssim(img, noisy) < 0.95
    assert ssim(img, np.clip(img + 2, 0, 255)) > 0.99
