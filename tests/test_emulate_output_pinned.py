"""Emulator outputs pinned to the byte: speed work must not change a single output bit.

Each case runs an emulator on a small synthetic sequence (a drifting grating with a dark corner, a bright
patch and a fast edge, so every code path fires) and compares a SHA-256 of its outputs with the value the
code gave before the issue 18 speed work. A deliberate model change updates the pinned hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from synthetic_sensors import write_sequence

from camsim.emulate.events import EventsConfig, emulate_events, read_events
from camsim.emulate.rgb import RgbConfig, emulate_rgb
from camsim.emulate.spad import SpadConfig, emulate_spad

H, W, N, FPS = 18, 21, 9, 60.0


def _frames() -> list[np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    out = []
    for i in range(N):
        v = 0.5 + 0.45 * np.sin(xx * 0.4 + yy * 0.25 + np.float32(0.6 * i))
        v[:4, :5] = 0.002 * (1 + i)  # dark corner (lin-log linear part, shot noise)
        v[-3:, -4:] = 1.3  # above white (saturation)
        v[:, (2 * i) % W] = 4.0 * (i % 2)  # fast edge (several crossings per interval)
        rgb = np.stack([v, v * 0.8 + 0.05, np.clip(1.0 - v, 0, None)], axis=2)
        out.append(rgb.astype(np.float32))
    return out


@pytest.fixture(scope="module")
def seq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sequence(tmp_path_factory.mktemp("pin") / "seq", _frames(), np.arange(N) / FPS, png=False)


def _digest(out: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode())
        h.update((out / rel).read_bytes())
    return h.hexdigest()[:16]


def _tree(out: Path, folder: str) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in (out / folder).rglob("*") if p.is_file())


SPAD = {
    "binary": (dict(seed=5, frames_per_input=3), "2072eaa7a78fc575"),
    "dead-after-cross": (
        dict(seed=7, frames_per_input=4, dead_time=1e-2, afterpulsing=0.1, crosstalk=0.05),
        "de5cd0c1e3ae4853",
    ),
    "colour-4bit": (dict(seed=2, frames_per_input=5, color=True, bits=4, gate_time=1e-4), "f4c24258a3f4d0af"),
    "img-2bit": (dict(seed=3, frames_per_input=2, bits=2, mode="img"), "48218aabc19e4b00"),
}


@pytest.mark.parametrize("case", list(SPAD))
def test_emulate_spad_output_bytes_are_pinned(seq, tmp_path, case):
    kw, want = SPAD[case]
    out = emulate_spad(seq, tmp_path / "out", SpadConfig(batch_size=4, **kw), workers=1)
    files = ["frames.npy"] if kw.get("mode", "npy") == "npy" else _tree(out, "frames")
    assert _digest(out, files) == want


RGB = {
    "bayer": (dict(seed=4, chunk_size=2), "ecb405f49bae0a07"),
    "rolling-raw": (dict(seed=6, chunk_size=3, rolling_shutter=True, raw=True), "4f317a9eb279329f"),
    "no-bayer": (dict(seed=8, chunk_size=2, bayer=False, white_balance=(1.2, 1.0, 0.9)), "c34c6225c18534bb"),
    "noiseless": (dict(chunk_size=1, noise=False), "dc07aeef293779a6"),
}


@pytest.mark.parametrize("case", list(RGB))
def test_emulate_rgb_output_bytes_are_pinned(seq, tmp_path, case):
    kw, want = RGB[case]
    out = emulate_rgb(seq, tmp_path / "out", RgbConfig(batch_size=2, **kw), workers=1)
    files = _tree(out, "frames") + (_tree(out, "raw") if kw.get("raw") else [])
    assert _digest(out, files) == want


EVENTS = {
    "default": (dict(seed=1), "ed90f009fe0b52e4"),
    "busy": (
        dict(
            seed=9,
            threshold_on=0.05,
            threshold_off=0.07,
            refractory=1e-4,
            shot_noise_rate=40.0,
            leak_rate=5.0,
        ),
        "2dc2d1249cff0120",
    ),
    "no-lowpass-txt-previews": (
        dict(seed=3, cutoff_hz=0.0, refractory=0.0, txt=True, preview_window=0.05, threshold_sigma=0.0),
        "3eb25853ace341d5",
    ),
}


@pytest.mark.parametrize("case", list(EVENTS))
def test_emulate_events_output_bytes_are_pinned(seq, tmp_path, case):
    kw, want = EVENTS[case]
    out = emulate_events(seq, tmp_path / "out", EventsConfig(batch_size=3, **kw), workers=1)
    ev = read_events(out)
    assert len(ev) > 0
    h = hashlib.sha256(np.ascontiguousarray(ev, dtype="<i8").tobytes())
    files = (["events.txt"] if kw.get("txt") else []) + (
        _tree(out, "previews") if kw.get("preview_window") else []
    )
    h.update(_digest(out, files).encode())
    assert h.hexdigest()[:16] == want


def test_emulate_events_direct_chunk_writes_keep_the_pinned_events(seq, tmp_path, monkeypatch):
    """Small chunks so the background-compressed direct chunk writes (and the partial last chunk) are used."""
    from camsim.emulate import events

    monkeypatch.setattr(events, "_H5_CHUNK", 64)
    kw, want = EVENTS["busy"]
    out = emulate_events(seq, tmp_path / "out", EventsConfig(batch_size=3, **kw), workers=1)
    ev = read_events(out)
    assert len(ev) > 3 * 64 and len(ev) % 64
    h = hashlib.sha256(np.ascontiguousarray(ev, dtype="<i8").tobytes())
    h.update(_digest(out, []).encode())
    assert h.hexdigest()[:16] == want
