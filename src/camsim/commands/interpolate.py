"""`camsim interpolate INPUT OUTPUT`: denser sequences from rendered ones, guided by their exact flow and depth."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

log = logging.getLogger("camsim")


@dataclass
class Interpolate:
    """Insert factor-1 frames between each pair of a rendered sequence (frames, depth, flow, ids, poses)."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A rendered sequence folder (with transforms.json, depths and flows), or a dataset folder: every sequence below it."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Folder for the interpolated sequence (same layout, plus masks/ of uncovered pixels); for a dataset folder, each sequence at the same path below it."""
    factor: int = 4
    """Frame-rate multiplier n >= 2: N frames become N*n - n + 1; every source frame is kept."""
    workers: int = 0
    """Parallel workers (0: one per CPU core): processes over a dataset folder's sequences, and over the frame pairs within a sequence. The output is the same for any value."""
    beta: float = 60.0
    """Depth-test sharpness of the softmax splatting: weight exp(-beta * relative depth excess)."""
    allow_skips: bool = False
    """Resume: keep sequences complete and made with the same settings, redo unfinished ones; one made with other settings is refused (pass --overwrite to replace it)."""
    overwrite: bool = False
    """Replace existing sequences in OUTPUT (everything a camsim sequence folder holds is removed first)."""

    def run(self) -> int:
        from camsim.derive import cpu_workers
        from camsim.interpolate.tree import plan_interpolation, run_interpolation
        from camsim.progress import progress_bar
        from camsim.resume import Reuse

        cpu_workers(self.workers)
        plan = plan_interpolation(
            self.input, self.output, self.factor, self.beta, Reuse(self.allow_skips, self.overwrite)
        )
        if plan.to_run:
            with progress_bar("frames") as bar:
                task = bar.add_task(self.input.name, total=plan.total)
                run_interpolation(
                    plan, self.factor, self.beta, self.workers, lambda n: bar.update(task, advance=n)
                )
        for job in plan.to_run:
            _summary(job.source, job.output)
        if plan.skipped:
            log.info("%d sequence(s) skipped: complete, made with the same settings", len(plan.skipped))
        return 0


def _summary(source: Path, output: Path) -> None:
    meta = json.loads((output / "transforms.json").read_text())
    holes = [f["hole_fraction"] for f in meta["frames"] if f.get("interpolated")]
    log.info(
        "%d frames -> %d at %.6g fps (mean uncovered %.3f%%) -> %s",
        meta["interpolation"]["source"]["frames"],
        len(meta["frames"]),
        meta.get("fps", float("nan")),
        100 * (sum(holes) / len(holes) if holes else 0.0),
        output / "transforms.json",
    )
