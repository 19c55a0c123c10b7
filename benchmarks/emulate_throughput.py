"""Throughput (megapixels/s) of each sensor emulator, with the bare numpy RNG cost as the reference,
and peak traced memory for a short vs a 10x longer sequence.

Run: python benchmarks/emulate_throughput.py [--frames 60] [--size 256] [--mem-size 64] [--repeats 1]

Source: an in-memory drifting grating (benchmarks/moving_pattern.py; with depth, albedo and normals for iToF:
benchmarks/moving_scene.py), so the figures are the emulators' own cost, not PNG/EXR decoding. Outputs are
written to a temporary folder (SPAD: frames.npy; RGB: 8-bit PNGs; events: events.h5; IMU: CSV; iToF:
frames.npy; LiDAR: histograms.npy, points.npy). The reference draws exactly the random numbers each emulator
draws per pixel with numpy's Philox generator (iToF: one tap per input frame, a Poisson and a float32 normal per
pixel; LiDAR: per 4096-pixel block a binomial and a multinomial over the first-photon law's segments per
pixel, then a uniform and a normal per detection; `spad cuda`, `rgb cuda` and `itof cuda`, only where PyTorch sees a GPU:
`--device cuda` against the same draws made by PyTorch on the GPU). Memory: tracemalloc peak (numpy
allocations are traced) of one run on 1,000 and on 10,000 frames of --mem-size pixels squared.
The references include the one-time draws (SPAD dark-count map, RGB fixed pattern, event pixel array), and
RGB's Poissons use the emulator's own means. The source's reading time is measured inside each run
(`TimedScene`) and subtracted for the `own` columns; `own/RNG cpu` is the same ratio in process CPU time.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from moving_scene import MovingScene

from camsim.emulate import events, imu, itof, lidar, rgb, spad
from camsim.emulate.common import rng
from camsim.emulate.gpu import cuda_available
from camsim.emulate.light import photon_rate

LIDAR = {"seed": 1, "bins": 16}
"""LiDAR: the default config with 16 equi-width bins (the default 801 TDC bins write 105 MB a 256x256 frame)."""


def _lidar_runner(**kw):
    cfg = lidar.LidarConfig(**LIDAR, **kw)
    return lambda seq, out, cb=None: lidar._run(seq, out, cfg, cb)


def _lidar_laws(seq: MovingScene, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each pixel block's first-detection law in the emulator's run (flash, one frame per source frame), in
    order: the detection probability per cycle (P,) and the segment probabilities (P, S) its binomial and
    multinomial draws use."""
    from camsim.emulate.lidar_model import photon_model
    from camsim.emulate.lidar_transient import first_detection_law

    cfg = lidar.LidarConfig(**LIDAR)
    frames = lidar._Frames(seq, cfg)
    for i in range(n):
        f = frames[i]
        rho, alb, amb = (a.ravel().astype(np.float64) for a in (f.rho, f.albedo, f.ambient))
        for lo in range(0, len(rho), lidar.BLOCK):
            hi = lo + lidar.BLOCK
            yield first_detection_law(photon_model(cfg, rho[lo:hi], alb[lo:hi], amb[lo:hi]))


def _on_cuda(module, config):
    """A runner of `module` with `config(seed=1, device="cuda")`, synchronised at the end."""

    def run(seq, out, cb=None):
        import torch

        module._run(seq, out, config(seed=1, device="cuda"), cb)
        torch.cuda.synchronize()

    return run


def _runners():
    return {
        "spad": lambda seq, out, cb=None: spad._run(seq, out, spad.SpadConfig(seed=1), cb),
        **({"spad cuda": _on_cuda(spad, spad.SpadConfig)} if cuda_available() else {}),
        "rgb": lambda seq, out, cb=None: rgb._run(seq, out, rgb.RgbConfig(seed=1), cb),
        **({"rgb cuda": _on_cuda(rgb, rgb.RgbConfig)} if cuda_available() else {}),
        "events": lambda seq, out, cb=None: events._run(seq, out, events.EventsConfig(seed=1), cb),
        "imu": lambda seq, out, cb=None: imu._run(seq, out, imu.ImuConfig(seed=1, rate=1000.0), cb),
        "itof": lambda seq, out, cb=None: itof._run(seq, out, itof.ItofConfig(seed=1), cb),
        **({"itof cuda": _on_cuda(itof, itof.ItofConfig)} if cuda_available() else {}),
        "lidar": _lidar_runner(),
    }


