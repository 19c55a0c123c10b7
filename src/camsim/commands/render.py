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

    def run(self) -> int:
        from camsim.blender.worker import BlenderWorker, options_from_config
        from camsim.progress import progress_bar
        from camsim.render import SequenceJob, check_blend_file, prepare_output_parent, render_sequence

        config = self.render_config.validate()
        check_blend_file(self.blend_file)
        prepare_output_parent(self.output_dir)
        job = SequenceJob(
            scene=self.blend_file.resolve(),
            output=self.output_dir,
            config=config,
            frame_start=self.frame_start,
            frame_end=self.frame_end,
            scene_name=self.blend_file.stem,
        )
        with progress_bar("frames") as bar, BlenderWorker(options_from_config(config, "render")) as worker:
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
            self.output_dir / "transforms.json",
        )
        return 0
