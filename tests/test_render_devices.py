"""GPU backends are selectable and fall back to the CPU (with a warning in the worker log) when absent."""

from __future__ import annotations

import pytest
from conftest import FAST

from camsim import transforms
from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.render import SequenceJob, render_sequence

pytestmark = pytest.mark.blender


@pytest.mark.parametrize("device", ["optix", "cuda", "hip", "oneapi", "metal", "auto", "cpu"])
def test_device_choice_renders_and_records_the_device(build_scene, tmp_path, device):
    blend = build_scene("device", kind="point")
    with BlenderWorker(WorkerOptions(log_dir=tmp_path / "logs", name=f"dev-{device}")) as worker:
        render_sequence(worker, SequenceJob(blend, tmp_path / "out", FAST.replace(device_type=device), 1, 1))
        log_text = worker.log_path.read_text()
    meta = transforms.read(tmp_path / "out")
    has_gpu = meta["device"] != "CPU"
    assert meta["render"]["device_type"] == device
    if device == "cpu":
        assert meta["device"] == "CPU"
    elif not has_gpu and device != "auto":
        assert f"no {device.upper()} device found; falling back to the CPU" in log_text
