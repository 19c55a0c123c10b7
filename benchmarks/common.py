"""Shared pieces of the benchmarks: demo scenes, the bare bpy baseline, timing helpers."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent


def demo_scenes(folder: Path, count: int) -> list[Path]:
    from camsim.blender.worker import WorkerOptions
    from camsim.scenes import make_scenes

    return make_scenes(
        folder, count, seed=0, options=WorkerOptions(log_dir=folder / "logs", name="bench-scenes")
    )


def bare_loop(
    specs: list[tuple[Path, int, int]], width: int, height: int, samples: int, threads: int
) -> float:
    """Wall time of the bare bpy loop in a fresh process, Blender start included."""
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, str(HERE / "bare_bpy_loop.py"), out, str(width), str(height), str(samples),
                str(threads), *(f"{p}:{a}:{b}" for p, a, b in specs)]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        return time.perf_counter() - t0


def median_of(fn: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    runs = [fn() for _ in range(repeats)]
    return statistics.median(runs), runs


def cores() -> int:
    return os.cpu_count() or 1