def _reference(name: str, n: int, h: int, w: int, seq: MovingScene) -> float:
    """Seconds to draw the same random numbers with numpy alone (the `cuda` rows: with PyTorch on the GPU)."""
    t = time.perf_counter()
    if name == "spad cuda":  # an Exp(1) arrival per binary frame from the frame's re-seeded generator
        import torch

        from camsim.emulate.gpu import reseed

        g = torch.Generator(device="cuda")
        out = torch.empty((h, w, 1), device="cuda")
        for i in range(n):
            out.exponential_(generator=reseed(g, 1, "spad_frame", i))
        torch.cuda.synchronize()
    elif name == "rgb cuda":  # per frame: the photon and dark Poissons and the read-noise normals, on the GPU
        import torch

        from camsim.emulate.gpu import reseed

        cfg = rgb.RgbConfig(seed=1)
        means = rgb.fixed_pattern(cfg, (h, w))
        tu = time.perf_counter()
        photons = photon_rate(cfg.flux, cfg.flux_per, seq.fps) * seq.linear(0) / seq.fps
        lam = torch.from_numpy(cfg.qe * rgb.mosaic(photons) * means[0]).float().cuda()
        dark = torch.from_numpy(rgb.dark_mean(cfg, 1.0 / seq.fps, means)).float().cuda()
        t += time.perf_counter() - tu  # computing the means is not drawing
        g = torch.Generator(device="cuda")
        for i in range(n):
            reseed(g, 1, "rgb_frame", i)
            torch.poisson(lam, generator=g)
            torch.poisson(dark, generator=g)
            torch.randn((h, w), generator=g, device="cuda")
        torch.cuda.synchronize()
    elif (
        name == "itof cuda"
    ):  # per tap: a Poisson (lambda 130, as the numpy reference) and a normal, on the GPU
        import torch

        from camsim.emulate.gpu import reseed

        lam = torch.full((h, w), 130.0, device="cuda")
        g = torch.Generator(device="cuda")
        for i in range(n):
            reseed(g, 1, "itof_tap", i)
            torch.poisson(lam, generator=g)
            torch.randn((h, w), generator=g, device="cuda")
        torch.cuda.synchronize()
    elif name == "spad":
        # the dark-count map once (a normal and a uniform per pixel), an Exp(1) arrival per binary frame
        g = rng(1, "spad_dcr")
        g.standard_normal((h, w, 1))
        g.random((h, w, 1))
        for i in range(n):
            rng(1, "spad_frame", i).standard_exponential((h, w, 1), dtype=np.float32)
    elif name == "rgb":  # the fixed pattern once, then per frame the emulator's own Poisson means (frame 0's)
        cfg = rgb.RgbConfig(seed=1)
        t_exp = 1.0 / seq.fps
        means = rgb.fixed_pattern(cfg, (h, w))  # (inside the timing: its two normals per pixel are draws too)
        tu = time.perf_counter()
        photons = photon_rate(cfg.flux, cfg.flux_per, seq.fps) * t_exp * seq.linear(0)
        lam = cfg.qe * rgb.mosaic(photons) * means[0]
        dark = rgb.dark_mean(cfg, t_exp, means)
        t += time.perf_counter() - tu  # computing the means is not drawing
        for i in range(n):
            g = rng(1, "rgb_frame", i)
            g.poisson(lam)
            g.poisson(dark)
            g.standard_normal((h, w), dtype=np.float32)
    elif name in ("events", "events model"):
        # the pixel array once (3 normals, 1 uniform), a uniform per interval
        g = rng(1, "events_pixel")
        for _ in range(3):
            g.standard_normal(h * w)
        g.random(h * w)
        for i in range(1, n):
            rng(1, "events_interval", i).random(h * w)
    elif name == "imu":
        samples = int((seq.times[-1] - seq.times[0]) * 1000.0) + 1
        for b in range(0, samples, imu.IMU_BLOCK):
            rng(1, "imu_block", b).standard_normal((imu.IMU_BLOCK, 12))
    elif name == "itof":  # one tap per input frame: a Poisson per pixel, then a float32 normal (read noise)
        lam = np.full((h, w), 130.0)  # the mean tap of the default config on this scene: 131 e-
        for i in range(n):
            g = rng(1, "itof_tap", i)
            g.poisson(lam)
            g.standard_normal((h, w), dtype=np.float32)
    elif name == "lidar":  # per block: binomial + multinomial per pixel, uniform + normal per detection
        laws = _lidar_laws(seq, n)  # the emulator's own: computing them is not drawing (not timed)
        for idx in itertools.count():
            tu = time.perf_counter()
            p, q = next(laws, (None, None))
            t += time.perf_counter() - tu
            if p is None:
                break
            g = rng(1, "lidar_block", idx)
            d = g.binomial(lidar.LidarConfig().cycles, p)
            g.multinomial(d, q)
            g.random(int(d.sum()))
            g.standard_normal(int(d.sum()))
    return time.perf_counter() - t


