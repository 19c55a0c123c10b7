"""Dask overhead per sequence: the same jobs through the local pool and a 2-worker local Dask cluster.

Both paths run the same `run_job` / `render_sequence` on warm Blender workers, 2 at a time, each
Blender with cores/2 render threads. Measured in one run, local pool first:

    python benchmarks/dask_overhead.py [--scenes 2] [--sequences 4] [--frames 3] [--size 64x48] [--samples 8]

Printed: wall time of each path, the Dask overhead per sequence (difference / sequences), and the
same after taking out the one-off cluster start and shared-folder probe (time from the first
`start` event to the end).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from camsim.blender.worker import WorkerOptions
from camsim.config import RenderConfig
from camsim.dask import DaskRunner
from camsim.jobs import Event, JobOutcome, SequenceJob
from camsim.local import LocalPool
from camsim.scenes import make_scenes


def plan(
    scenes: list[Path], out: Path, config: RenderConfig, per_scene: int, frames: int
) -> list[SequenceJob]:
    jobs = []
    for scene in scenes:
        for k in range(per_scene):
            first = 1 + k * (600 // per_scene)  # demo scenes span frames 1-600
            jobs.append(SequenceJob(scene, out / scene.stem / f"{first:06d}", config, first, first + frames - 1,
                                    scene.stem, f"{first:06d}"))  # fmt: skip
    return jobs


def timed(runner: LocalPool | DaskRunner, jobs: list[SequenceJob]) -> tuple[float, float, list[JobOutcome]]:
    first_start: list[float] = []

    def on_event(e: Event) -> None:
        if e.kind == "start" and not first_start:
            first_start.append(time.perf_counter())

    t0 = time.perf_counter()
    outcomes = runner.run(jobs, on_event).outcomes
    t1 = time.perf_counter()
    bad = [o for o in outcomes if o.status != "done"]
    if bad:
        raise SystemExit(f"{len(bad)} sequences failed: {bad[0].error}")
    return t1 - t0, t1 - (first_start[0] if first_start else t0), outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=4, help="sequences per scene")
    ap.add_argument("--frames", type=int, default=3, help="frames per sequence")
    ap.add_argument("--size", default="64x48")
    ap.add_argument("--samples", type=int, default=8)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="camsim-dask-bench-") as tmp:
        root = Path(tmp)
        scenes = make_scenes(root / "scenes", args.scenes, options=WorkerOptions(log_dir=root / "logs"))
        config = RenderConfig(width=w, height=h, max_samples=args.samples, adaptive_threshold=0.0,
                              use_denoising=False, device_type="cpu", jobs=2, log_dir=root / "logs",
                              threads=max(1, (os.cpu_count() or 2) // 2)).validate()  # fmt: skip
        n = args.scenes * args.sequences
        frames = n * args.frames
        local_jobs = plan(scenes, root / "local", config, args.sequences, args.frames)
        dask_jobs = plan(scenes, root / "dask", config, args.sequences, args.frames)

        t_local, t_local_run, _ = timed(LocalPool(config, 2), local_jobs)
        t_dask, t_dask_run, _ = timed(DaskRunner("local", config, datasets_dir=root / "dask"), dask_jobs)

    print(f"{n} sequences x {args.frames} frames at {w}x{h}, {args.samples} samples, 2 workers, "
          f"{config.threads} threads each, {os.cpu_count()} cores")  # fmt: skip
    print(f"local pool (jobs=2)        : {t_local:6.2f} s  {frames / t_local:6.2f} frames/s")
    print(f"Dask LocalCluster (2 x 1)  : {t_dask:6.2f} s  {frames / t_dask:6.2f} frames/s")
    print(f"ratio dask / local         : {t_dask / t_local:6.2f}x")
    print(
        f"Dask overhead per sequence : {(t_dask - t_local) / n:6.3f} s  (all in: cluster start, probe, tasks)"
    )
    print(
        f"  excluding cluster start  : {(t_dask_run - t_local_run) / n:6.3f} s  (first render start -> end)"
    )


if __name__ == "__main__":
    main()
