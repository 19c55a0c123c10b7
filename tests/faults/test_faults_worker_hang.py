"""A worker that hangs (SIGSTOP) past --render-config.timeout is killed and its sequence retried."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from .conftest import assert_no_partial_files, file_list, finish_and_check, start_create_datasets

pytestmark = pytest.mark.blender


def test_stopped_worker_times_out_is_killed_and_the_run_completes(
    scenes_dir: Path, reference_files: list[str], fault_dirs: tuple[Path, Path]
) -> None:
    datasets, logs = fault_dirs
    run = start_create_datasets(scenes_dir, datasets, logs, "--render-config.timeout", "4")
    run.wait_for_rendering()
    victim = None
    while victim is None and run.proc.poll() is None:
        workers = run.serving_workers()
        victim = workers[0] if workers else None
        time.sleep(0.01)
    assert victim is not None, "no worker to stop"
    os.kill(victim.pid, signal.SIGSTOP)
    code = run.wait()
    assert code == 0, run.stderr[-3000:]
    assert "timed out after 4 s" in run.stdout + run.stderr
    assert not psutil.pid_exists(victim.pid) or psutil.Process(victim.pid).status() == psutil.STATUS_ZOMBIE
    left = run.leftovers()
    assert not left, left
    assert_no_partial_files(datasets)
    assert file_list(datasets) == reference_files
    finish_and_check(scenes_dir, datasets, logs, reference_files)
