"""Decode iToF taps into radial depth and amplitude: the K-tap arctan estimator per frequency, the closed-form
correction of non-sinusoidal codes (camsim.emulate.itof_codes), and multi-frequency phase unwrapping. Pure numpy.

Per frequency f with taps T_0..T_{K-1} (phase offsets psi_k = 2 pi k / K): Z = sum_k T_k exp(i psi_k), the
arctan phase arg Z mod 2 pi, the true phase phi from the code's response (exact for the sinusoid), the
distance phi / (2 pi) * c / (2 f) and the amplitude |Z| / |G(phi)|.

Several frequencies extend the unambiguous range to c / (2 g), g the greatest common divisor of the
frequencies: each distance d_0 + n R_0 (n = 0 .. f_0 / g - 1) of the lowest frequency f_0 is a candidate, every
other frequency takes its wrap nearest the candidate, and the candidate whose unwrapped distances agree best
(least weighted squared spread around their weighted mean) wins; its weighted mean, modulo c / (2 g), is the
depth. The weights are the inverse Cramér-Rao variances (`depth_std_crb`) estimated from the taps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from camsim.emulate.itof_codes import C, phase_response, tap_phases, unambiguous_range
from camsim.errors import ConfigError

MAX_WRAPS = 256
"""Most wraps of the lowest frequency in the extended range that unwrapping tries (f_0 / g)."""


def common_frequency_mhz(frequencies_mhz: tuple[float, ...] | list[float]) -> float:
    """The greatest common divisor of the frequencies (MHz), each read as a decimal of up to 6 places (1 Hz)."""
    fracs = [Fraction(str(float(f))).limit_denominator(10**6) for f in frequencies_mhz]
    den = math.lcm(*(f.denominator for f in fracs))
    return math.gcd(*(int(f * den) for f in fracs)) / den


def extended_range(frequencies_mhz: tuple[float, ...] | list[float]) -> float:
    """The unambiguous range (m) of the frequencies together: c / (2 gcd)."""
    return unambiguous_range(common_frequency_mhz(frequencies_mhz) * 1e6)


def check_frequencies(frequencies_mhz: tuple[float, ...] | list[float]) -> None:
    """ConfigError unless the frequencies are positive, distinct and commensurate enough to unwrap."""
    if not frequencies_mhz:
        raise ConfigError("frequencies: give at least one modulation frequency (MHz)")
    if any(not (math.isfinite(f) and f > 0) for f in frequencies_mhz):
        raise ConfigError(f"frequencies must be positive (MHz), got {list(frequencies_mhz)}")
    if len(set(frequencies_mhz)) != len(frequencies_mhz):
        raise ConfigError(f"frequencies must be distinct, got {list(frequencies_mhz)}")
    wraps = min(frequencies_mhz) / common_frequency_mhz(frequencies_mhz)
    if wraps > MAX_WRAPS:
        raise ConfigError(
            f"frequencies {list(frequencies_mhz)} MHz have a greatest common divisor of "
            f"{common_frequency_mhz(frequencies_mhz):g} MHz: {wraps:.0f} wraps of the lowest one to unwrap (at most "
            f"{MAX_WRAPS}); choose frequencies with a larger common divisor"
        )


@dataclass(frozen=True)
class DecodeParams:
    """What decoding needs: frequencies (MHz, in tap order), taps per frequency, code, and the noise model the
    multi-frequency weights use (ADC gain DN/e-, read noise e-)."""

    frequencies_mhz: tuple[float, ...]
    taps: int
    code: str
    gain: float = 1.0
    read_noise: float = 0.0

    @classmethod
    def of(cls, params: Any) -> DecodeParams:
        """From an ItofConfig, a params.json payload (its `config` and `derived`), a transforms.json (its `itof`
        block), or a dict of those fields."""
        if isinstance(params, DecodeParams):
            return params
        if hasattr(params, "frequencies") and hasattr(params, "taps"):  # an ItofConfig
            return cls(tuple(params.frequencies), int(params.taps), params.code, params.dn_per_electron(),
                       float(params.read_noise))  # fmt: skip
        if not isinstance(params, dict):
            raise ConfigError(
                f"decode needs an ItofConfig, params.json or transforms.json, got {type(params)}"
            )
        if "itof" in params:  # transforms.json
            b = params["itof"]
            return cls(tuple(b["frequencies_mhz"]), int(b["taps_per_frequency"]), b["code"],
                       float(b["adc_gain_dn_per_e"]), float(b["read_noise_e"]))  # fmt: skip
        cfg = params.get("config", params)
        derived = params.get("derived", {})
        gain = derived.get("adc_gain_dn_per_e", cfg.get("adc_gain") or 1.0)
        return cls(tuple(cfg["frequencies"]), int(cfg["taps"]), cfg["code"], float(gain),
                   float(cfg.get("read_noise", 0.0)))  # fmt: skip


def decode(taps: np.ndarray, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(radial depth m, amplitude) from taps shaped (..., F*K, H, W) (frequency-major: tap f*K + k is tap k of
    frequency f), in DN or electrons. Depth is in [0, unambiguous range); amplitude is the returned source
    light in the taps' unit (what a tap would hold if it gated all of it, before the 1/2 of its duty cycle),
    averaged over the frequencies. Pure numpy; `params` as `DecodeParams.of` takes."""
    p = DecodeParams.of(params)
    check_frequencies(p.frequencies_mhz)
    t = np.asarray(taps, dtype=np.float64)
    k, nf = p.taps, len(p.frequencies_mhz)
    if t.ndim < 3 or t.shape[-3] != k * nf:
        raise ConfigError(
            f"taps must be shaped (..., {k * nf}, H, W) ({nf} frequencies x {k} taps), got {t.shape}"
        )
    response = phase_response(p.code, k)
    rot = np.exp(1j * tap_phases(k))
    dists, amps, weights = [], [], []
    for f, mhz in enumerate(p.frequencies_mhz):
        block = t[..., f * k : (f + 1) * k, :, :]
        z = np.einsum("k,...khw->...hw", rot, block)
        phi, g = response.invert(np.mod(np.angle(z), 2.0 * math.pi))
        amp = np.abs(z) / g
        dists.append(phi / (2.0 * math.pi) * unambiguous_range(mhz * 1e6))
        amps.append(amp)
        if nf > 1:
            weights.append(_weight(block, np.abs(z), mhz, k, p))
    amplitude = np.mean(amps, axis=0)
    if nf == 1:
        return dists[0], amplitude
    return unwrap(dists, weights, p.frequencies_mhz), amplitude


