"""What real lenses cost (issue 16, item 5): render time with a distortion or a fisheye against the pinhole, the
extra field of view and pixels a distortion renders, and the host's resampling per frame.

One demo scene, `--frames` frames at `--size` (width; height 3/4 of it), 16 samples, every ground truth but
the annotations (refused with a lens), one warm worker: the pinhole, three distortions and two fisheyes of
`--fov` degrees, runs alternating. The resampling runs on the host thread that writes the ground truth while
Blender renders the next frame; it is timed here on its own (`lens_remap.remap_frame` and the RGB frame) on
arrays of the real window. Wall times are medians and minima over the repeats (the minimum is the least
disturbed by other work on the machine).

    python benchmarks/lens_render.py [--repeats 3] [--frames 12] [--size 256] [--samples 16] [--fov 180]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import cores, demo_scenes

from camsim import transforms
from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.jobs import SequenceJob
from camsim.lens_remap import SequenceLens, remap_bilinear, remap_frame
from camsim.passes import DEPTH, FLOW, LINEAR, NORMAL, SEGMENTATION
from camsim.render import render_sequence

DISTORTIONS = {
    "barrel": (-0.25, 0.06, 0.0, 0.0, 0.0),
    "pincushion": (0.2, 0.04, 0.0, 0.0, 0.0),
    "tangential": (-0.1, 0.01, 0.0, 0.01, -0.008),
}


def settings(name: str, size: int, samples: int, threads: int, fov: float, logs: Path) -> RenderConfig:
    base = RenderConfig(width=size, height=size * 3 // 4, max_samples=samples, device_type="cpu", threads=threads,
                        log_dir=logs, annotations=False, linear=True)  # fmt: skip
    if name in DISTORTIONS:
        return base.replace(distortion=DISTORTIONS[name])
    if name.startswith("fisheye"):
        return base.replace(lens=name, fisheye_fov=fov)
    return base


def remap_seconds(meta: dict, config: RenderConfig, repeats: int = 5) -> tuple[float, float]:
    """(seconds to plan a frame's remap, seconds to resample one frame: every pass and the RGB frame)."""
    frames = [fr["frame_number"] for fr in meta["frames"]]
    cams = {}
    for i, f in enumerate(frames):
        cam = transforms.camera_of(meta, i)
        state = {"fl_x": cam.fl_x, "fl_y": cam.fl_y, "cx": cam.cx, "cy": cam.cy, "w": cam.w, "h": cam.h,
                 "transform_matrix": meta["frames"][i]["transform_matrix"]}  # fmt: skip
        cams[f] = state
    cams[frames[0] - 1], cams[frames[-1] + 1] = cams[frames[0]], cams[frames[-1]]
    seq = SequenceLens.plan(config, cams, frames)
    assert seq is not None and seq.window is not None
    t0 = time.perf_counter()
    lens = seq.frame(cams, frames[0])
    plan = time.perf_counter() - t0
    win = seq.window
    rng = np.random.default_rng(0)
    shape = (win.height, win.width)
    arrays = {
        DEPTH: rng.uniform(1, 10, shape).astype(np.float32),
        NORMAL: rng.normal(size=(*shape, 3)).astype(np.float32),
        FLOW: rng.normal(size=(*shape, 4)).astype(np.float32),
        SEGMENTATION: rng.integers(0, 20, shape).astype(np.uint32),
        LINEAR: rng.uniform(0, 1, (*shape, 3)).astype(np.float32),
    }
    rgb = rng.integers(0, 255, (*shape, 3)).astype(np.uint8)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        remap_frame(arrays, arrays[DEPTH], lens)
        remap_bilinear(rgb, lens.remap)
        runs.append(time.perf_counter() - t0)
    return plan, statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--fov", type=float, default=180.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threads = cores()
    names = ["pinhole", *DISTORTIONS, "fisheye-equidistant", "fisheye-equisolid"]
    runs: dict[str, list[float]] = {n: [] for n in names}
    metas: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        scene = demo_scenes(tmp_path / "scenes", 1)[0]
        with BlenderWorker(WorkerOptions(log_dir=tmp_path / "logs", name="bench")) as worker:
            for r in range(args.repeats):
                for name in names:
                    config = settings(name, args.size, args.samples, threads, args.fov, tmp_path / "logs")
                    out = tmp_path / f"{name}-{r}"
                    job = SequenceJob(scene=scene, output=out, settings=config, frame_start=100,
                                      frame_end=100 + args.frames - 1)  # fmt: skip
                    t0 = time.perf_counter()
                    render_sequence(worker, job, threads=threads)
                    runs[name].append(time.perf_counter() - t0)
                    metas[name] = transforms.read(out)
        base, base_min = statistics.median(runs["pinhole"]), min(runs["pinhole"])
        h = args.size * 3 // 4
        print(f"{args.frames} frames of a demo scene, {args.size}x{h}, {args.samples} samples, {threads} threads, "
              f"every ground truth but annotations, linear on")  # fmt: skip
        print("| lens | median wall (s) | vs pinhole | fastest (s) | vs pinhole | pixels rendered / output | "
              "field of view (h x v, deg) | remap plan (ms) | remap per frame (ms) |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
        for name in names:
            wall = statistics.median(runs[name])
            meta = metas[name]
            win = meta.get("render_window")
            if win:
                ratio = f"{win['pixels_rendered_per_output_pixel']:.3f}"
                fov = (f"{win['pinhole_fov_degrees'][0]:.1f} x {win['pinhole_fov_degrees'][1]:.1f} -> "
                       f"{win['rendered_fov_degrees'][0]:.1f} x {win['rendered_fov_degrees'][1]:.1f}")  # fmt: skip
                plan, per_frame = remap_seconds(meta, settings(name, args.size, args.samples, threads, args.fov,
                                                               tmp_path / "logs"))  # fmt: skip
                remap = (f"{plan * 1e3:.0f}", f"{per_frame * 1e3:.1f}")
            else:
                ratio, fov, remap = (
                    "1",
                    (f"{args.fov:g} circle" if name.startswith("fisheye") else "-"),
                    ("-", "-"),
                )
            fastest = min(runs[name])
            print(f"| {name} | {wall:.2f} | {wall / base:.3f} | {fastest:.2f} | {fastest / base_min:.3f} | {ratio} "
                  f"| {fov} | {remap[0]} | {remap[1]} |")  # fmt: skip
        print("runs:", {n: [round(v, 2) for v in r] for n, r in runs.items()})


if __name__ == "__main__":
    main()
