"""`--device` of the sensors with a GPU path: `cuda` without a GPU falls back to the numpy path with a warning
(the same bits as `cpu`), `auto` falls back quietly, and an unknown device is refused."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from synthetic_active import plane_frame, write_active_sequence

from camsim.emulate.gpu import cuda_available
from camsim.emulate.itof import ItofConfig, emulate_itof
from camsim.emulate.rgb import RgbConfig, emulate_rgb
from camsim.emulate.spad import SpadConfig, emulate_spad
from camsim.errors import ConfigError

SENSORS = {"spad": (SpadConfig, emulate_spad, "frames.npy"), "rgb": (RgbConfig, emulate_rgb, "frames"),
           "itof": (ItofConfig, emulate_itof, "frames.npy")}  # fmt: skip


def _files(out, rel):
    path = out / rel
    return [path.read_bytes()] if path.is_file() else [p.read_bytes() for p in sorted(path.iterdir())]


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    return write_active_sequence(tmp_path_factory.mktemp("dev") / "seq", lambda i: plane_frame(10, 14, 1.5, 0.5, 0.4),
                                 8, 10, 14)  # fmt: skip


@pytest.mark.skipif(cuda_available(), reason="this machine has a GPU: cuda does not fall back")
@pytest.mark.parametrize("sensor", list(SENSORS))
def test_cuda_without_a_gpu_falls_back_to_the_numpy_path_with_a_warning(seq, tmp_path, caplog, sensor):
    config, emulate, rel = SENSORS[sensor]
    cpu = emulate(seq, tmp_path / "cpu", config(seed=7))
    with caplog.at_level(logging.WARNING):
        cuda = emulate(seq, tmp_path / "cuda", config(seed=7, device="cuda"))
    assert "device cuda: " in caplog.text and "drawing on the CPU (numpy)" in caplog.text
    assert _files(cuda, rel) == _files(cpu, rel)
    params = [json.loads((out / "params.json").read_text()) for out in (cpu, cuda)]
    assert params[1]["derived"]["device_used"] == "cpu (numpy)"
    # What ran is the numpy path: the same settings as cpu (a rerun may keep it), recorded as cpu.
    assert params[1]["config"]["device"] == "cpu" and params[1]["settings_hash"] == params[0]["settings_hash"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        emulate(seq, tmp_path / "auto", config(seed=7, device="auto"))
    assert not caplog.records  # auto: quietly on the CPU


@pytest.mark.parametrize("sensor", list(SENSORS))
def test_an_unknown_device_is_refused(sensor):
    with pytest.raises(ConfigError, match="device must be one of cpu, cuda, auto"):
        SENSORS[sensor][0](device="tpu").validate()  # type: ignore[arg-type]


def test_the_numpy_spad_frame_is_a_direct_exponential_comparison():
    """`cpu` keeps numpy's draws: one binary frame equals Exp(1) arrivals from the frame's stream < lambda."""
    from camsim.emulate.common import rng
    from camsim.emulate.spad import _binary_frame, _State

    rate = np.full((4, 5, 1), 0.8, np.float32)
    det = _binary_frame(SpadConfig(seed=9), rate, 1.0, 1.0, 3, _State())
    arrival = rng(9, "spad_frame", 3).standard_exponential((4, 5, 1), dtype=np.float32)
    assert np.array_equal(det, arrival < rate)


@pytest.mark.parametrize("sensor", list(SENSORS))
def test_the_settings_record_where_the_draws_run(monkeypatch, sensor):
    """`auto` and `cuda` are recorded as the device that draws: `cuda` where a GPU takes them (other bits than
    numpy's: other settings to a rerun), `cpu` where they fall back (the numpy path's bits)."""
    torch = pytest.importorskip("torch")
    from camsim.derive import settings_hash
    from camsim.emulate import gpu
    from camsim.emulate.common import settings

    config = SENSORS[sensor][0]
    cpu = settings(config(device="cpu"))
    monkeypatch.setattr(gpu, "choose", lambda requested: (None, "no GPU here"))
    assert settings(config(device="auto")) == settings(config(device="cuda")) == cpu
    monkeypatch.setattr(
        gpu, "choose", lambda requested: (None if requested == "cpu" else torch.device("cuda"), "")
    )
    on_gpu = settings(config(device="auto"))
    assert on_gpu["device"] == "cuda" and on_gpu == settings(config(device="cuda"))
    assert settings_hash(sensor, on_gpu) != settings_hash(sensor, cpu)