class TimedScene(MovingScene):
    """MovingScene adding up the seconds its frame readers take in a run: the source's cost, subtracted for the
    `own` columns (what an emulator reads, counted where it reads it: auto-exposure's extra frames too)."""

    source_s = 0.0
    source_cpu_s = 0.0

    def _timed(self, read, i: int) -> np.ndarray:
        t, c = time.perf_counter(), time.process_time()
        value = read(i)
        self.source_s += time.perf_counter() - t
        self.source_cpu_s += time.process_time() - c
        return value

    def linear(self, i: int) -> np.ndarray:
        return self._timed(super().linear, i)

    def depth(self, i: int) -> np.ndarray:
        return self._timed(super().depth, i)

    def albedo(self, i: int) -> np.ndarray:
        return self._timed(super().albedo, i)

    def normal(self, i: int) -> np.ndarray:
        return self._timed(super().normal, i)


def _events_model(seq: MovingScene, out: Path, cb=None) -> None:
    """The events pixel model alone: `PixelArray.step` over the sequence, no event writing."""
    pixels = events.PixelArray(events.EventsConfig(seed=1), seq.h, seq.w)
    pixels.start(seq.linear(0))
    for i in range(1, seq.n):
        pixels.step(seq.linear(i), float(seq.times[i - 1]), float(seq.times[i]), i)


def throughput(n: int, size: int, repeats: int) -> None:
    print(f"throughput: {n} frames of {size}x{size} (in-memory source), MP/s = frames*pixels/s")
    print(f"medians of {repeats} runs; own = time - source (the in-memory frames' reading, timed in the run)")
    print("cpu: the same ratio in process CPU time (all threads), steadier than wall time on a busy machine")
    print(
        f"{'emulator':12} {'time s':>7} {'source s':>8} {'own MP/s':>9} {'numpy RNG MP/s':>15} "
        f"{'emulator/RNG':>13} {'own/RNG':>8} {'own/RNG cpu':>11}"
    )
    runners = _runners()
    runners["events model"] = _events_model
    for name, run in runners.items():
        times, sources, refs, cpu_ratios = [], [], [], []
        for _ in range(repeats):
            seq = TimedScene(n, size, size)
            with tempfile.TemporaryDirectory() as tmp:
                t, c = time.perf_counter(), time.process_time()
                run(seq, Path(tmp))
                times.append(time.perf_counter() - t)
                cpu = time.process_time() - c - seq.source_cpu_s
            sources.append(seq.source_s)
            c = time.process_time()
            refs.append(_reference(name, n, size, size, seq))
            cpu_ratios.append((time.process_time() - c) / cpu)
        dt, src, ref, cpu_ratio = (statistics.median(v) for v in (times, sources, refs, cpu_ratios))
        own = dt - src
        mp = n * size * size / 1e6
        if name == "imu":  # IMU cost is per sample, not per pixel: report samples
            samples = int((seq.times[-1] - seq.times[0]) * 1000.0) + 1
            print(
                f"{name:12} {dt:7.3f} {src:8.3f} {samples / own / 1e6:9.3f} {samples / ref / 1e6:15.3f} "
                f"{ref / dt:13.3f} {ref / own:8.3f} {cpu_ratio:11.3f}   (M samples/s at 1 kHz)"
            )
        else:
            print(
                f"{name:12} {dt:7.3f} {src:8.3f} {mp / own:9.2f} {mp / ref:15.2f} {ref / dt:13.3f} {ref / own:8.3f} "
                f"{cpu_ratio:11.3f}"
            )


def memory(size: int) -> None:
    print(f"\npeak traced memory (tracemalloc, MB), {size}x{size} frames, in-memory source")
    print("stream = peak while frames are processed (pixel buffers + the growing per-frame pose list);")
    print("total = including the final transforms.json / params.json (one JSON entry per frame)")
    print(
        f"{'emulator':8} {'stream 1k':>10} {'stream 10k':>11} {'ratio':>6} {'total 1k':>9} {'total 10k':>10}"
    )
    runners = _runners()
    runners["lidar"] = _lidar_runner(cycles=20)  # memory does not hang on cycles; 1,000 take ~15 min here
    for name, run in runners.items():
        stream, total = [], []
        for n in (1000, 10000):
            seq = MovingScene(n, size, size)
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
    ap.add_argument("--repeats", type=int, default=1, help="runs per emulator (the median is reported)")
    a = ap.parse_args()
    throughput(a.frames, a.size, a.repeats)
    if not a.skip_memory:
        memory(a.mem_size)


if __name__ == "__main__":
    main()
