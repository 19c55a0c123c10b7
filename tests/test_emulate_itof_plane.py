"""iToF without noise on fronto-parallel planes: decoded radial depth within 1 mm of the truth for every code,
the amplitude of the closed-form model, phase wrapping (depth mod the unambiguous range, with its warning),
multi-frequency unwrapping over the extended range, and lenses other than the pinhole."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from synthetic_active import pinhole_radial, plane_frame, write_active_sequence

from camsim.emulate.itof import ItofConfig, decode, emulate_itof, read_taps
from camsim.emulate.itof_codes import C, correlation, harmonics, phase_response, response_of, waveforms

H, W = 12, 16
QE, RHO = 0.35, 0.5
FW = 1e12  # a deep well and a 16-bit ADC: quantisation far below 1 mm


def exact(z_near: float, **kw) -> ItofConfig:
    """No noise, 16-bit ADC; the source power puts the nearest pixel's brightest tap at 80 % of full scale."""
    defaults = {"noise": False, "adc_bits": 16, "full_well": FW, "ambient_scale": 0.0, "qe": QE,
                "source_power": 0.8 * FW * z_near**2 / (QE * RHO)}  # fmt: skip
    return ItofConfig(**{**defaults, **kw})


def run(tmp_path, z: float, cfg: ItofConfig, frames: int | None = None, name: str = "out"):
    n = frames or cfg.total_taps
    seq = write_active_sequence(tmp_path / f"seq-{name}", lambda i: plane_frame(H, W, z, RHO), n, H, W)
    out = emulate_itof(seq, tmp_path / name, cfg, workers=1)
    meta = json.loads((out / "transforms.json").read_text())
    params = json.loads((out / "params.json").read_text())
    return read_taps(out), meta, params


@pytest.mark.parametrize(("code", "taps"), [("sinusoid", 4), ("sinusoid", 3), ("square", 4), ("square", 3),
                                            ("square", 6)])  # fmt: skip
def test_plane_depth_within_1mm_and_amplitude_of_the_model(tmp_path, code, taps):
    z = 2.0
    cfg = exact(z, code=code, taps=taps)
    tp, meta, params = run(tmp_path, z, cfg)
    assert tp.shape == (1, taps, H, W) and tp.dtype == np.uint16
    depth, amp = decode(tp, meta)
    truth = pinhole_radial(H, W, z)
    assert np.abs(depth[0] - truth).max() < 1e-3
    # amplitude: gain qe P rho cos_i / d^2, cos_i = z / d for a plane facing the camera
    gain = (2**16 - 1) / FW
    want = gain * QE * cfg.source_power * RHO * (z / truth) / truth**2
    assert np.abs(amp[0] / want - 1).max() < 1e-3
    assert meta["warnings"] == [] and params["derived"]["frames_beyond_range"] == 0
    assert decode(tp, params)[0].tolist() == depth.tolist()  # params.json decodes the same


def test_square_code_without_correction_would_miss_by_centimetres():
    """The correction matters: K = 4 arctan on the triangle correlation is off by up to 7 cm at 20 MHz."""
    r = phase_response("square", 4)
    err = np.abs(r.measured - r.grid).max() * C / (4 * math.pi * 20e6)
    assert 0.05 < err < 0.1


@pytest.mark.parametrize("code", ["sinusoid", "square"])
def test_correlation_closed_form_matches_the_waveforms_and_the_harmonics(code):
    """c(delta) = mean g(theta) h(theta + delta), integrated numerically, and its Fourier series."""
    g, h = waveforms(code)
    theta = (np.arange(200_000) + 0.5) * 2 * math.pi / 200_000
    delta = np.linspace(-3 * math.pi, 3 * math.pi, 37)
    brute = np.array([np.mean(g(theta) * h(theta + d)) for d in delta])
    assert np.abs(brute - correlation(code, delta)).max() < 1e-4
    n = np.arange(1, 4001)
    series = 0.5 + (harmonics(code, 4000)[None] * np.cos(n[None] * delta[:, None])).sum(1)
    assert np.abs(series - correlation(code, delta)).max() < 2e-4
    assert abs(np.mean(g(theta)) - 1) < 1e-9 and abs(np.mean(h(theta)) - 0.5) < 1e-9


def test_sinusoid_response_is_exact():
    phi = np.linspace(0, 2 * math.pi, 50, endpoint=False)
    for k in (3, 4, 7):
        g = response_of("sinusoid", k, phi)
        assert np.allclose(np.abs(g), k / 8) and np.allclose(
            np.mod(np.angle(g), 2 * math.pi), phi, atol=1e-12
        )


