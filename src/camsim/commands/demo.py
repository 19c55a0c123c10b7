"""`camsim demo`: build demo scenes and make a small dataset with every ground truth, interpolated, with every
sensor and splits, in one create-datasets call, on the CPU."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

log = logging.getLogger("camsim")


@dataclass
class Demo:
    """Build demo scenes, render a small dataset with every ground truth, and show where to look."""

    out_dir: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUT_DIR")] = Path("demo-output")
    """Folder for scenes/, datasets/ (renders and extras) and logs/."""
    scenes: int = 2
    """Demo scenes to build."""
    sequences_per_scene: int = 2
    """Sequences per scene."""
    num_frames: int = 16
    """Frames per sequence."""
    width: int = 160
    """Frame width in pixels."""
    height: int = 120
    """Frame height in pixels."""
    samples: int = 16
    """Cycles samples per pixel."""
    jobs: int = 1
    """Warm Blender workers."""

    def run(self) -> int:
        from camsim.blender.worker import WorkerOptions, require_blender
        from camsim.commands.create_datasets import CreateDatasets
        from camsim.config import RenderConfig
        from camsim.errors import UserInputError
        from camsim.scenes import make_scenes

        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UserInputError(f"demo output path is not a folder: {self.out_dir}")
        for name in ("scenes", "sequences_per_scene", "num_frames", "width", "height", "samples", "jobs"):
            if getattr(self, name) < 1:
                raise UserInputError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        require_blender(None, flag=None)  # before anything is created
        t0 = time.monotonic()
        logs = self.out_dir / "logs"
        scenes_dir = self.out_dir / "scenes"
        datasets = self.out_dir / "datasets"
        log.info("building %d demo scenes in %s", self.scenes, scenes_dir)
        make_scenes(scenes_dir, self.scenes, seed=0, options=WorkerOptions(log_dir=logs, name="scenes"))
        config = RenderConfig(
            width=self.width,
            height=self.height,
            max_samples=self.samples,
            device_type="cpu",
            linear=True,
            jobs=self.jobs,
            log_dir=logs,
        )
        code = CreateDatasets(
            scenes_dir=scenes_dir,
            datasets_dir=datasets,
            render_config=config,
            sequences_per_scene=self.sequences_per_scene,
            num_frames=self.num_frames,
            interpolate_factor=INTERP_FACTOR,
            emulate=SENSORS,
            splits=(0.5, 0.5),
            allow_skips=True,
        ).run()
        if code:
            return code
        shown = finish(datasets)
        print(f"\ncamsim demo finished in {time.monotonic() - t0:.0f} s. Where to look:")
        print(f"  scenes:        {scenes_dir}/*.blend")
        print(f"  manifest:      {datasets / 'dataset.json'} (camsim info {datasets})")
        print(f"  renders:       {datasets / 'renders'}/SCENE/SEQUENCE/ (frames, depths, normals, flows,")
        print(
            "                 segmentations, linear, debug/ colorized ground truth, transforms.json, info.json)"
        )
        print(f"  interpolated:  {datasets / 'interpolated'}/SCENE/SEQUENCE/ (x{INTERP_FACTOR} frame rate)")
        for sensor in SENSORS:
            print(f"  {sensor + ':':<14} {datasets / sensor}/SCENE/SEQUENCE/")
        for label, path in shown:
            print(f"  {label + ':':<14} {path}")
        print(f"  worker logs:   {logs}")
        return 0


INTERP_FACTOR = 16
"""x16 of the demo's 50 fps: fine enough in time for the event camera's 0.2 log-intensity threshold."""


SENSORS = ("spad", "rgb", "events", "imu")


def finish(datasets: Path) -> list[tuple[str, Path]]:
    """Previews and validation of the demo dataset (every stage, from its manifest)."""
    from camsim.preview import make_previews
    from camsim.validate import validate_dataset

    shown: list[tuple[str, Path]] = []
    previews = datasets.parent / "previews"
    log.info("writing preview videos to %s", previews)
    make_previews(datasets / "renders", previews)
    shown.append(("previews", previews))
    report = validate_dataset(datasets, consistency=True)
    counts = report.counts()
    log.info("validate: %s", ", ".join(f"{n} {k}" for k, n in counts.items()))
    if not report.ok:
        for problem in report.problems[:20]:
            log.warning("validate: %s", problem)
    shown.append(("validation", Path(f"{counts}")))
    return shown
