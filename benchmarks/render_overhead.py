"""camsim's per-frame overhead against a bare loop rendering and saving the same passes.

Two demo scenes, one sequence of FRAMES frames each, SIZE x SIZE, 16 samples, every ground truth (camsim's
default encodings). camsim: `render_sequence` (what create-datasets runs per sequence) on JOBS warm workers
(threads), each with camsim's default render threads for that many jobs (`threads_for`), Blender start
included. Baselines, in a fresh process with every core, Blender start included: the bare loop
(benchmarks/bare_bpy_loop.py: render, save a PNG and a 32-bit ZIP multilayer EXR per frame) and Blender's
own animation loop (`--animation`: what `blender -a` runs, one multilayer EXR per frame). Rows alternate so
all see the same machine load; each runs on this Python's bpy and, when one is found (`--executable`, else
`blender` on PATH), on an installed Blender too. Prints the best run's wall time (other load on the
machine only adds time), its CPU-seconds (the processes and their Blender children) and camsim's time ratio to
each baseline (target <= 1.0).
`--annotations` adds a camsim run without the per-object annotations (on by default) and prints what they
cost: camsim / camsim without annotations (target <= 1.05).

    python benchmarks/render_overhead.py [--repeats 1] [--frames 24] [--sizes 128 512] [--samples 16]
        [--jobs 1 2] [--executable PATH|none] [--annotations]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import bare_cmd, cores, demo_scenes, installed_blender

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.jobs import SequenceJob
from camsim.render import render_sequence

Spec = tuple[Path, int, int]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU-seconds (this process and its waited-for children) of `fn()`."""
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, _cpu() - c0


def camsim_run(
    specs: list[Spec], size: int, samples: int, jobs: int, logs: Path, executable: Path | None,
    annotations: bool = True,
) -> None:  # fmt: skip
    """The sequences on `jobs` warm workers, each in its own thread, camsim's default threads per worker."""
    threads = RenderConfig(jobs=jobs).threads_for(jobs)
    config = RenderConfig(width=size, height=size, max_samples=samples, device_type="cpu", threads=threads,
                          log_dir=logs, annotations=annotations)  # fmt: skip
    errors: list[BaseException] = []
    with tempfile.TemporaryDirectory() as out:

        def work(mine: list[tuple[int, Spec]], k: int) -> None:
            try:
                options = WorkerOptions(executable=executable, log_dir=logs, name=f"bench{k}")
                with BlenderWorker(options) as worker:
                    for i, (scene, a, b) in mine:
                        job = SequenceJob(scene=scene, output=Path(out) / f"seq{i}", settings=config,
                                          frame_start=a, frame_end=b)  # fmt: skip
                        render_sequence(worker, job, threads=threads)
            except BaseException as exc:  # re-raised below, in the main thread
                errors.append(exc)

        shares = [[(i, s) for i, s in enumerate(specs) if i % jobs == k] for k in range(jobs)]
        pool = [threading.Thread(target=work, args=(mine, k)) for k, mine in enumerate(shares) if mine]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    if errors:
        raise errors[0]


def bare_run(specs: list[Spec], size: int, samples: int, executable: Path | None, animation: bool) -> None:
    with tempfile.TemporaryDirectory() as out:
        cmd = bare_cmd(Path(out), specs, size, size, samples, cores(), executable, animation)
        subprocess.run(cmd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--executable", default=None, help="an installed Blender; `none`: bpy only")
    parser.add_argument("--annotations", action="store_true", help="also time camsim without annotations")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    blender = installed_blender(args.executable)
    blenders: list[tuple[str, Path | None]] = [("bpy", None)] + ([(str(blender), blender)] if blender else [])
    if blender is None:
        print("no installed Blender (none on PATH, none given): bpy only")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        scenes = demo_scenes(tmp_path / "scenes", 2, blender)  # read by every Blender measured
        specs = [(s, 100, 100 + args.frames - 1) for s in scenes]
        frames = len(specs) * args.frames
        logs = tmp_path / "logs"
        for label, exe in blenders:
            for size in args.sizes:
                rows: dict[str, Callable[[], object]] = {
                    "bare loop": lambda size=size, exe=exe: bare_run(specs, size, args.samples, exe, False),
                    "blender -a loop": lambda size=size, exe=exe: bare_run(specs, size, args.samples, exe, True),
                    **{f"camsim jobs={j}": (lambda size=size, exe=exe, j=j: camsim_run(
                        specs, size, args.samples, j, logs, exe)) for j in args.jobs},
                }  # fmt: skip
                if args.annotations:
                    rows["camsim jobs=1, no annotations"] = lambda size=size, exe=exe: camsim_run(
                        specs, size, args.samples, 1, logs, exe, annotations=False
                    )
                runs: dict[str, list[tuple[float, float]]] = {k: [] for k in rows}
                for _ in range(args.repeats):
                    for name, fn in rows.items():
                        runs[name].append(timed(fn))
                best = {k: min(v) for k, v in runs.items()}  # the best run: other load only adds time
                bare, anim = best["bare loop"][0], best["blender -a loop"][0]
                print(f"{label}: {frames} frames ({len(specs)} demo scenes x {args.frames}), {size}x{size}, "
                      f"{args.samples} samples, {cores()} cores, every ground truth; camsim threads per worker: "
                      + ", ".join(f"jobs={j} {RenderConfig(jobs=j).threads_for(j)}" for j in args.jobs))  # fmt: skip
                for name, (t, cpu) in best.items():
                    print(f"  {name:<30} {t:7.2f} s  {frames / t:6.2f} frames/s  {cpu:7.1f} CPU-s  "
                          f"ratio vs bare {t / bare:.3f}  vs -a {t / anim:.3f}  "
                          f"runs {[round(r[0], 2) for r in runs[name]]}")  # fmt: skip
                if args.annotations:
                    plain = best["camsim jobs=1, no annotations"][0]
                    print(f"  ratio camsim / camsim without annotations = {best['camsim jobs=1'][0] / plain:.3f}"
                          "  (target <= 1.05)")  # fmt: skip


if __name__ == "__main__":
    main()
