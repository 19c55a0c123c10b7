"""`emulate spad` with its defaults gives informative data: auto-exposure puts the sequence's mean luminance at
a detection probability of 0.5 (recorded in params.json), so on a rendered demo sequence the per-pixel
detection rate follows the linear brightness (Pearson r > 0.9) instead of saturating."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from conftest import FAST
from synthetic_sensors import constant_frames, write_sequence

from camsim.cli import main
from camsim.emulate import SpadConfig, emulate_spad, unpack_frames
from camsim.emulate.light import LUMA, open_sequence


@pytest.mark.blender
def test_default_spad_on_a_rendered_demo_sequence_follows_the_linear_brightness(
    demo_scenes, render, tmp_path
):
    seq = render(
        demo_scenes[0], "spad-demo", dataclasses.replace(FAST, linear=True), frame_start=1, frame_end=120
    )
    out = tmp_path / "spad"
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "spad", str(seq), str(out)])  # every default
    assert exc.value.code == 0
    bits = unpack_frames(out)[..., 0].astype(np.float64)
    assert bits.shape[0] >= 50
    source = open_sequence(seq, "linear")
    lum = np.stack([source.linear(i) @ LUMA.astype(np.float32) for i in range(source.n)])
    rate, brightness = bits.mean(axis=0), lum.mean(axis=0)
    r = np.corrcoef(rate.ravel(), brightness.ravel())[0, 1]
    print(f"per-pixel detection rate vs linear brightness over {bits.shape[0]} binary frames: r = {r:.4f}")
    assert r > 0.9
    assert 0.2 < bits.mean() < 0.8  # not saturated (it was 99.9 % ones)
    derived = json.loads((out / "params.json").read_text())["derived"]
    assert derived["exposure"] == "auto"
    auto = derived["auto_exposure"]
    assert auto["detection_probability_at_mean"] == pytest.approx(0.5, abs=1e-6)
    assert auto["mean_luminance"] == pytest.approx(lum.mean(), rel=0.1)  # sampled frames stand for the whole
    qe, dcr = SpadConfig().qe, SpadConfig().dark_count_rate
    rate_at = lambda v: qe * derived["photons_per_pixel_per_s_at_white"] * v + dcr  # noqa: E731
    p_grey = -math.expm1(-rate_at(0.18) * derived["gate_time_s"])
    assert 0.1 < p_grey < 0.9, p_grey  # mid-grey detects with a probability well inside (0, 1)


def test_auto_exposure_hits_its_target_on_a_flat_field(tmp_path):
    seq = write_sequence(tmp_path / "seq", constant_frames(0.25, 24, 32, 40), np.arange(40) / 30.0)
    out = emulate_spad(seq, tmp_path / "out", SpadConfig(seed=4, hot_pixel_fraction=0.0))
    bits = unpack_frames(out)
    p = 0.5
    assert abs(bits.mean() - p) < 4 * math.sqrt(p * (1 - p) / bits.size)
    derived = json.loads((out / "params.json").read_text())["derived"]
    assert derived["auto_exposure"]["mean_luminance"] == pytest.approx(0.25, rel=1e-3)
    assert derived["gate_time_s"] < derived["binary_frame_period_s"]
    assert derived["auto_exposure"]["limited_by_period"] is False


@pytest.mark.parametrize("target", [0.2, 0.8])
def test_auto_exposure_target_is_honoured(tmp_path, target):
    seq = write_sequence(tmp_path / "seq", constant_frames(0.6, 24, 32, 30), np.arange(30) / 30.0)
    cfg = SpadConfig(auto_exposure_target=target, hot_pixel_fraction=0.0, seed=1)
    bits = unpack_frames(emulate_spad(seq, tmp_path / "out", cfg))
    assert abs(bits.mean() - target) < 4 * math.sqrt(target * (1 - target) / bits.size)


def test_a_dark_scene_gets_the_whole_period_and_a_warning(tmp_path, caplog):
    seq = write_sequence(tmp_path / "seq", constant_frames(1e-4, 8, 8, 4), np.arange(4) / 30.0)
    with caplog.at_level("WARNING"):
        out = emulate_spad(seq, tmp_path / "out", SpadConfig(flux=100.0, dark_count_rate=0.0))
    derived = json.loads((out / "params.json").read_text())["derived"]
    assert derived["gate_time_s"] == pytest.approx(derived["binary_frame_period_s"])
    assert derived["auto_exposure"]["limited_by_period"] is True
    assert "whole binary-frame period" in caplog.text


def test_dark_counts_outweighing_the_signal_are_reported(tmp_path, caplog):
    seq = write_sequence(tmp_path / "seq", constant_frames(1e-4, 8, 8, 4), np.arange(4) / 30.0)
    with caplog.at_level("WARNING"):
        emulate_spad(seq, tmp_path / "out", SpadConfig(flux=100.0))
    assert "dark counts" in caplog.text


def test_a_given_gate_time_is_used_as_is(tmp_path):
    seq = write_sequence(tmp_path / "seq", constant_frames(0.5, 8, 8, 4), np.arange(4) / 30.0)
    out = emulate_spad(seq, tmp_path / "out", SpadConfig(gate_time=1e-5))
    derived = json.loads((out / "params.json").read_text())["derived"]
    assert derived["gate_time_s"] == 1e-5 and derived["exposure"] == "gate_time"
    assert derived["auto_exposure"] is None
