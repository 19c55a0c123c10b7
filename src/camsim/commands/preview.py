"""`camsim preview DATASET OUT`: colorized ground truth and event videos per sequence, plus a grid video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro


@dataclass
class Preview:
    """Write OUT/<sequence>/{frame,depth,flow,normal,segmentation,events}.mp4 and OUT/grid.mp4."""

    dataset: tyro.conf.Positional[Path]
    """A sequence folder or a folder of sequences."""
    out: tyro.conf.Positional[Path]
    """Folder for the videos."""
    fps: float | None = None
    """Video frame rate. Default: each sequence's own fps."""
    grid: bool = True
    """Also write grid.mp4: every sequence side by side, its frame and ground truth in a row."""
    cell: tuple[int, int] = (128, 128)
    """Height and width of one tile of the grid video, in pixels."""

    def run(self) -> int:
        from camsim.preview import count_videos, make_previews
        from camsim.progress import progress_bar

        with progress_bar("videos") as bar:
            task = bar.add_task("previews", total=count_videos(self.dataset))
            written = make_previews(
                self.dataset,
                self.out,
                fps=self.fps,
                grid=self.grid,
                cell=self.cell,
                progress=lambda n: bar.update(task, advance=n),
            )
        print(f"wrote {len(written)} video(s) under {self.out}")
        return 0
