"""Peak memory of the create-datasets host process (Blender workers and stage processes not counted) as the
number of sequences grows: `--dry-run` planning 100 and 1,000 sequences, and tiny runs of 20 and 200
sequences with an emulator stage. Flat means the host holds per-sequence state of a few kB, not frames.

    python benchmarks/host_memory.py [--scenes 10] [--small 10] [--large 100] [--run-small 2] [--run-large 20]

(sequences = scenes x sequences per scene; the demo scenes have 600 frames.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import demo_scenes


def peak_rss(args: list[str]) -> tuple[float, float]:
    """(peak RSS of the camsim process itself in MB, wall seconds), sampled every 20 ms."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "camsim", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    me = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, me.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0,):
        raise SystemExit(f"camsim {' '.join(args)} exited {proc.returncode}:\n{err[-2000:]}")
    return peak / 2**20, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--small", type=int, default=10, help="sequences per scene, small dry run")
    ap.add_argument("--large", type=int, default=100, help="sequences per scene, large dry run")
    ap.add_argument("--run-small", type=int, default=2, help="sequences per scene, small tiny run")
    ap.add_argument("--run-large", type=int, default=20, help="sequences per scene, large tiny run")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="camsim-memory-") as tmp_name:
        tmp = Path(tmp_name)
        demo_scenes(tmp / "scenes", a.scenes)
        base = [f"--scenes-dir={tmp / 'scenes'}", f"--render-config.log-dir={tmp / 'logs'}"]
        tiny = ["--num-frames=3", "--render-config.width=16", "--render-config.height=16",
                "--render-config.max-samples=1", "--render-config.adaptive-threshold=0",
                "--render-config.no-use-denoising", "--emulate", "imu"]  # fmt: skip
        rows = []
        for n in (a.small, a.large):
            mb, s = peak_rss(["create-datasets", *base, f"--datasets-dir={tmp / f'dry{n}'}", "--dry-run",
                              "--num-frames=2", f"--sequences-per-scene={n}"])  # fmt: skip
            rows.append((f"--dry-run, {n * a.scenes} sequences planned", mb, s))
        for n in (a.run_small, a.run_large):
            mb, s = peak_rss(["create-datasets", *base, f"--datasets-dir={tmp / f'run{n}'}",
                              f"--sequences-per-scene={n}", *tiny])  # fmt: skip
            rows.append((f"tiny run with imu, {n * a.scenes} sequences", mb, s))
        print(f"{'host process':<44} {'peak RSS MB':>12} {'seconds':>8}")
        for label, mb, s in rows:
            print(f"{label:<44} {mb:12.1f} {s:8.1f}")


if __name__ == "__main__":
    main()