def test_beyond_the_range_decoded_depth_is_depth_mod_range_and_warned(tmp_path):
    z, f = 4.0, 50.0  # range c / (2 x 50 MHz) = 2.998 m
    cfg = exact(z, frequencies=(f,))
    tp, meta, params = run(tmp_path, z, cfg, frames=2 * cfg.total_taps)
    depth, _ = decode(tp, meta)
    rng_m = C / (2 * f * 1e6)
    truth = np.mod(pinhole_radial(H, W, z), rng_m)
    assert np.abs(depth - truth[None]).max() < 1e-3
    assert params["derived"]["frames_beyond_range"] == 2
    assert params["derived"]["unambiguous_range_m"] == pytest.approx(rng_m)
    assert len(meta["warnings"]) == 1 and "exceed the unambiguous range" in meta["warnings"][0]
    assert params["derived"]["warnings"] == meta["warnings"]


@pytest.mark.parametrize(("z", "wraps"), [(10.0, False), (16.0, True)])
def test_two_frequencies_unwrap_to_the_extended_range(tmp_path, z, wraps):
    """40 and 50 MHz: each alone wraps at 3.75 and 3.0 m, together at c / (2 x 10 MHz) = 14.99 m."""
    cfg = exact(z, frequencies=(40.0, 50.0))
    tp, meta, params = run(tmp_path, z, cfg)
    assert tp.shape[1] == 8 and meta["itof"]["tap_frequencies_mhz"] == [40.0] * 4 + [50.0] * 4
    depth, _ = decode(tp, meta)
    extended = C / (2 * 10e6)
    truth = np.mod(pinhole_radial(H, W, z), extended)
    assert np.abs(depth[0] - truth).max() < 1e-3
    assert (params["derived"]["frames_beyond_range"] == 1) == wraps
    assert bool(meta["warnings"]) == wraps


def test_distorted_lens_uses_the_undistorted_ray_length(tmp_path):
    """OPENCV k1 = -0.2: radial distance = z |(x, y, 1)| with (x, y) = cv2.undistortPoints of the pixel centre."""
    z, k1 = 2.0, -0.2
    seq = write_active_sequence(tmp_path / "seq", lambda i: plane_frame(H, W, z, RHO), 4, H, W,
                                lens={"k1": k1})  # fmt: skip
    out = emulate_itof(seq, tmp_path / "out", exact(z), workers=1)
    depth, _ = decode(read_taps(out), json.loads((out / "transforms.json").read_text()))
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    K = np.array([[W, 0, W / 2], [0, W, H / 2], [0, 0, 1]], np.float64)
    stop = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)
    xy = cv2.undistortPointsIter(np.stack([u, v], -1).reshape(-1, 1, 2), K, np.array([k1, 0, 0, 0, 0.0]), None,
                                 None, stop)  # fmt: skip
    truth = z * np.sqrt(1 + (xy.reshape(H, W, 2) ** 2).sum(-1))
    assert np.abs(depth[0] - truth).max() < 1e-3
    assert np.abs(truth - pinhole_radial(H, W, z)).max() > 0.01  # the lens matters here


def test_fisheye_depth_is_already_radial_and_outside_the_image_circle_is_dark(tmp_path):
    """FISHEYE_EQUISOLID: the depth pass holds the distance along the ray; pixels beyond the image circle have
    no ray (no return)."""
    r0 = 3.0
    lens = {"camera_model": "FISHEYE_EQUISOLID", "fisheye_fov": math.pi}
    seq = write_active_sequence(tmp_path / "seq", lambda i: plane_frame(H, W, r0, RHO), 4, H, W, focal=W / 3,
                                lens=lens)  # fmt: skip
    out = emulate_itof(seq, tmp_path / "out", exact(r0, incidence=False), workers=1)
    depth, amp = decode(read_taps(out), json.loads((out / "transforms.json").read_text()))
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    radius = np.hypot((u - W / 2) / (W / 3), (v - H / 2) / (W / 3))
    inside, outside = radius < 2 * math.sin(math.pi / 4) - 0.01, radius > 2 * math.sin(math.pi / 4) + 0.01
    assert inside.sum() > 50 and outside.sum() > 10
    assert np.abs(depth[0][inside] - r0).max() < 1e-3
    assert amp[0][outside].max() < 1.0  # DN: nothing returned


def test_saturation_is_clipped_and_warned(tmp_path):
    """A source 10x brighter than the full well: every tap sits at the ADC's top, and the output says so."""
    z = 2.0
    cfg = ItofConfig(noise=False, qe=QE, ambient_scale=0.0, source_power=10 * 20000.0 * z**2 / (QE * RHO))
    tp, meta, params = run(tmp_path, z, cfg)
    assert tp.max() == 2**12 - 1 and tp.min() > 0.9 * (2**12 - 1)
    assert params["derived"]["saturated_fraction"] > 0.5
    assert any("saturate" in w for w in meta["warnings"])
