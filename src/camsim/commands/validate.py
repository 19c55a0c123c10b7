"""`camsim validate DATASET`: check every sequence; `--consistency` checks ground truth against itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class Validate:
    """Check schema, files, shapes, types, NaNs and frame counts; exit 1 when anything is wrong."""

    dataset: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="DATASET")]
    """A sequence folder, a folder of sequences (e.g. DATASETS/renders), or DATASETS with its dataset.json:
    every stage of every sequence, and the manifest against the files."""
    consistency: bool = False
    """Reproject depth with poses and intrinsics to the next frame (moving rigid objects with their poses
    from objects.json) and compare with forward flow on interior surface pixels (end-point error per
    sequence); check forward-backward flow cycles."""
    purge: bool = False
    """Delete corrupted files, and the transforms.json of every sequence that lost or lacks files, so
    `create-datasets --allow-skips` re-renders exactly those frames."""

    def run(self) -> int:
        from rich.table import Table

        from camsim.errors import DatasetError
        from camsim.loader import find_sequence_dirs
        from camsim.manifest import has_manifest
        from camsim.progress import progress_bar, report_console
        from camsim.validate import total_frames, validate_dataset

        if not self.dataset.exists():
            raise DatasetError(f"no dataset at {self.dataset}")
        datasets = self.dataset.is_dir() and has_manifest(self.dataset)
        # No bar drawn for a non-dataset.
        if self.dataset.is_dir() and not datasets and not find_sequence_dirs(self.dataset):
            raise DatasetError(
                f"no sequences under {self.dataset} (no transforms.json and no frames/ folder)"
            )
        with progress_bar("frames") as bar:
            task = bar.add_task("validate", total=total_frames(self.dataset))
            report = validate_dataset(
                self.dataset,
                consistency=self.consistency,
                purge=self.purge,
                progress=lambda n: bar.update(task, advance=n),
            )
        console = report_console()
        if self.consistency or any(s.status != "ok" for s in report.sequences):
            table = Table(title="sequences")
            for col in ("sequence", "format", "frames", "status", "problems"):
                table.add_column(col, justify="right" if col in ("frames", "problems") else "left")
            if self.consistency:
                for col in ("EPE px", "static", "cycle px"):
                    table.add_column(col, justify="right")
            colour = {"ok": "green", "incomplete": "yellow", "corrupted": "red"}
            for s in report.sequences:
                row = [
                    s.name,
                    s.format,
                    str(s.frames),
                    f"[{colour[s.status]}]{s.status}",
                    str(len(s.problems)),
                ]
                if self.consistency:
                    c = s.consistency
                    row += (
                        [
                            _num(c.epe, 3),
                            f"{c.static_fraction:.0%}" if c.checked else "-",
                            _num(c.cycle_median, 3),
                        ]
                        if c
                        else ["-"] * 3
                    )
                table.add_row(*row)
            console.print(table)
        counts = report.counts()
        summary = Table(title=f"validate {report.root}")
        for col, style in (("OK", "green"), ("incomplete", "yellow"), ("corrupted", "red")):
            summary.add_column(col, style=style, justify="right")
        summary.add_row(str(counts["ok"]), str(counts["incomplete"]), str(counts["corrupted"]))
        console.print(summary)
        for s in report.sequences:
            if not s.has_transforms:
                console.print(
                    f"INCOMPLETE {s.path}: no {s.marker} (resume with create-datasets --allow-skips)",
                    highlight=False,
                    markup=False,
                )
            for p in s.problems:
                console.print(
                    f"{p.kind.upper()} {p.path}: {p.message}", highlight=False, markup=False, soft_wrap=True
                )
            for w in s.warnings:
                console.print(
                    f"warning {s.path}: {w}", highlight=False, markup=False, style="dim", soft_wrap=True
                )
            for p in s.purged:
                console.print(f"purged {p}", highlight=False, markup=False, soft_wrap=True)
        return 0 if report.ok else 1


def _num(x: float, digits: int) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"
