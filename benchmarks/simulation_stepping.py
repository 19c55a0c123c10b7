"""What stepping an unbaked simulation costs: the same 8 frames rendered from the start of a rigid-body
scene and from later in it, where the service first steps every frame from the cache's start.

64 active rigid-body cubes over a passive ground, 128x128, 16 samples, every ground truth, one warm worker.
Prints, per start frame, the wall time of the sequence, the frames stepped, the stepping seconds that
the service measured, the cost per stepped frame and the stepping's share of the sequence's wall time
(the frames differ in content, so their render times are not compared with each other).

    python benchmarks/simulation_stepping.py [--starts 1 101 201] [--frames 8] [--cubes 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from common import HERE, cores

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.jobs import SequenceJob
from camsim.render import render_sequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, nargs="+", default=[1, 101, 201])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--cubes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    threads = cores()
    config = RenderConfig(width=128, height=128, max_samples=16, device_type="cpu", threads=threads)
    with (
        tempfile.TemporaryDirectory() as tmp,
        BlenderWorker(WorkerOptions(log_dir=Path(tmp), name="bench")) as w,
    ):
        scene = Path(tmp) / "pile.blend"
        w.build_scene(
            HERE / "rigid_body_scene.py", scene, cubes=args.cubes, frames=max(args.starts) + args.frames + 1
        )
        rows = []
        for start in args.starts:
            walls, steps, step_s = [], 0, []
            for r in range(args.repeats):
                out = Path(tmp) / f"s{start}-{r}"
                t0 = time.perf_counter()
                render_sequence(w, SequenceJob(scene=scene, output=out, settings=config.replace(log_dir=Path(tmp)),
                                               frame_start=start, frame_end=start + args.frames - 1), threads=threads)  # fmt: skip
                walls.append(time.perf_counter() - t0)
                info = json.loads((out / "info.json").read_text())
                steps, step_s = info["simulation_steps"], [*step_s, info["simulation_seconds"]]
            rows.append((start, statistics.median(walls), steps, statistics.median(step_s)))
    print(
        f"{args.cubes} rigid-body cubes, {args.frames} frames per sequence, 128x128, 16 samples, {threads} threads"
    )
    for start, wall, steps, secs in rows:
        per = f"{1000 * secs / steps:.2f} ms/frame stepped" if steps else "-"
        print(f"start {start:4d}: {wall:6.2f} s  stepped {steps:4d} frames in {secs:5.2f} s  ({per})  "
              f"stepping / wall = {secs / wall:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
