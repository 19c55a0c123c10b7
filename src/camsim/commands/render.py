"""`camsim render-animation`: one scene, one frame range, every ground truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from camsim.config import RenderConfig

log = logging.getLogger("camsim")


@dataclass
class RenderAnimation:
    """Render frames of one .blend scene with every ground truth and a transforms.json."""

    blend_file: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="BLEND_FILE")]
    """The .blend scene to render."""
    output_dir: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT_DIR")]
    """Folder for frames/, depths/, normals/, flows/, segmentations/, debug/ and transforms.json."""
    frame_start: int | None = None
    """First frame to render (after keyframe scaling). Default: the scene's first frame."""
    frame_end: int | None = None
    """Last frame to render, inclusive. Default: the scene's last frame."""
    render_config: RenderConfig = field(default_factory=RenderConfig)
    """Rendering and ground-truth settings."""
    allow_skips: bool = False
    """Resume a render of the same scene, frames and settings in OUTPUT_DIR: keep its whole frames, render the
    rest. A render made otherwise is refused."""
    overwrite: bool = False
    """Replace a render OUTPUT_DIR already holds: its outputs are removed first, so no stale frame survives."""
    verify: bool = False
    """With --allow-skips: decode every existing file instead of the cheap check (present, not cut short)."""

    def run(self) -> int:
        from camsim.blender.worker import BlenderWorker, options_from_config, require_blender
        from camsim.errors import UserInputError
        from camsim.jobs import SequenceJob
        from camsim.progress import progress_bar
        from camsim.render import (
            check_blend_file,
            check_frame_range,
            prepare_output_parent,
            record_for,
            render_sequence,
        )
        from camsim.resume import Reuse, check_folder
        from camsim.sampling import scaled_range

        config = self.render_config.validate()
        if self.frame_start is not None and self.frame_end is not None and self.frame_start > self.frame_end:
            raise UserInputError(f"--frame-start {self.frame_start} is after --frame-end {self.frame_end}")
        check_blend_file(self.blend_file)
        prepare_output_parent(self.output_dir)
        require_blender(config.executable)  # after the checks of the input, before anything is created
        reuse = Reuse(
            resume=self.allow_skips or config.allow_skips, overwrite=self.overwrite, verify=self.verify
        )
        job = SequenceJob(
            scene=self.blend_file.resolve(),
            output=self.output_dir,
            settings=config.settings,
            frame_start=self.frame_start,
            frame_end=self.frame_end,
            scene_name=self.blend_file.stem,
            reuse=reuse,
        )
        with BlenderWorker(options_from_config(config, "render")) as worker:
            # Bad frames or a folder holding another render are refused before anything is rendered or created.
            found = worker.scene_range(job.scene, config.scene)
            first, last = scaled_range(found.frame_start, found.frame_end, config.keyframe_multiplier)
            start = first if self.frame_start is None else self.frame_start
            end = last if self.frame_end is None else self.frame_end
            check_frame_range(start, end, first, last, self.blend_file.name)
            check_folder(self.output_dir, record_for(job, start, end), reuse)
            with progress_bar("frames") as bar:
                task = bar.add_task(self.blend_file.name, total=None)
                result = render_sequence(
                    worker,
                    job,
                    progress=lambda n: bar.update(task, advance=n),
                    on_total=lambda n: bar.update(task, total=n),
                )
        log.info(
            "rendered %d frames (%d skipped) of %s in %.1f s on %s -> %s",
            result.frames_rendered,
            result.frames_skipped,
            self.blend_file.name,
            result.seconds,
            result.scene_info.get("device", "?"),
            self.output_dir / ("rig.json" if config.cameras else "transforms.json"),
        )
        return 0
