"""`camsim info DATASET`: what a dataset holds (sequences, frames, resolution, ground truth, size, fps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class Info:
    """Summarise a sequence or a folder of sequences (reads transforms.json files only)."""

    dataset: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="DATASET")]
    """A sequence folder or a folder of sequences."""
    per_sequence: bool = True
    """List every sequence, not only the totals."""

    def run(self) -> int:
        from rich.table import Table

        from camsim.progress import report_console
        from camsim.summary import describe, human_size

        info = describe(self.dataset)
        console = report_console()
        if self.per_sequence:
            table = Table(title=str(self.dataset))
            for col in ("sequence", "format", "frames", "resolution", "fps", "ground truth", "size"):
                table.add_column(col, justify="right" if col in ("frames", "fps", "size") else "left")
            for s in info.sequences:
                table.add_row(
                    s.name,
                    s.format,
                    str(s.frames),
                    s.resolution,
                    f"{s.fps:g}" if s.fps else "-",
                    ", ".join(s.ground_truth) or "-",
                    human_size(s.size_bytes),
                )
            console.print(table)
        res = ", ".join(sorted({s.resolution for s in info.sequences})) or "-"
        fps = ", ".join(f"{f:g}" for f in sorted({s.fps for s in info.sequences if s.fps})) or "-"
        gts = sorted({g for s in info.sequences for g in s.ground_truth})
        console.print(
            f"{len(info.sequences)} sequence(s) ({info.incomplete} incomplete), {info.frames} frames, "
            f"resolution {res}, fps {fps}, ground truth: {', '.join(gts) or 'none'}, "
            f"{human_size(info.size_bytes)} on disk",
            highlight=False,
        )
        return 0
