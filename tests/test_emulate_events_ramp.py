"""Event emulator: a log-intensity ramp of known slope gives the predicted events at the true times."""

from __future__ import annotations

import logging

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_sensors import write_sequence

from camsim import transforms
from camsim.emulate.events import EventsConfig, emulate_events, read_events

NOISE_OFF = dict(threshold_sigma=0.0, refractory=0.0, cutoff_hz=0.0, leak_rate=0.0, shot_noise_rate=0.0)
SLOPES = np.array([3.0, 11.0, 25.0, 41.0, -3.0, -11.0, -25.0, -41.0])  # log units per second
T, FPS, THETA = 0.1, 100.0, 0.2


def _ramp(tmp_path, slopes=SLOPES, h=3, name="seq"):
    """Column j has I(t) = I0_j exp(s_j t) in DN (255 = white), far above the lin-log knee."""
    n = round(T * FPS) + 1
    times = np.arange(n) / FPS
    i0 = np.where(slopes > 0, 30.0, 30.0 * np.exp(np.abs(slopes) * T))
    frames = []
    for t in times:
        lum = (i0 * np.exp(slopes * t) / 255.0).astype(np.float32)
        frames.append(np.repeat(np.broadcast_to(lum, (h, len(slopes)))[..., None], 3, axis=2))
    return write_sequence(tmp_path / name, frames, times, png=False)


def test_emulate_events_ramp_gives_predicted_counts_and_crossing_times_within_1us(tmp_path, caplog):
    seq = _ramp(tmp_path)
    with caplog.at_level(logging.WARNING):
        out = emulate_events(
            seq, tmp_path / "out", EventsConfig(threshold_on=THETA, threshold_off=THETA, **NOISE_OFF)
        )
    ev = read_events(out)
    assert "frame rate too low" in caplog.text  # 41 log/s at 100 fps is 0.41 per frame > 0.2
    for x, s in enumerate(SLOPES):
        n_expected = int(np.floor(abs(s) * T / THETA))
        true_t = np.arange(1, n_expected + 1) * THETA / abs(s)
        for y in range(3):
            mine = ev[(ev[:, 1] == x) & (ev[:, 2] == y)]
            assert len(mine) == n_expected, (s, len(mine))
            assert np.all(mine[:, 3] == (1 if s > 0 else 0))
            assert np.abs(mine[:, 0] - true_t * 1e6).max() <= 1.0
    assert np.all(np.diff(ev[:, 0]) >= 0)  # globally time ordered
    meta = transforms.read(out)
    assert meta["events_file_path"] == "events.h5" and meta["event_count"] == len(ev)


def test_emulate_events_refractory_period_is_respected(tmp_path):
    seq = _ramp(tmp_path)
    refr = 0.01
    cfg = EventsConfig(threshold_on=THETA, threshold_off=THETA, **{**NOISE_OFF, "refractory": refr})
    ev = read_events(emulate_events(seq, tmp_path / "out", cfg))
    for x, s in enumerate(SLOPES):
        mine = ev[(ev[:, 1] == x) & (ev[:, 2] == 0)]
        assert np.all(np.diff(mine[:, 0]) >= refr * 1e6 - 1)
        if abs(s) * THETA > 0 and THETA / abs(s) < refr:  # fast pixels lose events to the refractory period
            assert len(mine) < int(np.floor(abs(s) * T / THETA))
            # firing resets to the present level, so one event per refractory period while it keeps rising
            assert abs(len(mine) - int(T / refr)) <= 1


@settings(max_examples=8, deadline=None)
@given(refr=st.floats(0.0005, 0.02), shot=st.floats(0.0, 200.0), seed=st.integers(0, 1000))
def test_emulate_events_refractory_holds_with_noise_on(tmp_path_factory, refr, shot, seed):
    tmp = tmp_path_factory.mktemp("ev")
    seq = _ramp(tmp, h=2)
    cfg = EventsConfig(refractory=refr, shot_noise_rate=shot, leak_rate=5.0, seed=seed)
    ev = read_events(emulate_events(seq, tmp / "out", cfg))
    key = ev[:, 2] * 1000 + ev[:, 1]
    order = np.lexsort((ev[:, 0], key))
    same = np.diff(key[order]) == 0
    gaps = np.diff(ev[order, 0])[same]
    assert np.all(gaps >= refr * 1e6 - 1)


def test_emulate_events_shot_noise_rate_on_a_static_scene(tmp_path):
    n, fps, rate = 51, 50.0, 20.0
    frame = np.full((20, 20, 3), 0.0, np.float32)  # dark: full shot-noise rate
    seq = write_sequence(tmp_path / "seq", [frame] * n, np.arange(n) / fps, png=False)
    cfg = EventsConfig(**{**NOISE_OFF, "shot_noise_rate": rate})
    ev = read_events(emulate_events(seq, tmp_path / "out", cfg))
    dur = (n - 1) / fps
    inten01 = 20.0 / 275.0
    lam = rate * (1 - 0.75 * inten01)
    p = -np.expm1(-lam / fps)
    expected = 400 * (n - 1) * p
    assert abs(len(ev) - expected) < 4 * np.sqrt(expected)
    assert dur > 0


def test_emulate_events_identical_for_any_batch_size_and_workers(tmp_path):
    seq = _ramp(tmp_path)
    a = read_events(
        emulate_events(seq, tmp_path / "a", EventsConfig(seed=2, batch_size=1, shot_noise_rate=50))
    )
    b = read_events(
        emulate_events(seq, tmp_path / "b", EventsConfig(seed=2, batch_size=4, shot_noise_rate=50), workers=2)
    )
    c = read_events(emulate_events(seq, tmp_path / "c", EventsConfig(seed=3, shot_noise_rate=50)))
    assert np.array_equal(a, b) and len(a) > 0
    assert not np.array_equal(a, c)


def test_emulate_events_writes_txt_npz_and_previews(tmp_path):
    seq = _ramp(tmp_path)
    cfg = EventsConfig(txt=True, npz=True, preview_window=0.05, **NOISE_OFF)
    out = emulate_events(seq, tmp_path / "out", cfg)
    ev = read_events(out)
    txt = np.loadtxt(out / "events.txt", dtype=np.int64, ndmin=2)
    assert np.array_equal(txt, ev)
    z = np.load(out / "events.npz")
    assert np.array_equal(z["t_us"], ev[:, 0]) and np.array_equal(z["p"], ev[:, 3])
    meta = transforms.read(out)
    assert len(meta["event_previews"]) == 2
    from camsim.fileio import read_image

    img = read_image(out / meta["event_previews"][0])
    assert img.shape == (3, len(SLOPES), 3) and img.any()
