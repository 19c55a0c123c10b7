"""Planning at scale: reading N scenes' ranges with 1 and 2 Blender readers, a rerun from the manifest's
cache, and the host process's peak memory on `create-datasets --dry-run` against the number of sequences.

    python benchmarks/planning_scale.py [--scenes 1000] [--sequences 1000]

The scenes are copies of one demo scene (the cost that matters is Blender opening a file, not its content).
Printed: the wall time of `survey.survey_local` over all scenes with 1 and with 2 readers (Blender starts
included), the same read answered by the cache (no Blender), each as a ratio to the 1-reader read; then the
peak resident memory of the create-datasets process itself (getrusage of that process, Blenders excluded)
for a dry run planning `--sequences` sequences, one planning a tenth of them, and the larger one again
(its scenes now in dataset.json's cache).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import demo_scenes

from camsim.blender.worker import BlenderWorker
from camsim.config import RenderConfig
from camsim.sampling import find_scenes
from camsim.survey import survey_local

# The create-datasets process, reporting its own peak RSS (KiB on Linux) on stderr's last line.
PEAK_RSS = """
import resource, runpy, sys
sys.argv = ["camsim", *sys.argv[1:]]
try:
    runpy.run_module("camsim", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def survey_seconds(folder: Path, config: RenderConfig, workers: int, cache: dict) -> tuple[float, dict, int]:
    """Wall time of reading every scene; the records read; how many Blenders were handed over warm."""
    scenes = find_scenes(folder)
    spare: queue.Queue[BlenderWorker] = queue.Queue()
    t0 = time.perf_counter()
    reads = list(survey_local(scenes, config, workers, cache, None, spare))
    seconds = time.perf_counter() - t0
    handed = spare.qsize()
    while not spare.empty():
        spare.get_nowait().close()
    bad = [r for r in reads if r.error]
    if bad:
        raise SystemExit(f"{len(bad)} scenes failed: {bad[0].error}")
    return seconds, {r.scene.name: r.record for r in reads if r.record is not None}, handed


def dry_run_peak(scenes: Path, datasets: Path, per_scene: int, count: int) -> tuple[int, float]:
    """Peak RSS (bytes) of the create-datasets process planning `per_scene` sequences of the first `count`
    scenes, and its wall time."""
    folder = datasets.with_name(datasets.name + "-scenes")
    if not folder.exists():
        folder.mkdir()
        for p in sorted(scenes.glob("*.blend"))[:count]:
            os.link(p, folder / p.name)
    cmd = [sys.executable, "-c", PEAK_RSS, "create-datasets", "--scenes-dir", str(folder), "--datasets-dir",
           str(datasets), "--dry-run", "--sequences-per-scene", str(per_scene), "--num-frames", "10",
           "--render-config.log-dir", str(datasets.parent / "logs")]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CAMSIM_LOG": "WARNING"})
    seconds = time.perf_counter() - t0
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("PEAK_RSS_KIB")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"dry run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(lines[-1].split()[1]) * 1024, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=1000, help="scenes to read (copies of one demo scene)")
    ap.add_argument("--sequences", type=int, default=1000, help="sequences the larger dry run plans")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="camsim-planning-") as tmp:
        root = Path(tmp)
        source = demo_scenes(root / "demo", 1)[0]
        folder = root / "scenes"
        folder.mkdir()
        for i in range(args.scenes):
            shutil.copy2(source, folder / f"scene_{i:05d}.blend")
        config = RenderConfig(log_dir=root / "logs")

        one, records, _ = survey_seconds(folder, config, 1, {})
        two, _, handed = survey_seconds(folder, config, 2, {})
        cached, _, _ = survey_seconds(folder, config, 2, records)
        n = args.scenes
        print(f"{n} scenes ({source.stat().st_size / 1024:.0f} KiB each), {os.cpu_count()} cores")
        print(f"read, 1 Blender reader      : {one:7.2f} s  {n / one:7.1f} scenes/s  1.00x")
        print(f"read, 2 Blender readers     : {two:7.2f} s  {n / two:7.1f} scenes/s  {two / one:.2f}x"
              f"  ({handed} warm Blenders handed to the render pool)")  # fmt: skip
        print(
            f"rerun, from the cache       : {cached:7.3f} s  {n / cached:7.0f} scenes/s  {cached / one:.4f}x"
        )
        print(f"cache size in dataset.json  : {len(json.dumps([r.__dict__ for r in records.values()])) / n:.0f} "
              "bytes per scene")  # fmt: skip

        rows = []
        for label, target in (("small", max(1, args.sequences // 10)), ("large", args.sequences)):
            count = min(n, target)
            per_scene = -(-target // count)
            peak, secs = dry_run_peak(folder, root / f"dry-{label}", per_scene, count)
            rows.append((f"{count * per_scene:6d} sequences of {count:5d} scenes", peak, secs))
        peak, secs = dry_run_peak(folder, root / "dry-large", per_scene, count)
        rows.append(("the same again (scene cache)", peak, secs))
        print("create-datasets --dry-run, host process only (first run: reads the scenes with Blender):")
        for label, peak, secs in rows:
            print(f"  {label:34s}: peak RSS {peak / 2**20:7.1f} MiB  ({secs:.1f} s wall)")


if __name__ == "__main__":
    main()
