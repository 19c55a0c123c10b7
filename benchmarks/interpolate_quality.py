"""Interpolation vs rendering: quality against rendered truth, and cost against rendering the same frames.

For each demo scene: render frames A..A+N-1 at keyframe multiplier b and the same span at multiplier
b*m (m = --factor) with the same settings, interpolate the first by m, and compare every new frame with
the rendered frame of the same frame number (the renderer numbers frame f as f*m, as interpolation
does). Baseline: a linear-light cross-fade of the two neighbours. Cost: interpolation wall time vs
(render time at b*m) - (render time at b), i.e. rendering the same extra frames, measured in this run.
"motion" is the mean forward-flow length of the source frames in pixels per source frame.

    python benchmarks/interpolate_quality.py --scenes 3 --frames 9 --start 200 --base-multiplier 1
    python benchmarks/interpolate_quality.py --scenes 3 --frames 9 --start 50 --base-multiplier 0.25

--workdir DIR --reuse keeps the renders in DIR and re-runs only interpolation and comparison on a later
call (render times are stored in DIR/render_times.json and reported from there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from camsim import srgb, transforms
from camsim.config import RenderConfig
from camsim.fileio import read_exr, read_image
from camsim.interpolate import interpolate_sequence
from camsim.interpolate.metrics import psnr, ssim

CAMSIM = [sys.executable, "-m", "camsim"]


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=3, help="demo scenes (seeds 0..)")
    ap.add_argument("--frames", type=int, default=9, help="source frames per scene at multiplier 1")
    ap.add_argument("--start", type=int, default=200, help="first scene frame")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument(
        "--base-multiplier",
        type=float,
        default=1.0,
        help="keyframe multiplier of the source render (<1: faster motion)",
    )
    ap.add_argument("--width", type=int, default=160, help="pixels")
    ap.add_argument("--height", type=int, default=120, help="pixels")
    defaults = RenderConfig()
    ap.add_argument(
        "--samples",
        type=int,
        default=defaults.max_samples,
        help="Cycles max samples (denoising stays on; default: the renderer's)",
    )
    ap.add_argument(
        "--adaptive-threshold",
        type=float,
        default=defaults.adaptive_threshold,
        help="Cycles adaptive-sampling noise threshold (0: every pixel gets --samples)",
    )
    ap.add_argument("--bit-depth", type=int, default=8, choices=(8, 16), help="PNG bits per channel")
    ap.add_argument("--workers", type=int, default=0,
                    help="interpolation processes (0: one per core, as the render uses every core)")  # fmt: skip
    ap.add_argument("--workdir", type=Path, default=None, help="keep scenes, renders and results here")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: skip scenes and renders already there (same settings assumed), re-run interpolation",
    )
    args = ap.parse_args()
    if args.reuse and args.workdir is None:
        sys.exit("--reuse needs --workdir")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="camsim-interp-bench-"))
    m, bm = args.factor, args.base_multiplier
    times_file = work / "render_times.json"
    render_times = json.loads(times_file.read_text()) if args.reuse and times_file.exists() else {}

    def render(out: Path, *cmd: str) -> float:
        """Render into `out` (or reuse it) and return the render wall time."""
        key = str(out.relative_to(work))
        if args.reuse and (out / "transforms.json").exists() and key in render_times:
            return render_times[key]
        render_times[key] = _run([*cmd])
        work.mkdir(parents=True, exist_ok=True)
        times_file.write_text(json.dumps(render_times, indent=1))
        return render_times[key]

    scenes = [work / "scenes" / f"demo_{i:03d}.blend" for i in range(args.scenes)]
    if not (args.reuse and all(p.exists() for p in scenes)):
        _run([*CAMSIM, "make-scenes", str(work / "scenes"), "--count", str(args.scenes),
              "--log-dir", str(work / "logs")])  # fmt: skip
    common = [
        "--render-config.width", str(args.width), "--render-config.height", str(args.height),
        "--render-config.max-samples", str(args.samples), "--render-config.no-debug",
        "--render-config.bit-depth", str(args.bit_depth),
        "--render-config.adaptive-threshold", str(args.adaptive_threshold),
    ]  # fmt: skip
    rows = []
    for blend in scenes:
        name = blend.stem
        a, b = args.start, args.start + args.frames - 1
        t1 = render(work / name / "m1", *CAMSIM, "render-animation", str(blend), str(work / name / "m1"),
                    "--frame-start", str(a), "--frame-end", str(b), *common,
                    "--render-config.keyframe-multiplier", str(bm))  # fmt: skip
        tm = render(work / name / f"m{m}", *CAMSIM, "render-animation", str(blend), str(work / name / f"m{m}"),
                    "--frame-start", str(a * m), "--frame-end", str(b * m), *common,
                    "--render-config.keyframe-multiplier", str(bm * m))  # fmt: skip
        t0 = time.perf_counter()
        meta = interpolate_sequence(
            work / name / "m1", work / name / "interp", m, workers=args.workers, overwrite=True
        )
        ti = time.perf_counter() - t0
        truth_meta = transforms.read(work / name / f"m{m}")
        truth = {f["frame_number"]: f for f in truth_meta["frames"]}
        src = meta["frames"]
        ours, fade = [], []
        for j, fr in enumerate(src):
            if not fr["interpolated"]:
                continue
            ref = read_image(
                transforms.resolve_path(work / name / f"m{m}", truth[fr["frame_number"]]["file_path"])
            )
            img = read_image(transforms.resolve_path(work / name / "interp", fr["file_path"]))
            left = next(src[i] for i in range(j, -1, -1) if not src[i]["interpolated"])
            right = next(src[i] for i in range(j, len(src)) if not src[i]["interpolated"])
            s = (fr["time"] - left["time"]) / (right["time"] - left["time"])
            la = srgb.decode(read_image(work / name / "interp" / left["file_path"]))
            lb = srgb.decode(read_image(work / name / "interp" / right["file_path"]))
            cross = srgb.encode((1 - s) * la + s * lb, ref.dtype)
            peak = float(np.iinfo(ref.dtype).max)
            ours.append((psnr(img, ref, peak), ssim(img, ref, peak)))
            fade.append((psnr(cross, ref, peak), ssim(cross, ref, peak)))
        motion = np.mean(
            [
                np.hypot(
                    *read_exr(transforms.resolve_path(work / name / "m1", fr["flow_file_path"]), ("R", "G")).T
                ).mean()
                for fr in transforms.read(work / name / "m1")["frames"][:-1]
            ]
        )
        extra = (args.frames - 1) * (m - 1)
        o, f = np.mean(ours, axis=0), np.mean(fade, axis=0)
        holes = np.mean([fr["hole_fraction"] for fr in src if fr["interpolated"]])
        rows.append((name, motion, o[0], o[1], f[0], f[1], o[0] - f[0], holes, ti, tm - t1, extra))
        print(f"{name}: done", file=sys.stderr)

    print(f"\n{args.scenes} demo scenes, {args.frames} source frames from frame {args.start}, x{m}, "
          f"{args.width}x{args.height}, {args.samples} samples (adaptive threshold {args.adaptive_threshold:g}) + denoising, {args.bit_depth}-bit PNG, multipliers {bm:g} -> {bm * m:g}, interpolation workers={args.workers}\n")  # fmt: skip
    print("| scene | motion px/frame | interp PSNR | interp SSIM | cross-fade PSNR | cross-fade SSIM | gain dB "
          "| holes % | interp s | render extra s | cost ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, mo, op, os_, fp, fs, gain, holes, ti, tr, extra in rows:
        print(f"| {name} | {mo:.2f} | {op:.2f} | {os_:.4f} | {fp:.2f} | {fs:.4f} | {gain:+.2f} | {100 * holes:.2f} "
              f"| {ti:.2f} | {tr:.2f} ({extra} frames) | {ti / tr:.1%} |")  # fmt: skip
    arr = np.array([r[1:10] for r in rows], dtype=float)
    mean = arr.mean(axis=0)
    print(f"| **mean** | {mean[0]:.2f} | {mean[1]:.2f} | {mean[2]:.4f} | {mean[3]:.2f} | {mean[4]:.4f} | {mean[5]:+.2f} "
          f"| {100 * mean[6]:.2f} | {arr[:, 7].sum():.2f} | {arr[:, 8].sum():.2f} | {arr[:, 7].sum() / arr[:, 8].sum():.1%} |")  # fmt: skip
    print(f"\nworkdir: {work}")


if __name__ == "__main__":
    main()
