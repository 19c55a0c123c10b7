"""`camsim export nerfstudio INPUT OUTPUT`: write a sequence in another tool's layout, loadable as-is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Union

import tyro


@dataclass
class Nerfstudio:
    """nerfstudio dataset: 8-bit images, 16-bit PNG planar depth (0 = no depth), transforms.json with OpenGL
    camera-to-world poses and per-frame intrinsics when the lens is animated. Train with depth supervision:
    `ns-train depth-nerfacto --data OUTPUT` (the command printed at the end adds
    `nerfstudio-data --depth-unit-scale-factor S` when the depths are not in millimetres)."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A rendered sequence folder (with depth), or a folder of sequences (each exported below OUTPUT, paths
    mirrored)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output folder: new or empty, or a previous export with --overwrite."""
    overwrite: bool = False
    """Replace a previous export in OUTPUT (a folder holding anything else is refused)."""
    depth_unit_scale_factor: float | None = None
    """Metres per unit of the depth PNGs. Default: 0.001 (millimetres, nerfstudio's default, no flag needed)
    when the farthest depth fits in 65.535 m, else the smallest of 0.002, 0.005, 0.01, 0.02, ... that holds
    it. Depths beyond 65535 units are written as 0 (no depth)."""
    max_depth: float | None = None
    """Write depths beyond this many metres as 0 (no depth supervision); e.g. 65.535 keeps millimetres when
    a far backdrop would otherwise coarsen the unit."""

    def run(self) -> int:
        from camsim.export.nerfstudio import export_nerfstudio, plan_nerfstudio
        from camsim.progress import progress_bar

        plan = plan_nerfstudio(  # every input error is raised here, before a bar is drawn
            self.input,
            self.output,
            overwrite=self.overwrite,
            depth_unit_scale_factor=self.depth_unit_scale_factor,
            max_depth=self.max_depth,
        )
        with progress_bar("frames") as bar:
            task = bar.add_task("nerfstudio", total=plan.steps)
            results = export_nerfstudio(plan, progress=lambda n: bar.update(task, advance=n))
        for r in results:
            unit = r.depth_unit_scale_factor
            print(
                f"{r.output}: {r.frames} frames, depth in units of {unit:g} m (error <= {r.depth_error_m * 1e3:g} mm), "
                f"{r.depth_coverage:.1%} of pixels with depth"
                + (f", {r.dropped_depths} depths beyond the range written as 0" if r.dropped_depths else "")
                + (", per-frame intrinsics" if r.per_frame_intrinsics else "")
                + (", hole masks" if r.masks else "")
            )
            for note in r.notes:
                print(f"  note: {note}")
            print(f"  train: {r.train}")
        return 0


Export = Union[  # noqa: UP007 - tyro reads the Annotated members of a typing.Union
    Annotated[Nerfstudio, tyro.conf.subcommand("nerfstudio")],
    # A one-member Union collapses to its member and tyro would drop the `nerfstudio` subcommand; this
    # hidden, unparseable member keeps it until a second format (coco, bop) joins the Union.
    Annotated[None, tyro.conf.Suppress],
]
"""`camsim export <format>`: one registry entry; tyro builds the nested subcommands from this union."""

__all__ = ["Export", "Nerfstudio"]
