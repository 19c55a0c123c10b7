"""Bytes per frame of each ground-truth kind per EXR codec and precision, what each loses, and Cycles' own noise.

Two demo scenes, FRAMES frames each, SIZE x SIZE, camsim's default samples (128, adaptive 0.05), every
ground truth plus linear, albedo and scene flow, rendered by camsim losslessly (float32, ZIP): the exact
arrays. Each kind's arrays are then written again (camsim.encoding, fileio.write_exr) with every lossless
codec the installed OpenEXR has, and at the other precisions (normals as half floats, flow on grids of
1/N px), and read back: bytes per frame, and the max and 99th-percentile absolute error against the exact
arrays. The same frames rendered with another Cycles seed give the renderer's own sampling noise per kind
(|seed 0 - seed 1| over the surface pixels' components; the RMS of one render's noise is that RMS / sqrt 2).
Last: camsim's default encodings against today's float32-ZIP baseline, per kind and in total, and whether
`auto`'s table (camsim.encoding.AUTO) picks the smallest codec of every kind.

    python benchmarks/exr_bytes.py [--sizes 128 512] [--frames 2] [--samples 128]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import demo_scenes

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.encoding import AUTO, AUTO_CHOICES, CODECS, Encoding, codec_available, encoding_of, lossless
from camsim.fileio import read_exr, write_exr
from camsim.jobs import SequenceJob
from camsim.passes import BY_FLAG, FLOW, NORMAL, Pass
from camsim.render import render_sequence

FLAGS = ("depths", "normals", "flows", "segmentations", "scene_flows", "linear", "albedo")
DEFAULT_FLAGS = ("depths", "normals", "flows", "segmentations")
GRIDS = (64, 256, 1024, 2048, 4096)


def reseed(src: str, dst: str, seed: int) -> None:
    """Save a copy of a scene with another Cycles seed (runs with bpy, in a child process)."""
    import bpy

    bpy.ops.wm.open_mainfile(filepath=src, load_ui=False, use_scripts=False)
    for sc in bpy.data.scenes:
        sc.cycles.seed = seed
    bpy.ops.wm.save_as_mainfile(filepath=dst, copy=True)


def render(scenes: list[Path], out: Path, size: int, frames: int, samples: int, logs: Path) -> None:
    config = RenderConfig(width=size, height=size, max_samples=samples, device_type="cpu", log_dir=logs,
                          exr_codec="zip", flow_grid=0, normal_precision="float32", linear=True, albedo=True,
                          scene_flows=True, debug=False, annotations=False)  # fmt: skip
    with BlenderWorker(WorkerOptions(log_dir=logs, name="bytes")) as worker:
        for i, scene in enumerate(scenes):
            job = SequenceJob(scene=scene, output=out / f"seq{i}", settings=config, frame_start=290,
                              frame_end=289 + frames)  # fmt: skip
            render_sequence(worker, job)


def exact_arrays(root: Path, kind: Pass) -> list[np.ndarray]:
    return [read_exr(p, kind.channels) for p in sorted(root.glob(f"seq*/{kind.folder}/*.exr"))]


def encoded(kind: Pass, arrays: list[np.ndarray], enc: Encoding, tmp: Path) -> tuple[float, float, float]:
    """Mean bytes per frame, max and 99th-percentile absolute error of `arrays` written with `enc`."""
    sizes, errors = [], []
    for arr in arrays:
        path = tmp / "x.exr"
        write_exr(path, enc.channels(kind, arr), enc.codec)
        sizes.append(path.stat().st_size)
        back = read_exr(path, kind.channels).astype(np.float64)
        exact = arr.astype(np.float64)
        finite = np.isfinite(exact)
        assert np.array_equal(np.isfinite(back), finite) and np.array_equal(back[~finite], exact[~finite],
                                                                            equal_nan=True)  # fmt: skip
        errors.append(np.abs(back[finite] - exact[finite]).ravel())
    err = np.concatenate(errors)
    return (
        float(np.mean(sizes)),
        float(err.max(initial=0.0)),
        float(np.percentile(err, 99)) if err.size else 0.0,
    )


def noise(kind: Pass, a: list[np.ndarray], b: list[np.ndarray], depths: list[np.ndarray]) -> str:
    diffs = []
    for x, y, z in zip(a, b, depths, strict=True):
        surface = np.isfinite(z)
        with np.errstate(invalid="ignore"):  # inf - inf: background depth, skipped below
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))[surface]
        diffs.append(d[np.isfinite(d)].ravel())
    d = np.concatenate(diffs)
    p50, p90, p99 = np.percentile(d, [50, 90, 99])
    rms = float(np.sqrt(np.mean(d**2)))
    return (f"|seed0 - seed1| p50 {p50:.3g}  p90 {p90:.3g}  p99 {p99:.3g}  RMS {rms:.3g} (one render's RMS "
            f"{rms / np.sqrt(2):.3g})  exactly equal {np.mean(d == 0):.1%}")  # fmt: skip


def variants(kind: Pass) -> list[Encoding]:
    codecs = [c for c in CODECS if codec_available(c) and c != "none"]
    base = lossless(kind)
    out = [Encoding(c, base.precision) for c in codecs]
    if kind is NORMAL:
        out += [Encoding(c, "half") for c in codecs]
    if kind is FLOW:
        out += [Encoding(c, "float32", 1.0 / n) for n in GRIDS for c in ("zip", "zstd", "piz") if c in codecs]
    return out


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--reseed":
        reseed(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--samples", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    defaults = RenderConfig().settings
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        scenes = demo_scenes(tmp / "scenes", 2)
        other = []
        for s in scenes:
            dst = tmp / "seed1" / s.name
            dst.parent.mkdir(exist_ok=True)
            subprocess.run([sys.executable, __file__, "--reseed", str(s), str(dst), "1"], check=True,
                           capture_output=True)  # fmt: skip
            other.append(dst)
        for size in args.sizes:
            roots = [tmp / f"{size}-seed{k}" for k in (0, 1)]
            for root, sc in zip(roots, (scenes, other), strict=True):
                render(sc, root, size, args.frames, args.samples, tmp / "logs")
            print(f"\n{size}x{size}: {2 * args.frames} frames (2 demo scenes x {args.frames}), {args.samples} "
                  f"samples; bytes per frame (kB), error against the exact float32 arrays")  # fmt: skip
            depths = [exact_arrays(r, BY_FLAG["depths"]) for r in roots]
            base_total = default_total = 0.0
            for flag in FLAGS:
                kind = BY_FLAG[flag]
                exact = exact_arrays(roots[0], kind)
                print(
                    f"  {kind.name}: renderer noise {noise(kind, exact, exact_arrays(roots[1], kind), depths[0])}"
                )
                results = {enc: encoded(kind, exact, enc, tmp) for enc in variants(kind)}
                for enc, (size_b, mx, p99) in results.items():
                    print(f"    {enc.codec:6s} {enc.precision:8s} {'grid 1/' + str(round(1 / enc.grid)) if enc.grid else '':11s}"
                          f" {size_b / 1e3:9.1f} kB  max err {mx:.3g}  p99 {p99:.3g}  (bound {enc.max_abs_error:.3g})")  # fmt: skip
                for form in ("float32", "uint32", "half", "grid"):
                    mine = {e.codec: s for e, (s, _, _) in results.items()
                            if e.codec in AUTO_CHOICES and (e.precision if not e.grid else "grid") == form
                            and (not e.grid or e.grid == 1.0 / defaults.flow_grid)}  # fmt: skip
                    if mine:
                        best = min(mine, key=mine.__getitem__)
                        table = AUTO.get((kind.name, form), "zip")
                        print(f"    auto for {form}: smallest {best}; camsim.encoding.AUTO says {table}"
                              + ("" if best == table else "  <-- differs"))  # fmt: skip
                if flag in DEFAULT_FLAGS:
                    enc = encoding_of(kind, defaults)
                    base = results[Encoding("zip", lossless(kind).precision)][0]
                    size_b, mx, p99 = encoded(kind, exact, enc, tmp)
                    base_total, default_total = base_total + base, default_total + size_b
                    print(f"    DEFAULT {enc.to_json()}: {size_b / 1e3:.1f} kB vs float32 ZIP {base / 1e3:.1f} kB "
                          f"({size_b / base:.1%}); max err {mx:.3g}, p99 {p99:.3g}")  # fmt: skip
            print(f"  DEFAULT TOTAL (depth, normal, flow, segmentation): {default_total / 1e3:.1f} kB per frame vs "
                  f"float32 ZIP {base_total / 1e3:.1f} kB: {default_total / base_total:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
