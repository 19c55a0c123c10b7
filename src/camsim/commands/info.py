"""`camsim info DATASET`: what a dataset holds (sequences, frames, resolution, ground truth, size, fps); of a
create-datasets folder (with dataset.json), each stage per split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class Info:
    """Summarise a sequence, a folder of sequences, or a create-datasets folder per stage and split (reads
    transforms.json, params.json and dataset.json files only)."""

    dataset: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="DATASET")]
    """A sequence folder, a folder of sequences, or DATASETS (the --datasets-dir of create-datasets)."""
    per_sequence: bool = True
    """List every sequence, not only the totals."""

    def run(self) -> int:
        from rich.table import Table

        from camsim.manifest import has_manifest
        from camsim.progress import report_console
        from camsim.summary import describe, human_size

        if self.dataset.is_dir() and has_manifest(self.dataset):
            return self._datasets()
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

    def _datasets(self) -> int:
        from rich.table import Table

        from camsim.progress import report_console
        from camsim.summary import describe_datasets, human_size

        info = describe_datasets(self.dataset)
        m = info.manifest
        console = report_console()
        if self.per_sequence:
            table = Table(title=f"{self.dataset}: sequences")
            table.add_column("sequence")
            table.add_column("split")
            for stage in m.stages:
                table.add_column(stage)
            for key, seq in m.sequences.items():
                table.add_row(key, seq.split or "-", *(seq.status(stage) for stage in m.stages))
            console.print(table)
        table = Table(title=f"{self.dataset}: stages")
        for col in ("stage", "split", "complete", "failed", "frames/samples", "size"):
            table.add_column(col, justify="left" if col in ("stage", "split") else "right")
        for r in info.rows:
            table.add_row(
                r.stage,
                r.split or "all",
                f"{r.complete}/{r.planned}",
                str(r.failed),
                str(r.frames),
                human_size(r.size_bytes),
                end_section=r.split is None,
            )
        console.print(table)
        splits = (
            ", ".join(f"{name} {sum(v == name for v in m.splits.scenes.values())}" for name in m.splits.names)
            if m.splits
            else "none"
        )
        console.print(
            f"{len(m.scenes)} scene(s), {len(m.sequences)} sequence(s), stages: {', '.join(m.stages)}; "
            f"scenes per split: {splits}; {human_size(info.size_bytes)} on disk; camsim {m.camsim_version}, "
            f"Blender {m.blender_version or 'unknown'}",
            highlight=False,
        )
        for f in info.failures:
            console.print(f"FAILED {f.stage} {f.sequence}: {f.error}", highlight=False, markup=False)
        return 0
