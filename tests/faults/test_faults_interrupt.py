"""SIGINT (Ctrl-C) or SIGTERM to the main process mid-run: workers gone, nothing half-written, resumable."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from .conftest import assert_no_partial_files, finish_and_check, start_create_datasets

pytestmark = pytest.mark.blender


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_stops_cleanly_and_resumes(
    signum: int,
    scenes_dir: Path,
    reference_files: list[str],
    fault_dirs: tuple[Path, Path],
    fault_rng: random.Random,
) -> None:
    datasets, logs = fault_dirs
    run = start_create_datasets(scenes_dir, datasets, logs)
    run.wait_for_rendering()
    time.sleep(fault_rng.uniform(0.0, 0.4))
    os.kill(run.proc.pid, signum)
    code = run.wait()
    assert code in (0, 130), run.stderr[-3000:]  # 0: the signal came after the last frame
    assert "Traceback" not in run.stderr
    left = run.leftovers()
    assert not left, left
    assert_no_partial_files(datasets)
    finish_and_check(scenes_dir, datasets, logs, reference_files)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_planning_leaves_no_worker(
    signum: int, scenes_dir: Path, fault_dirs: tuple[Path, Path]
) -> None:
    datasets, logs = fault_dirs
    run = start_create_datasets(scenes_dir, datasets, logs)
    deadline = time.monotonic() + 60
    while not run.workers() and time.monotonic() < deadline and run.proc.poll() is None:
        time.sleep(0.01)
    os.kill(run.proc.pid, signum)
    code = run.wait()
    assert code in (0, 130), run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    left = run.leftovers()
    assert not left, left
    assert_no_partial_files(datasets)