def _weight(block: np.ndarray, first_harmonic: np.ndarray, mhz: float, k: int, p: DecodeParams) -> np.ndarray:
    """Inverse Cramér-Rao variance of a frequency's distance (up to a common factor): (f A)^2 / sigma^2, with A the
    first-harmonic amplitude and sigma^2 the tap variance at the mean level (shot + read + quantisation noise)."""
    a1 = 2.0 * first_harmonic / k
    level = np.maximum(block.mean(axis=-3), 0.0)
    var = p.gain * level + (p.gain * p.read_noise) ** 2 + 1.0 / 12.0
    return (mhz * a1) ** 2 / var + 1e-300


def unwrap(
    distances: list[np.ndarray], weights: list[np.ndarray], frequencies_mhz: tuple[float, ...]
) -> np.ndarray:
    """Depth in [0, c / (2 gcd)) from wrapped per-frequency distances (module docstring)."""
    fs = np.asarray(frequencies_mhz, dtype=np.float64)
    ranges = C / (2.0 * fs * 1e6)
    low = int(np.argmin(fs))
    common = common_frequency_mhz(frequencies_mhz)
    wraps = round(fs[low] / common)
    extended = C / (2.0 * common * 1e6)
    shape = (wraps,) + (1,) * distances[low].ndim
    cand = distances[low][None] + np.arange(wraps).reshape(shape) * ranges[low]
    unwrapped = []
    for f, (d, r) in enumerate(zip(distances, ranges, strict=True)):
        unwrapped.append(cand if f == low else d[None] + np.rint((cand - d[None]) / r) * r)
    total = np.sum(weights, axis=0)
    mean = sum(w[None] * u for w, u in zip(weights, unwrapped, strict=True)) / total[None]
    cost = sum(w[None] * (u - mean) ** 2 for w, u in zip(weights, unwrapped, strict=True))
    best = np.argmin(cost, axis=0)[None]
    return np.mod(np.take_along_axis(mean, best, axis=0)[0], extended)


def depth_std_crb(
    amplitude_e: np.ndarray | float,
    level_e: np.ndarray | float,
    taps: int,
    frequency_mhz: float,
    read_noise_e: float = 0.0,
    gain: float | None = None,
) -> np.ndarray:
    """Cramér-Rao bound on the standard deviation (m) of the radial depth from K taps of the sinusoidal code.

    Model, in electrons: T_k = B + A cos(phi - psi_k) + n_k, psi_k = 2 pi k / K, K >= 3, with independent noise
    n_k of variance sigma^2 = B + read_noise^2 + 1 / (12 gain^2) (photon shot noise at the mean level B, read
    noise, and the ADC's quantisation of 1 / gain electrons per DN, a uniform error only while the other noise
    spans several DN; none without a gain). For the sinusoid
    A = a / 4, a = `amplitude_e` (the returned light, `decode`'s amplitude) and B = `level_e` (the mean tap).
    Fisher information of theta = (phi, A, B): the derivatives of the mean are -A sin(phi - psi_k), cos(phi - psi_k)
    and 1, whose cross sums vanish over equally spaced phases (K >= 3), so the matrix is diagonal with
    I_phi = A^2 K / (2 sigma^2) and the bound is var(phi) >= 2 sigma^2 / (K A^2). The arctan estimator is the
    maximum-likelihood estimate of this model and attains it; with the exact per-tap shot variances
    B + A cos(phi - psi_k) its delta-method variance, (2 / (K A))^2 sum_k sin^2(psi_k - phi) sigma_k^2, is the
    same for K >= 4, because sum_k sin^2(x_k) cos(x_k) = 0 (for K = 3 that sum is -3 cos(3 phi) / 4 and the
    arctan variance is 2 sigma^2 / (3 A^2) - cos(3 phi) / (3 A): off the bound by up to A / (2 sigma^2) relative).
    Depth: sigma_d = c / (4 pi f) sigma_phi.
    """
    if taps < 3:
        raise ConfigError(f"taps must be at least 3, got {taps}")
    cos_amp = np.asarray(amplitude_e, dtype=np.float64) / 4.0
    var = np.asarray(level_e, dtype=np.float64) + read_noise_e**2 + (1.0 / (12.0 * gain**2) if gain else 0.0)
    sigma_phi = np.sqrt(2.0 * var / taps) / cos_amp
    return C / (4.0 * math.pi * frequency_mhz * 1e6) * sigma_phi
