"""A worker that hangs (SIGSTOP) past --render-config.timeout is killed and its sequence retried."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from .conftest import assert_no_partial_files, file_list, finish_and_check, start_create_datasets

pytestmark = pytest.mark.blender


def _busiest(workers: list[psutil.Process], interval: float = 0.15) -> psutil.Process | None:
    """The worker that used the most CPU over `interval` (one that renders, not a Blender that planning
    left idle or is closing); None when none used any."""
    before = {}
    for w in workers:
        with contextlib.suppress(psutil.Error):
            before[w.pid] = sum(w.cpu_times()[:2])
    time.sleep(interval)
    best, most = None, 0.0
    for w in workers:
        with contextlib.suppress(psutil.Error):
            used = sum(w.cpu_times()[:2]) - before.get(w.pid, 0.0)
            if used > most:
                best, most = w, used
    return best


def test_stopped_worker_times_out_is_killed_and_the_run_completes(
    scenes_dir: Path, reference_files: list[str], fault_dirs: tuple[Path, Path]
) -> None:
    datasets, logs = fault_dirs
    run = start_create_datasets(scenes_dir, datasets, logs, "--render-config.timeout", "4")
    run.wait_for_rendering()
    victim = None
    while victim is None and run.proc.poll() is None:
        victim = _busiest(run.serving_workers())  # a rendering worker, not one planning left idle
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
