"""Continuous-wave time-of-flight codes: what a lock-in tap collects, in closed form. Pure numpy.

The source emits power P g(omega t) and the reference steers photo-electrons into a tap with a weight
h(omega t - psi) in [0, 1] (psi: the tap's phase offset). Both waveforms have period 2 pi, g has mean 1 and
h mean 1/2 (the tap gates half of the light, on average):

    sinusoid   g = 1 + cos(theta)          h = (1 + cos(theta)) / 2
    square     g = 2 [cos(theta) >= 0]     h = [cos(theta) >= 0]          (50 % duty cycle)

Light returning from radial distance d is delayed in phase by phi = 4 pi f d / c, so a tap collects the
fraction c(phi - psi) of the returned light, with the correlation c(delta) = mean_theta g(theta) h(theta + delta):

    sinusoid   c(delta) = 1/2 + cos(delta) / 4
    square     c(delta) = 1 - |delta| / pi    (delta wrapped to [-pi, pi]: the triangle)
             = 1/2 + sum over odd n of 4 / (pi^2 n^2) cos(n delta)

Ambient light is unmodulated: a tap collects half of it (the mean of h).

K taps per frequency at psi_k = 2 pi k / K give Z = sum_k T_k exp(i psi_k) = a G(phi) with
G(phi) = sum_k c(phi - psi_k) exp(i psi_k) (the offset cancels). Only the harmonics n = 1 mod K and
n = -1 mod K of c reach Z, so for the sinusoid (and K >= 3) arg Z = phi and |G| = K / 8 exactly; for the square
code the odd harmonics alias (K = 4: n = 3, 5, 7, ...) and arg Z is a periodic, monotonic distortion of phi,
which `PhaseResponse` tabulates from the closed form and inverts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from camsim.errors import ConfigError

C = 299_792_458.0
"""Speed of light in vacuum (m/s)."""

Code = Literal["sinusoid", "square"]
CODES: tuple[str, ...] = ("sinusoid", "square")

RESPONSE_SAMPLES = 1 << 14
"""Phases at which a non-sinusoidal code's arctan response is tabulated (linear interpolation between them:
below 1e-4 rad of error for the square code's kinks, a few micrometres at 20 MHz)."""


def unambiguous_range(frequency_hz: float) -> float:
    """c / (2 f): the radial distance at which the phase wraps (m)."""
    return C / (2.0 * float(frequency_hz))


Waveform = Callable[[np.ndarray], np.ndarray]


def waveforms(code: str) -> tuple[Waveform, Waveform]:
    """(g, h): the emitted light (mean 1) and the tap's reference weight (mean 1/2) as functions of the phase."""
    if code == "sinusoid":
        return (lambda t: 1.0 + np.cos(t)), (lambda t: 0.5 * (1.0 + np.cos(t)))
    if code == "square":
        return (lambda t: 2.0 * (np.cos(t) >= 0)), (lambda t: 1.0 * (np.cos(t) >= 0))
    raise ConfigError(f"unknown code {code!r} (choose from {', '.join(CODES)})")


def correlation(code: str, delta: np.ndarray | float) -> np.ndarray:
    """c(delta): the fraction of the returned source light a tap collects when the light lags its reference
    by delta (rad), in closed form (module docstring); float32 in, float32 out, else float64."""
    d = np.asarray(delta)
    d = d if d.dtype in (np.float32, np.float64) else d.astype(np.float64)
    one = d.dtype.type(1.0)
    if code == "sinusoid":
        return one / 2 + np.cos(d) / 4
    if code == "square":
        pi = d.dtype.type(math.pi)
        return one - np.abs(np.remainder(d + pi, 2 * pi) - pi) / pi
    raise ConfigError(f"unknown code {code!r} (choose from {', '.join(CODES)})")


def harmonics(code: str, n_max: int) -> np.ndarray:
    """Cosine coefficients c_1..c_n_max of the correlation (c(delta) = 1/2 + sum c_n cos(n delta))."""
    n = np.arange(1, n_max + 1, dtype=np.float64)
    if code == "sinusoid":
        return np.where(n == 1, 0.25, 0.0)
    if code == "square":
        return np.where(n % 2 == 1, 4.0 / (math.pi**2 * n**2), 0.0)
    raise ConfigError(f"unknown code {code!r} (choose from {', '.join(CODES)})")


def tap_phases(taps: int) -> np.ndarray:
    """psi_k = 2 pi k / K, k = 0..K-1 (rad)."""
    return 2.0 * math.pi * np.arange(taps) / taps


@dataclass(frozen=True)
class PhaseResponse:
    """What the K-tap arctan estimator reads for each true phase: arg G(phi) (increasing, from 0 to 2 pi) and
    |G(phi)| on `grid` (0..2 pi inclusive); None for the sinusoid, whose response is exact (arg G = phi,
    |G| = K/8)."""

    code: str
    taps: int
    grid: np.ndarray | None
    measured: np.ndarray | None
    gain: np.ndarray | None

    def invert(self, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(phi, |G(phi)|) for arctan phases in [0, 2 pi)."""
        if self.grid is None:
            return measured, np.full(np.shape(measured), self.taps / 8.0)
        assert self.measured is not None and self.gain is not None
        phi = np.interp(measured, self.measured, self.grid)
        return phi, np.interp(phi, self.grid, self.gain)


def response_of(code: str, taps: int, phi: np.ndarray) -> np.ndarray:
    """G(phi) = sum_k c(phi - psi_k) exp(i psi_k) (complex), from the closed-form correlation."""
    psi = tap_phases(taps)
    c = correlation(code, np.asarray(phi, dtype=np.float64)[..., None] - psi)
    return (c * np.exp(1j * psi)).sum(axis=-1)


@lru_cache(maxsize=16)
def phase_response(code: str, taps: int) -> PhaseResponse:
    """The tabulated response of `code` with `taps` taps; ConfigError when arctan cannot tell phases apart
    (fewer than 3 taps, or a response that is not monotonic)."""
    if taps < 3:
        raise ConfigError(f"taps must be at least 3 (the arctan estimator needs 3 phases), got {taps}")
    correlation(code, 0.0)  # the code is known
    if code == "sinusoid":
        return PhaseResponse(code, taps, None, None, None)
    grid = np.linspace(0.0, 2.0 * math.pi, RESPONSE_SAMPLES + 1)
    g = response_of(code, taps, grid)
    measured = np.unwrap(np.angle(g))
    ends = abs(measured[0]) < 1e-9 and abs(measured[-1] - 2.0 * math.pi) < 1e-9
    if not (ends and np.all(np.diff(measured) > 0)):
        raise ConfigError(f"code {code} with {taps} taps: the arctan phase does not grow with the true phase")
    return PhaseResponse(code, taps, grid, measured, np.abs(g))
