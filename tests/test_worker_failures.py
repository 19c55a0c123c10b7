"""A worker that dies or hangs gives a clear error naming its log and quoting its last lines."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
from conftest import FAST

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.errors import WorkerError, WorkerTimeout
from camsim.render import worker_settings

pytestmark = pytest.mark.blender


def test_dead_worker_error_names_log_and_quotes_it(build_scene, tmp_path):
    blend = build_scene("die", kind="point")
    worker = BlenderWorker(WorkerOptions(log_dir=tmp_path, name="doomed")).start()
    try:
        worker.open_scene(
            blend, worker_settings(FAST.replace(width=128, height=96, max_samples=1_000_000)), 1.0
        )
        pid = worker.pid
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(WorkerError) as err:
            worker.render_frame(1, tmp_path / "a.png", tmp_path / "a.exr", "PNG", 8)
    finally:
        worker.kill()
    msg = str(err.value)
    assert "signal 9" in msg and str(worker.log_path) in msg
    assert "last log lines:" in msg and "[camsim-service] connected" in msg
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_hung_worker_times_out_and_is_killed(build_scene, tmp_path):
    blend = build_scene("hang", kind="point")
    worker = BlenderWorker(WorkerOptions(log_dir=tmp_path, name="stuck", timeout=3)).start()
    pid = worker.pid
    try:
        worker.open_scene(blend, worker_settings(FAST.replace(width=32, height=24, max_samples=2)), 1.0)
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(WorkerTimeout) as err:
            worker.render_frame(1, tmp_path / "a.png", tmp_path / "a.exr", "PNG", 8)
        assert time.monotonic() - t0 < 10
    finally:
        worker.kill()
    assert "timed out after 3 s in render_frame" in str(err.value)
    assert str(worker.log_path) in str(err.value)
    assert not worker.alive
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
