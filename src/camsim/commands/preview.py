"""`camsim preview DATASET OUT`: colorized ground truth, hole masks and event videos per sequence, plus a
labelled grid video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class Preview:
    """Write OUT/<sequence>/{frame,masks,depth,flow,normal,segmentation,events}.mp4 (those a sequence has)
    and OUT/grid.mp4."""

    dataset: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A sequence folder or a folder of sequences."""
    out: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Folder for the videos."""
    fps: float | None = None
    """Video frame rate. Every frame of a sequence is one video frame (none dropped), so a video lasts
    frames / fps seconds. Default: each sequence's own fps capped at 60, so faster sequences (e.g. a x16
    interpolation) play slowed down; the grid uses the fastest sequence's fps, capped the same way."""
    grid: bool = True
    """Also write grid.mp4: every sequence side by side, its frame, hole masks and ground truth in a row."""
    cell: tuple[int, int] = (128, 128)
    """Height and width of one tile of the grid video, in pixels."""
    labels: bool = True
    """Write scene, sequence and kind (frame, depth, ...) into the grid's tiles."""

    def run(self) -> int:
        from camsim.preview import check_options, count_videos, make_previews
        from camsim.progress import progress_bar

        check_options(self.fps, self.cell)
        total = count_videos(self.dataset, grid=self.grid)  # reads every transforms.json: errors come first
        with progress_bar("videos") as bar:
            task = bar.add_task("previews", total=total)
            written = make_previews(
                self.dataset,
                self.out,
                fps=self.fps,
                grid=self.grid,
                cell=self.cell,
                progress=lambda n: bar.update(task, advance=n),
                label=self.labels,
            )
        print(f"wrote {len(written)} video(s) under {self.out}")
        return 0
