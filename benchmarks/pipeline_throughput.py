"""The whole pipeline in one `create-datasets` call against the separate commands run one after another.

Same sequences for all rows: SCENES demo scenes, one FRAMES-frame sequence each, SIZE x SIZE, SAMPLES
samples, every ground truth plus linear light; interpolation x FACTOR; spad, rgb, events and imu. The
baseline is what a user did before: `create-datasets` (render only), `camsim interpolate` over the renders,
then `camsim emulate SENSOR` over the interpolated sequences, four times. Rows:

- separate commands (the baseline: its wall seconds are 1.00)
- one create-datasets call with every stage (stages overlap with rendering)
- the same with --no-keep-interpolated (the emulators compute the interpolated frames themselves)

and the bytes written by each run (the interpolated sequences are what --no-keep-interpolated saves).

    python benchmarks/pipeline_throughput.py [--scenes 2] [--frames 8] [--size 96] [--samples 8] [--factor 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import demo_scenes

SENSORS = ("spad", "rgb", "events", "imu")


def camsim(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "camsim", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"camsim {' '.join(args)} failed:\n{proc.stderr[-2000:]}")


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--factor", type=int, default=4)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="camsim-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        demo_scenes(tmp / "scenes", a.scenes)
        common = [f"--scenes-dir={tmp / 'scenes'}", "--sequences-per-scene=1", f"--num-frames={a.frames}",
                  f"--render-config.width={a.size}", f"--render-config.height={a.size}",
                  f"--render-config.max-samples={a.samples}", "--render-config.adaptive-threshold=0",
                  "--render-config.no-use-denoising", "--render-config.linear",
                  f"--render-config.log-dir={tmp / 'logs'}"]  # fmt: skip
        stages = [f"--interpolate-factor={a.factor}", "--emulate", *SENSORS]

        def separate() -> None:
            out = tmp / "separate"
            camsim("create-datasets", f"--datasets-dir={out}", *common)
            camsim("interpolate", str(out / "renders"), str(out / "interpolated"), f"--factor={a.factor}")
            for sensor in SENSORS:
                camsim("emulate", sensor, str(out / "interpolated"), str(out / sensor))

        rows = [
            ("separate commands (baseline)", "separate", separate),
            ("create-datasets, every stage", "pipeline",
             lambda: camsim("create-datasets", f"--datasets-dir={tmp / 'pipeline'}", *common, *stages)),
            ("create-datasets, --no-keep-interpolated", "streamed",
             lambda: camsim("create-datasets", f"--datasets-dir={tmp / 'streamed'}", *common, *stages,
                            "--no-keep-interpolated")),
        ]  # fmt: skip
        results = [(label, timed(fn), size_of(tmp / folder)) for label, folder, fn in rows]
        base_t, base_b = results[0][1], results[0][2]
        print(f"{a.scenes} scenes x 1 sequence x {a.frames} frames, {a.size}x{a.size}, {a.samples} spp, "
              f"x{a.factor} interpolation, sensors {' '.join(SENSORS)}")  # fmt: skip
        print(f"{'run':<42} {'seconds':>8} {'ratio':>6} {'MB written':>11} {'ratio':>6}")
        for label, seconds, written in results:
            print(
                f"{label:<42} {seconds:8.1f} {seconds / base_t:6.2f} {written / 1e6:11.2f} {written / base_b:6.2f}"
            )
        interpolated = size_of(tmp / "pipeline" / "interpolated")
        print(f"interpolated sequences: {interpolated / 1e6:.2f} MB of {results[1][2] / 1e6:.2f} MB "
              f"({100 * interpolated / results[1][2]:.0f} %) are not written with --no-keep-interpolated")  # fmt: skip


if __name__ == "__main__":
    main()
