"""Shared pieces of the benchmarks: demo scenes, the bare bpy baseline, timing helpers."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent


def demo_scenes(folder: Path, count: int, executable: Path | None = None) -> list[Path]:
    """`count` demo scenes, saved by bpy or by the installed Blender `executable`. A benchmark that also runs
    an older installed Blender builds them with it: newer Blenders open older files, not the reverse (a
    file saved by Blender 5 is "not a blend file" to Blender 3.4)."""
    from camsim.blender.worker import WorkerOptions
    from camsim.scenes import make_scenes

    options = WorkerOptions(executable=executable, log_dir=folder / "logs", name="bench-scenes")
    return make_scenes(folder, count, seed=0, options=options)


def bare_cmd(
    out: Path,
    specs: list[tuple[Path, int, int]],
    width: int,
    height: int,
    samples: int,
    threads: int,
    executable: Path | None = None,
    animation: bool = False,
) -> list[str]:
    """The bare loop's command line: with this Python's bpy, or with an installed Blender `executable`;
    `animation`: Blender's own animation loop (what `blender -a` runs)."""
    args = [*(["--animation"] if animation else []), str(out), str(width), str(height), str(samples), str(threads),
            *(f"{p}:{a}:{b}" for p, a, b in specs)]  # fmt: skip
    script = str(HERE / "bare_bpy_loop.py")
    if executable is None:
        return [sys.executable, script, *args]
    return [str(executable), "-b", "--factory-startup", "--python-exit-code", "1", "-P", script, "--", *args]


def bare_loop(
    specs: list[tuple[Path, int, int]],
    width: int,
    height: int,
    samples: int,
    threads: int,
    executable: Path | None = None,
    animation: bool = False,
) -> float:
    """Wall time of the bare loop in a fresh process, Blender start included."""
    with tempfile.TemporaryDirectory() as out:
        args = bare_cmd(Path(out), specs, width, height, samples, threads, executable, animation)
        t0 = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        return time.perf_counter() - t0


def installed_blender(given: str | None) -> Path | None:
    """The installed Blender to measure besides bpy: `given` ("none": skip), else `blender` on PATH."""
    if given == "none":
        return None
    found = given or shutil.which("blender")
    return Path(found) if found else None


def median_of(fn: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    runs = [fn() for _ in range(repeats)]
    return statistics.median(runs), runs


def cores() -> int:
    """The CPUs this process may use (affinity, cgroup quota, SLURM): what camsim sizes its threads by."""
    from camsim.cpus import available_cpus

    return available_cpus()
