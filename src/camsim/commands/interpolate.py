"""`camsim interpolate`: a denser sequence from a rendered one, guided by its exact flow and depth."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import tyro

log = logging.getLogger("camsim")


@dataclass
class Interpolate:
    """Insert factor-1 frames between each pair of a rendered sequence (frames, depth, flow, ids, poses)."""

    input_dir: tyro.conf.Positional[Path]
    """A rendered sequence folder (with transforms.json, depths and flows)."""
    output_dir: tyro.conf.Positional[Path]
    """Folder for the interpolated sequence (same layout, plus masks/ of uncovered pixels)."""
    factor: int = 4
    """Frame-rate multiplier n >= 2: N frames become N*n - n + 1; every source frame is kept."""
    workers: int = 0
    """Processes working on pairs in parallel (0: one per CPU core; 1: no pool). Output is identical."""
    beta: float = 60.0
    """Depth-test sharpness of the softmax splatting: weight exp(-beta * relative depth excess)."""
    overwrite: bool = False
    """Replace an existing sequence in output_dir."""

    def run(self) -> int:
        from camsim import transforms
        from camsim.errors import ConfigError
        from camsim.interpolate import interpolate_sequence
        from camsim.progress import progress_bar

        if self.factor < 2:
            raise ConfigError(f"--factor must be at least 2, got {self.factor}")
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}")
        if not self.beta > 0:
            raise ConfigError(f"--beta must be positive, got {self.beta}")
        n_src = len(transforms.read(self.input_dir)["frames"])
        total = max(n_src - 1, 0) * self.factor + 1
        with progress_bar("frames") as bar:
            task = bar.add_task(self.input_dir.name, total=total)
            meta = interpolate_sequence(
                self.input_dir,
                self.output_dir,
                self.factor,
                workers=self.workers,
                beta=self.beta,
                overwrite=self.overwrite,
                progress=lambda n: bar.update(task, advance=n),
            )
        holes = [f["hole_fraction"] for f in meta["frames"] if f.get("interpolated")]
        log.info(
            "%d frames -> %d at %.6g fps (mean uncovered %.3f%%) -> %s",
            n_src,
            len(meta["frames"]),
            meta.get("fps", float("nan")),
            100 * (sum(holes) / len(holes) if holes else 0.0),
            self.output_dir / "transforms.json",
        )
        return 0
