"""Frames per second of `camsim create-datasets` (jobs=1 and jobs=2) against the bare bpy loop.

Same frames for all: two demo scenes, one 24-frame sequence each, 128x128, 16 samples, every
ground truth. The bare loop (benchmarks/bare_bpy_loop.py) renders with all cores; create-datasets
splits the cores among its workers. Whole commands are timed, process start-up included.

    python benchmarks/dataset_throughput.py [--repeats 1] [--frames 24] [--size 128] [--samples 16]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import bare_loop, cores, demo_scenes


def create_datasets(scenes_dir: Path, frames: int, size: int, samples: int, jobs: int, tmp: Path) -> float:
    with tempfile.TemporaryDirectory(dir=tmp) as out:
        cmd = [sys.executable, "-m", "camsim", "create-datasets", f"--scenes-dir={scenes_dir}", f"--datasets-dir={out}",
               "--sequences-per-scene=1", f"--num-frames={frames}", f"--render-config.width={size}",
               f"--render-config.height={size}", f"--render-config.max-samples={samples}",
               "--render-config.device-type=cpu", f"--render-config.jobs={jobs}",
               f"--render-config.log-dir={tmp / 'logs'}"]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        scenes = demo_scenes(tmp_path / "scenes", 2)
        # create-datasets with one sequence of F frames per scene places it in the middle of 1..600.
        first = 1 + (600 - args.frames) // 2
        specs = [(s, first, first + args.frames - 1) for s in scenes]
        total = len(specs) * args.frames
        runs: dict[str, list[float]] = {"bare loop (all cores)": [], "create-datasets jobs=1": [],
                                        "create-datasets jobs=2": []}  # fmt: skip
        for _ in range(args.repeats):
            runs["bare loop (all cores)"].append(
                bare_loop(specs, args.size, args.size, args.samples, cores())
            )
            for jobs in (1, 2):
                runs[f"create-datasets jobs={jobs}"].append(
                    create_datasets(tmp_path / "scenes", args.frames, args.size, args.samples, jobs, tmp_path)
                )
    med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    bare = med["bare loop (all cores)"]
    print(f"{total} frames ({len(specs)} demo scenes x {args.frames}), {args.size}x{args.size}, {args.samples} samples, "
          f"{cores()} cores, every ground truth")  # fmt: skip
    for name, t in med.items():
        print(f"{name:<24} {t:7.2f} s  {total / t:6.2f} frames/s  time ratio vs bare {t / bare:.3f}")


if __name__ == "__main__":
    main()
