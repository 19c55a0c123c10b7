"""GPU backends are selectable and fall back to the CPU (with a warning on the console and in the worker log)
when absent."""

from __future__ import annotations

import pytest
from conftest import FAST

from camsim import transforms
from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.jobs import SequenceJob
from camsim.render import render_sequence

pytestmark = pytest.mark.blender


@pytest.mark.parametrize("device", ["optix", "cuda", "hip", "oneapi", "metal", "auto", "cpu"])
def test_device_choice_renders_and_records_the_device(build_scene, tmp_path, device):
    blend = build_scene("device", kind="point")
    with BlenderWorker(WorkerOptions(log_dir=tmp_path / "logs", name=f"dev-{device}")) as worker:
        render_sequence(worker, SequenceJob(blend, tmp_path / "out", FAST.replace(device_type=device), 1, 1))
        log_text = worker.log_path.read_text()
    meta = transforms.read(tmp_path / "out")
    assert meta["render"]["device_type"] == device
    # What the choice changes: the device Cycles was set to, as Blender reports it ("CPU", or "BACKEND:names"
    # of the GPUs it enabled), which the host keeps on the worker and writes to transforms.json.
    chosen = meta["device"]
    assert worker.device == chosen
    backend = chosen.partition(":")[0]
    fell_back = f"no {device.upper()} device found; falling back to the CPU" in log_text
    if device == "cpu":
        assert chosen == "CPU" and "falling back" not in log_text
    elif device == "auto":  # the first GPU backend present, else the CPU, silently
        assert chosen == "CPU" or backend in ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI"), chosen
        assert "falling back" not in log_text
    else:  # that backend's GPUs, or the CPU with the warning: never another backend, never silently
        assert chosen == "CPU" or (backend == device.upper() and chosen != backend + ":"), chosen
        assert fell_back == (chosen == "CPU"), (chosen, log_text[-2000:])


def test_a_missing_gpu_is_a_console_warning(build_scene, tmp_path):
    import os
    import subprocess
    import sys

    blend = build_scene("device-console", kind="point")
    cmd = [sys.executable, "-m", "camsim", "render-animation", str(blend), str(tmp_path / "out"), "--frame-start=1",
           "--frame-end=1", "--render-config.width=16", "--render-config.height=12", "--render-config.max-samples=1",
           "--render-config.device-type=optix", f"--render-config.log-dir={tmp_path / 'logs'}"]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "CAMSIM_LOG": "INFO"}
    )
    assert proc.returncode == 0, proc.stderr
    chosen = transforms.read(tmp_path / "out")["device"]
    warned = "no OPTIX device found: rendering on the CPU" in " ".join(proc.stderr.split())
    assert chosen == "CPU" or chosen.startswith("OPTIX:"), chosen
    assert warned == (chosen == "CPU"), proc.stderr  # warned exactly when the GPU was missing
