"""Frames per second of `camsim create-datasets` (jobs=1 and jobs=2, default threads) against the bare loops.

Same frames for all: two demo scenes, one 24-frame sequence each, SIZE x SIZE, 16 samples, every
ground truth (camsim's default encodings). The baselines (benchmarks/bare_bpy_loop.py) render with all
cores: the bare loop (render, PNG, 32-bit ZIP multilayer EXR per frame) and Blender's own animation loop
(`--animation`, what `blender -a` runs). create-datasets uses its default threads per worker; `--old-split`
adds jobs=2 with one thread per worker (the split camsim used before: cores / jobs). Whole commands are timed,
process start-up included; the best of `--repeats` runs is printed (other load on the machine only adds time),
with its CPU-seconds (children included).
Every row runs on this Python's bpy and, when one is found (`--executable`, else `blender` on PATH), on an
installed Blender (create-datasets with --render-config.executable).

    python benchmarks/dataset_throughput.py [--repeats 1] [--frames 24] [--sizes 128 512] [--samples 16]
        [--executable PATH|none] [--old-split]
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

from common import bare_cmd, cores, demo_scenes, installed_blender

from camsim.config import RenderConfig


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


def bare(specs: list[tuple[Path, int, int]], size: int, samples: int, tmp: Path, executable: Path | None,
         animation: bool) -> tuple[float, float]:  # fmt: skip
    out = Path(tempfile.mkdtemp(prefix="bare-", dir=tmp))
    return _timed(bare_cmd(out, specs, size, size, samples, cores(), executable, animation))


def create_datasets(
    scenes_dir: Path, frames: int, size: int, samples: int, jobs: int, tmp: Path, threads: int | None = None,
    executable: Path | None = None,
) -> tuple[float, float]:  # fmt: skip
    with tempfile.TemporaryDirectory(dir=tmp) as out:
        cmd = [sys.executable, "-m", "camsim", "create-datasets", f"--scenes-dir={scenes_dir}", f"--datasets-dir={out}",
               "--sequences-per-scene=1", f"--num-frames={frames}", f"--render-config.width={size}",
               f"--render-config.height={size}", f"--render-config.max-samples={samples}",
               "--render-config.device-type=cpu", f"--render-config.jobs={jobs}",
               f"--render-config.log-dir={tmp / 'logs'}"]  # fmt: skip
        if threads:
            cmd.append(f"--render-config.threads={threads}")
        if executable:
            cmd.append(f"--render-config.executable={executable}")
        return _timed(cmd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--executable", default=None, help="an installed Blender; `none`: bpy only")
    parser.add_argument("--old-split", action="store_true", help="add jobs=2 with 1 thread per worker")
    args = parser.parse_args()
    blender = installed_blender(args.executable)
    blenders: list[tuple[str, Path | None]] = [("bpy", None)] + ([(str(blender), blender)] if blender else [])
    if blender is None:
        print("no installed Blender (none on PATH, none given): bpy only")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        scenes = demo_scenes(tmp_path / "scenes", 2, blender)  # read by every Blender measured
        # create-datasets with one sequence of F frames per scene places it in the middle of 1..600.
        first = 1 + (600 - args.frames) // 2
        specs = [(s, first, first + args.frames - 1) for s in scenes]
        total = len(specs) * args.frames
        d = tmp_path / "scenes"
        for label, exe in blenders:
            for size in args.sizes:
                rows: dict[str, Callable[[], tuple[float, float]]] = {
                    f"bare loop ({cores()} threads)": lambda size=size, exe=exe: bare(specs, size, args.samples, tmp_path, exe, False),
                    f"blender -a loop ({cores()} threads)": lambda size=size, exe=exe: bare(specs, size, args.samples, tmp_path, exe, True),
                    "create-datasets jobs=1": lambda size=size, exe=exe: create_datasets(
                        d, args.frames, size, args.samples, 1, tmp_path, executable=exe),
                    "create-datasets jobs=2": lambda size=size, exe=exe: create_datasets(
                        d, args.frames, size, args.samples, 2, tmp_path, executable=exe),
                }  # fmt: skip
                if args.old_split:
                    rows["jobs=2, 1 thread each (old)"] = lambda size=size, exe=exe: create_datasets(
                        d, args.frames, size, args.samples, 2, tmp_path, threads=1, executable=exe
                    )
                runs: dict[str, list[tuple[float, float]]] = {k: [] for k in rows}
                for _ in range(args.repeats):
                    for name, fn in rows.items():
                        runs[name].append(fn())
                best = {k: min(v) for k, v in runs.items()}  # the best run: other load only adds time
                names = list(best)
                base, anim = best[names[0]][0], best[names[1]][0]
                print(f"{label}: {total} frames ({len(specs)} demo scenes x {args.frames}), {size}x{size}, "
                      f"{args.samples} samples, {cores()} cores, every ground truth, default threads per worker: "
                      f"jobs=1 {RenderConfig().threads_for(1)}, jobs=2 {RenderConfig().threads_for(2)}")  # fmt: skip
                for name, (t, cpu) in best.items():
                    print(f"  {name:<34} {t:7.2f} s  {total / t:6.2f} frames/s  {cpu:7.1f} CPU-s  "
                          f"time ratio vs bare {t / base:.3f}  vs -a {t / anim:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
