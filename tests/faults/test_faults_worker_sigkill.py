"""SIGKILL of Blender workers at random moments: the run retries on fresh workers and the data stays sound."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import psutil
import pytest

from .conftest import assert_no_partial_files, finish_and_check, start_create_datasets

pytestmark = pytest.mark.blender


def test_sigkilled_workers_leave_no_process_no_partial_file_and_resume_completes(
    scenes_dir: Path, reference_files: list[str], fault_dirs: tuple[Path, Path], fault_rng: random.Random
) -> None:
    datasets, logs = fault_dirs
    rng = fault_rng
    run = start_create_datasets(scenes_dir, datasets, logs, "--max-retries", "4")
    run.wait_for_rendering()
    killed: list[int] = []
    while len(killed) < 3 and run.proc.poll() is None:
        workers = [w for w in run.workers() if w.pid not in killed]
        if not workers:
            time.sleep(0.02)
            continue
        time.sleep(rng.uniform(0.0, 0.15))
        victim = rng.choice(workers)
        try:
            os.kill(victim.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append(victim.pid)
    code = run.wait()
    assert len(killed) >= 3, f"the run ended after {len(killed)} kills: {run.stderr[-2000:]}"
    assert code in (0, 1), run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    left = run.leftovers()
    assert not left, left
    for pid in killed:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    assert_no_partial_files(datasets)
    finish_and_check(scenes_dir, datasets, logs, reference_files)
