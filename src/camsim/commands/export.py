"""`camsim export nerfstudio|coco|bop INPUT OUTPUT`: sequences in another tool's layout, loadable as-is."""

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


@dataclass
class Coco:
    """COCO instance segmentation that pycocotools loads as-is: OUTPUT/annotations.json with one image per
    frame and one annotation per object visible in it (RLE mask from the segmentation, area, bbox, the
    object's category; video fields for tracking), the frames in OUTPUT/images/SEQUENCE/."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A rendered sequence folder, a folder of sequences (each exported, named by its path), or a
    create-datasets folder (DATASETS with dataset.json: its renders, or --stage and --split)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output folder: new or empty, or a previous COCO export with --overwrite."""
    stage: str | None = None
    """With a DATASETS folder: the stage to export (render, interpolate; default render)."""
    split: str | None = None
    """With a DATASETS folder made with --splits: only this split (train, val, test)."""
    overwrite: bool = False
    """Replace a previous COCO export in OUTPUT (a folder holding anything else is refused)."""
    copy: bool = False
    """Copy the frames (default: hard-link them where the file system allows, else copy)."""

    def run(self) -> int:
        from camsim.export.coco import export_coco, plan_coco
        from camsim.progress import progress_bar

        plan = plan_coco(
            self.input,
            self.output,
            stage=self.stage,
            split=self.split,
            overwrite=self.overwrite,
            link=not self.copy,
        )
        with progress_bar("frames") as bar:
            task = bar.add_task("coco", total=plan.steps)
            r = export_coco(plan, progress=lambda n: bar.update(task, advance=n))
        print(
            f"{r.annotation_file}: {r.images} images from {r.sequences} sequence(s), {r.annotations} "
            f"instance annotations, {len(r.categories)} categories ({', '.join(r.categories)})"
        )
        for note in r.notes:
            print(f"  note: {note}")
        return 0


@dataclass
class Bop:
    """BOP dataset (BOP-scenewise, as bop_toolkit reads it): one scene per sequence in OUTPUT/SPLIT/NNNNNN
    with rgb/, depth/ (16-bit, x depth_scale = mm), mask_visib/, scene_camera.json, scene_gt.json (object
    poses in mm, OpenCV axes; obj_id = category id) and scene_gt_info.json. Object models are not exported."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A rendered sequence folder, a folder of sequences (each exported, named by its path), or a
    create-datasets folder (DATASETS with dataset.json: its renders, or --stage and --split)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output folder: new or empty, or a previous BOP export with --overwrite."""
    stage: str | None = None
    """With a DATASETS folder: the stage to export (render, interpolate; default render)."""
    split: str | None = None
    """With a DATASETS folder made with --splits: only this split (train, val, test). Scenes go to the split
    folder of their sequence's split (train without splits)."""
    split_type: str | None = None
    """BOP's SPLITTYPE, appended to the split folder: `pbr` writes train_pbr/ (as BlenderProc does)."""
    overwrite: bool = False
    """Replace a previous BOP export in OUTPUT (a folder holding anything else is refused)."""
    copy: bool = False
    """Copy the frames (default: hard-link them where the file system allows, else copy)."""
    depth_scale: float | None = None
    """Millimetres per depth unit. Default per scene: the smallest of 0.1, 0.2, 0.5, 1, ... that holds its
    farthest depth (0.1 up to 6.5535 m). Depths beyond 65535 units are written as 0 (no depth)."""
    max_depth: float | None = None
    """Write depths beyond this many metres as 0 (no depth), e.g. to keep 0.1 mm units under a far backdrop."""

    def run(self) -> int:
        from camsim.export.bop import export_bop, plan_bop
        from camsim.progress import progress_bar

        plan = plan_bop(
            self.input,
            self.output,
            stage=self.stage,
            split=self.split,
            split_type=self.split_type,
            overwrite=self.overwrite,
            link=not self.copy,
            depth_scale=self.depth_scale,
            max_depth=self.max_depth,
        )
        with progress_bar("frames") as bar:
            task = bar.add_task("bop", total=plan.steps)
            r = export_bop(plan, progress=lambda n: bar.update(task, advance=n))
        scales = ", ".join(f"{s:g}" for s in sorted(r.depth_scales))
        print(
            f"{r.output}: {r.scenes} scene(s), {r.images} images, {r.instances} object instances, "
            f"obj_ids {', '.join(f'{i}={n}' for n, i in r.obj_ids.items())}; depth_scale {scales} mm"
            + (f", {r.dropped_depths} depths beyond the range written as 0" if r.dropped_depths else "")
        )
        for note in r.notes:
            print(f"  note: {note}")
        return 0


Export = Union[  # noqa: UP007 - tyro reads the Annotated members of a typing.Union
    Annotated[Nerfstudio, tyro.conf.subcommand("nerfstudio")],
    Annotated[Coco, tyro.conf.subcommand("coco")],
    Annotated[Bop, tyro.conf.subcommand("bop")],
]
"""`camsim export <format>`: one registry entry; tyro builds the nested subcommands from this union."""

__all__ = ["Bop", "Coco", "Export", "Nerfstudio"]
