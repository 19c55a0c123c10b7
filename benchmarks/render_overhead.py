"""camsim's per-frame overhead against a bare bpy loop rendering and saving the same passes.

Two demo scenes, 24 frames each, 128x128, 16 samples, every ground truth. camsim: one warm worker
and `render_sequence` (what create-datasets runs per sequence), Blender start included. Bare: the
minimal bpy script in benchmarks/bare_bpy_loop.py, in a fresh process, Blender start included.
Runs alternate so both see the same machine load. Prints the ratio camsim / bare (target <= 1.10).
`--annotations` adds a camsim run without the per-object annotations (on by default) and prints what they
cost: camsim / camsim without annotations (target <= 1.05).

    python benchmarks/render_overhead.py [--repeats 3] [--frames 24] [--size 128] [--samples 16] [--annotations]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from common import bare_loop, cores, demo_scenes

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.jobs import SequenceJob
from camsim.render import render_sequence


def camsim_run(specs, size: int, samples: int, threads: int, logs: Path, annotations: bool = True) -> float:
    config = RenderConfig(width=size, height=size, max_samples=samples, device_type="cpu", threads=threads,
                          log_dir=logs, annotations=annotations)  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        with BlenderWorker(WorkerOptions(log_dir=logs, name="bench")) as worker:
            for i, (scene, a, b) in enumerate(specs):
                job = SequenceJob(
                    scene=scene, output=Path(out) / f"seq{i}", settings=config, frame_start=a, frame_end=b
                )
                render_sequence(worker, job, threads=threads)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--annotations", action="store_true", help="also time camsim without annotations")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threads = cores()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        scenes = demo_scenes(tmp_path / "scenes", 2)
        specs = [(s, 100, 100 + args.frames - 1) for s in scenes]
        frames = len(specs) * args.frames
        bare_runs, camsim_runs, plain_runs = [], [], []
        for _ in range(args.repeats):
            bare_runs.append(bare_loop(specs, args.size, args.size, args.samples, threads))
            camsim_runs.append(camsim_run(specs, args.size, args.samples, threads, tmp_path / "logs"))
            if args.annotations:
                plain_runs.append(
                    camsim_run(specs, args.size, args.samples, threads, tmp_path / "logs", False)
                )
    bare, cam = sorted(bare_runs)[len(bare_runs) // 2], sorted(camsim_runs)[len(camsim_runs) // 2]
    print(f"frames: {frames} ({len(specs)} demo scenes x {args.frames}), {args.size}x{args.size}, "
          f"{args.samples} samples, {threads} threads, every ground truth")  # fmt: skip
    print(
        f"bare bpy loop : median {bare:.2f} s  ({frames / bare:.2f} frames/s)  runs {[round(r, 2) for r in bare_runs]}"
    )
    print(
        f"camsim        : median {cam:.2f} s  ({frames / cam:.2f} frames/s)  runs {[round(r, 2) for r in camsim_runs]}"
    )
    print(f"ratio camsim / bare = {cam / bare:.3f}  (target <= 1.10)")
    if plain_runs:
        plain = sorted(plain_runs)[len(plain_runs) // 2]
        print(f"no annotations: median {plain:.2f} s  ({frames / plain:.2f} frames/s)  "
              f"runs {[round(r, 2) for r in plain_runs]}")  # fmt: skip
        print(f"ratio camsim / camsim without annotations = {cam / plain:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
