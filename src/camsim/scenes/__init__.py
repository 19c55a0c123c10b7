"""Procedural demo scenes (the embedded default). `demo.py` runs inside Blender; this side starts it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.errors import UserInputError
from camsim.fileio import atomic_path, make_output_dir

log = logging.getLogger(__name__)

DEMO_SCRIPT = Path(__file__).with_name("demo.py")


def scene_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"demo_{seed:03d}.blend"


def make_scenes(
    out_dir: Path,
    count: int,
    seed: int = 0,
    options: WorkerOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Build `count` demo scenes (seeds seed, seed+1, ...) with one Blender worker; return their paths."""
    if count < 1:
        raise UserInputError(f"--count must be at least 1, got {count}")
    if seed < 0:
        raise UserInputError(f"--seed must be 0 or more, got {seed}")
    make_output_dir(out_dir)
    paths = []
    with BlenderWorker(options or WorkerOptions(name="scenes")) as worker:
        for s in range(seed, seed + count):
            final = scene_path(out_dir, s)
            with atomic_path(final) as tmp:
                worker.build_scene(DEMO_SCRIPT, tmp, seed=s)
            paths.append(final)
            if progress:
                progress(1)
    return paths
