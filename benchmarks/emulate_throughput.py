"""Throughput (megapixels/s) of each sensor emulator, with the bare numpy RNG cost as the reference,
and peak traced memory for a short vs a 10x longer sequence.

Run: python benchmarks/emulate_throughput.py [--frames 60] [--size 256] [--mem-size 64]

Source: an in-memory drifting grating (benchmarks/moving_pattern.py), so the figures are the
emulators' own cost, not PNG/EXR decoding. Outputs are written to a temporary folder (SPAD: frames.npy;
RGB: 8-bit PNGs; events: events.h5; IMU: CSV). The reference draws exactly the random numbers each
emulator draws per pixel with numpy's Philox generator. Memory: tracemalloc peak (numpy allocations are
traced) of one run on 1,000 and on 10,000 frames of --mem-size pixels squared.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from moving_pattern import MovingPattern

from camsim.emulate import events, imu, rgb, spad
from camsim.emulate.common import rng


def _runners():
    return {
        "spad": lambda seq, out, cb=None: spad._run(seq, out, spad.SpadConfig(seed=1), cb),
        "rgb": lambda seq, out, cb=None: rgb._run(seq, out, rgb.RgbConfig(seed=1), cb),
        "events": lambda seq, out, cb=None: events._run(seq, out, events.EventsConfig(seed=1), cb),
        "imu": lambda seq, out, cb=None: imu._run(seq, out, imu.ImuConfig(seed=1, rate=1000.0), cb),
    }


def _reference(name: str, n: int, h: int, w: int, seq: MovingPattern) -> float:
    """Seconds to draw the same random numbers with numpy alone."""
    t = time.perf_counter()
    if name == "spad":
        for i in range(n):
            rng(1, "spad_frame", i).random((h, w, 1), dtype=np.float32)
    elif name == "rgb":
        lam = np.full((h, w), 500.0, np.float32)
        for i in range(n):
            g = rng(1, "rgb_frame", i)
            g.poisson(lam)
            g.poisson(np.full((h, w), 0.03, np.float32))
            g.standard_normal((h, w), dtype=np.float32)
    elif name == "events":
        for i in range(1, n):
            rng(1, "events_interval", i).random(h * w)
    elif name == "imu":
        samples = int((seq.times[-1] - seq.times[0]) * 1000.0) + 1
        for b in range(0, samples, imu.IMU_BLOCK):
            rng(1, "imu_block", b).standard_normal((imu.IMU_BLOCK, 12))
    return time.perf_counter() - t


def throughput(n: int, size: int) -> None:
    print(f"throughput: {n} frames of {size}x{size} (in-memory source), MP/s = frames*pixels/s")
    print(f"{'emulator':8} {'time s':>8} {'MP/s':>9} {'numpy RNG MP/s':>15} {'emulator/RNG':>13}")
    for name, run in _runners().items():
        seq = MovingPattern(n, size, size)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            run(seq, Path(tmp))
            dt = time.perf_counter() - t
        ref = _reference(name, n, size, size, seq)
        mp = n * size * size / 1e6
        if name == "imu":  # IMU cost is per sample, not per pixel: report samples
            samples = int((seq.times[-1] - seq.times[0]) * 1000.0) + 1
            print(
                f"{name:8} {dt:8.2f} {samples / dt / 1e6:9.3f} {samples / ref / 1e6:15.3f} {ref / dt:13.3f}"
                "   (M samples/s at 1 kHz)"
            )
        else:
            print(f"{name:8} {dt:8.2f} {mp / dt:9.2f} {mp / ref:15.2f} {ref / dt:13.3f}")


def memory(size: int) -> None:
    print(f"\npeak traced memory (tracemalloc, MB), {size}x{size} frames, in-memory source")
    print("stream = peak while frames are processed (pixel buffers + the growing per-frame pose list);")
    print("total = including the final transforms.json / params.json (one JSON entry per frame)")
    print(
        f"{'emulator':8} {'stream 1k':>10} {'stream 10k':>11} {'ratio':>6} {'total 1k':>9} {'total 10k':>10}"
    )
    for name, run in _runners().items():
        stream, total = [], []
        for n in (1000, 10000):
            seq = MovingPattern(n, size, size)
            seen = [0.0]

            def cb(_k: int, seen=seen) -> None:
                seen[0] = tracemalloc.get_traced_memory()[1] / 1e6

            with tempfile.TemporaryDirectory() as tmp:
                tracemalloc.start()
                run(seq, Path(tmp), cb)
                total.append(tracemalloc.get_traced_memory()[1] / 1e6)
                tracemalloc.stop()
            stream.append(seen[0])
        print(
            f"{name:8} {stream[0]:10.1f} {stream[1]:11.1f} {stream[1] / stream[0]:6.2f} {total[0]:9.1f} {total[1]:10.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--mem-size", type=int, default=64)
    ap.add_argument("--skip-memory", action="store_true")
    a = ap.parse_args()
    throughput(a.frames, a.size)
    if not a.skip_memory:
        memory(a.mem_size)


if __name__ == "__main__":
    main()
