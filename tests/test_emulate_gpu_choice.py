"""`--device` of the sensors with a GPU path: `cuda` without a GPU falls back to the numpy path with a warning
(the same bits as `cpu`), `auto` falls back quietly, and an unknown device is refused."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from synthetic_active import plane_frame, write_active_sequence

from camsim.emulate.itof import ItofConfig, emulate_itof
from camsim.emulate.rgb import RgbConfig, emulate_rgb
from camsim.emulate.spad import SpadConfig, emulate_spad
from camsim.errors import ConfigError

SENSORS = {"spad": (SpadConfig, emulate_spad, "frames.npy"), "rgb": (RgbConfig, emulate_rgb, "frames"),
           "itof": (ItofConfig, emulate_itof, "frames.npy")}  # fmt: skip


def _cuda_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _files(out, rel):
    path = out / rel
    return [path.read_bytes()] if path.is_file() else [p.read_bytes() for p in sorted(path.iterdir())]


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    return write_active_sequence(tmp_path_factory.mktemp("dev") / "seq", lambda i: plane_frame(10, 14, 1.5, 0.5, 0.4),
                                 8, 10, 14)  # fmt: skip


@pytest.mark.skipif(_cuda_present(), reason="this machine has a GPU: cuda does not fall back")
@pytest.mark.parametrize("sensor", list(SENSORS))
def test_cuda_without_a_gpu_falls_back_to_the_numpy_path_with_a_warning(seq, tmp_path, caplog, sensor):
    config, emulate, rel = SENSORS[sensor]
    cpu = emulate(seq, tmp_path / "cpu", config(seed=7))
    with caplog.at_level(logging.WARNING):
        cuda = emulate(seq, tmp_path / "cuda", config(seed=7, device="cuda"))
    assert "device cuda: " in caplog.text and "drawing on the CPU (numpy)" in caplog.text
    assert _files(cuda, rel) == _files(cpu, rel)
    assert json.loads((cuda / "params.json").read_text())["derived"]["device_used"] == "cpu (numpy)"
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
