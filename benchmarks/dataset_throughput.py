"""Frames per second of `camsim create-datasets` (jobs=1 and jobs=2, default threads) against the bare bpy loop.

Same frames for all: two demo scenes, one 24-frame sequence each, SIZE x SIZE, 16 samples, every
ground truth. The bare loop (benchmarks/bare_bpy_loop.py) renders with all cores; create-datasets
uses its default threads per worker. One more row runs jobs=2 with one thread per worker (the split
camsim used before: cores / jobs), and the CPU-seconds of each command (children included) show why
it lost. Whole commands are timed, process start-up included.

    python benchmarks/dataset_throughput.py [--repeats 1] [--frames 24] [--sizes 128 512] [--samples 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import HERE, cores, demo_scenes

from camsim.config import RenderConfig


def bare_loop_cmd(specs: list[tuple[Path, int, int]], size: int, samples: int, tmp: Path) -> list[str]:
    out = tempfile.mkdtemp(prefix="bare-", dir=tmp)
    return [sys.executable, str(HERE / "bare_bpy_loop.py"), out, str(size), str(size), str(samples), str(cores()),
            *(f"{p}:{a}:{b}" for p, a, b in specs)]  # fmt: skip


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU-seconds (user + system, waited-for children included) of a command."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = os.times()
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def create_datasets(
    scenes_dir: Path, frames: int, size: int, samples: int, jobs: int, tmp: Path, threads: int | None = None
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir=tmp) as out:
        cmd = [sys.executable, "-m", "camsim", "create-datasets", f"--scenes-dir={scenes_dir}", f"--datasets-dir={out}",
               "--sequences-per-scene=1", f"--num-frames={frames}", f"--render-config.width={size}",
               f"--render-config.height={size}", f"--render-config.max-samples={samples}",
               "--render-config.device-type=cpu", f"--render-config.jobs={jobs}",
               f"--render-config.log-dir={tmp / 'logs'}"]  # fmt: skip
        if threads:
            cmd.append(f"--render-config.threads={threads}")
        return _timed(cmd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        scenes = demo_scenes(tmp_path / "scenes", 2)
        # create-datasets with one sequence of F frames per scene places it in the middle of 1..600.
        first = 1 + (600 - args.frames) // 2
        specs = [(s, first, first + args.frames - 1) for s in scenes]
        total = len(specs) * args.frames
        for size in args.sizes:
            rows: dict[str, Callable[[], tuple[float, float]]] = {
                f"bare loop ({cores()} threads)": lambda size=size: _timed(bare_loop_cmd(specs, size, args.samples, tmp_path)),
                "create-datasets jobs=1": lambda size=size: create_datasets(
                    tmp_path / "scenes", args.frames, size, args.samples, 1, tmp_path),
                "create-datasets jobs=2": lambda size=size: create_datasets(
                    tmp_path / "scenes", args.frames, size, args.samples, 2, tmp_path),
                "jobs=2, 1 thread each (old)": lambda size=size: create_datasets(
                    tmp_path / "scenes", args.frames, size, args.samples, 2, tmp_path, threads=1),
            }  # fmt: skip
            runs: dict[str, list[tuple[float, float]]] = {k: [] for k in rows}
            for _ in range(args.repeats):
                for name, fn in rows.items():
                    runs[name].append(fn())
            med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
            bare = next(iter(med.values()))[0]
            print(f"{total} frames ({len(specs)} demo scenes x {args.frames}), {size}x{size}, {args.samples} samples, "
                  f"{cores()} cores, every ground truth, default threads per worker: "
                  f"jobs=1 {RenderConfig().threads_for(1)}, jobs=2 {RenderConfig().threads_for(2)}")  # fmt: skip
            for name, (t, cpu) in med.items():
                print(f"  {name:<30} {t:7.2f} s  {total / t:6.2f} frames/s  {cpu:7.1f} CPU-s  "
                      f"time ratio vs bare {t / bare:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
