"""Motion between taps: a vertical edge between a near and a far plane moves one pixel per source frame; each
tap sees the scene at its own time, so pixels the edge crosses during a frame's taps mix near and far taps and
decode to a depth that is neither. The prediction is built here independently of the emulator's model code:
from the tap times written in transforms.json, the edge's known position at each of them, and the tap model
written out by hand (sinusoid: a tap collects 1/2 + cos(phi - psi_k) / 4 of the returned light)."""

from __future__ import annotations

import json
import math

import numpy as np
from synthetic_active import pinhole_radial, write_active_sequence

from camsim.emulate.itof import ItofConfig, decode, emulate_itof, read_taps

H, W, FPS = 8, 24, 30.0
Z_NEAR, Z_FAR, RHO = 1.0, 3.0, 0.6
X0, SPEED = 6.0, 30.0  # edge column at t = 0 (pixel edges), pixels per second: 1 px per source frame
QE, FW = 0.4, 1e9


def edge_at(t: float) -> float:
    return X0 + SPEED * t


def near_side(t: float) -> np.ndarray:
    """HxW: pixel centres left of the edge at time t see the near plane."""
    cols = np.arange(W) + 0.5
    return np.broadcast_to(cols[None, :] < edge_at(t), (H, W))


def scene(i: int) -> dict[str, np.ndarray]:
    near = near_side(i / FPS)
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1
    return {"depth": np.where(near, Z_NEAR, Z_FAR).astype(np.float32),
            "albedo": np.full((H, W, 3), RHO, np.float32), "linear": np.zeros((H, W, 3), np.float32),
            "normal": normal}  # fmt: skip


def predicted_taps(meta: dict, cfg: ItofConfig, frame: int) -> np.ndarray:
    """(K, H, W) DN of output frame `frame` from its tap times and the edge's motion."""
    gain = (2**cfg.adc_bits - 1) / cfg.full_well
    f = cfg.frequencies[0] * 1e6
    out = []
    for k, t in enumerate(meta["frames"][frame]["tap_times"]):
        z = np.where(near_side(t), Z_NEAR, Z_FAR)
        d = pinhole_radial(H, W, 1.0) * z
        returned = cfg.source_power * RHO * (z / d) / d**2
        phi = 4 * math.pi * f * d / 299_792_458.0
        e = QE * returned * (0.5 + 0.25 * np.cos(phi - 2 * math.pi * k / cfg.taps))
        out.append(np.rint(np.minimum(e, cfg.full_well) * gain))
    return np.stack(out)


def test_moving_edge_mixes_taps_as_the_tap_times_predict(tmp_path):
    cfg = ItofConfig(noise=False, adc_bits=16, full_well=FW, qe=QE, ambient_scale=0.0,
                     source_power=0.7 * FW * Z_NEAR**2 / (QE * RHO))  # fmt: skip
    seq = write_active_sequence(tmp_path / "seq", scene, 12, H, W, fps=FPS)
    out = emulate_itof(seq, tmp_path / "out", cfg, workers=1)
    meta = json.loads((out / "transforms.json").read_text())
    taps = read_taps(out)
    assert taps.shape == (3, 4, H, W)
    for j in range(3):
        fr = meta["frames"][j]
        assert fr["tap_times"] == [
            (4 * j + k) / FPS for k in range(4)
        ]  # tap k of frame j: source frame 4j + k
        assert abs(fr["time"] - (4 * j + 1.5) / FPS) < 1e-12  # the middle of the taps
        want = predicted_taps(meta, cfg, j)
        assert np.abs(taps[j].astype(np.int64) - want).max() <= 1
        depth, _ = decode(taps[j], meta)
        assert np.abs(depth - decode(want, meta)[0]).max() < 1e-3
        # the artefact: the 3 columns the edge crosses during the taps decode to neither plane
        near_d, far_d = pinhole_radial(H, W, Z_NEAR), pinhole_radial(H, W, Z_FAR)
        mixed = near_side(fr["tap_times"][0]) ^ near_side(fr["tap_times"][-1])
        assert mixed.sum() == 3 * H
        off = np.minimum(np.abs(depth - near_d), np.abs(depth - far_d))
        assert off[mixed].min() > 0.05
        assert off[~mixed].max() < 1e-3
