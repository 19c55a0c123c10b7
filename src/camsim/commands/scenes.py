"""`camsim make-scenes`: build procedural, animated demo scenes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

log = logging.getLogger("camsim")


@dataclass
class MakeScenes:
    """Build N animated demo .blend scenes (frames 1-600 at 50 fps), deterministic per seed."""

    out_dir: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUT_DIR")]
    """Folder to write demo_SEED.blend files into."""
    count: int = 3
    """How many scenes to build."""
    seed: int = 0
    """Seed of the first scene; scene i uses seed + i."""
    log_dir: Path = Path("logs")
    """Folder for the Blender worker's log."""

    def run(self) -> int:
        from camsim.blender.worker import WorkerOptions, require_blender
        from camsim.progress import progress_bar
        from camsim.scenes import make_scenes

        require_blender(None, flag=None)  # the scenes are built by bpy in a worker
        with progress_bar("scenes") as bar:
            task = bar.add_task("building scenes", total=self.count)
            paths = make_scenes(
                self.out_dir,
                self.count,
                self.seed,
                WorkerOptions(log_dir=self.log_dir, name="scenes"),
                progress=lambda n: bar.update(task, advance=n),
            )
        log.info("built %d scenes in %s", len(paths), self.out_dir)
        return 0
