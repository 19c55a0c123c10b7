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
            albedo=True,
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
            lidar=demo_lidar(),
            itof=demo_itof(),
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
            "                 segmentations, linear, albedo, debug/ colorized ground truth, transforms.json, info.json)"
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


SENSORS = ("spad", "rgb", "events", "imu", "itof", "lidar")


def demo_lidar():
    """The demo's LiDAR: a row-scanning 50 Hz sensor with 16 equi-depth bins and 100 cycles a point (small
    files: the default keeps every TDC bin of every interpolated frame), its laser bright enough for 27 m."""
    from camsim.emulate.lidar_config import LidarConfig

    return LidarConfig(
        histogram="equi-depth", cycles=100, signal_photons=1000.0, scan="rows", frame_rate=50.0
    )


def demo_itof():
    """The demo's iToF camera: 20 and 25 MHz together, unambiguous to 30 m (the demo scenes reach 27 m), with a
    source bright enough for them (the defaults suit a camera a few metres from its scene)."""
    from camsim.emulate.itof import ItofConfig

    return ItofConfig(frequencies=(20.0, 25.0), source_power=2e5, ambient_scale=200.0, full_well=1e5)


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
    picture = active_depth(datasets)
    if picture is not None:
        shown.append(("active depth", picture))
    return shown


def active_depth(datasets: Path) -> Path | None:
    """The first sequence's iToF decoded depth and LiDAR ranges next to the rendered depth (a PNG beside
    datasets/), with their median errors logged; None when the dataset has neither."""
    from camsim.emulate.active_check import itof_check, lidar_check, picture
    from camsim.fileio import write_image

    first = sorted(p.relative_to(datasets / "itof") for p in (datasets / "itof").glob("*/*") if p.is_dir())
    if not first:
        return None
    rel = first[0]
    source = datasets / ("interpolated" if (datasets / "interpolated" / rel).is_dir() else "renders") / rel
    checks = [itof_check(datasets / "itof" / rel, source)]
    if (datasets / "lidar" / rel).is_dir():
        checks.append(lidar_check(datasets / "lidar" / rel))
    for c in checks:
        log.info(
            "%s of %s, frame 0: median |depth - rendered depth| %.4f m over %d pixels",
            c.sensor, rel, c.median_error_m, c.pixels,
        )  # fmt: skip
    out = datasets.parent / "active_depth.png"
    write_image(out, picture(checks))
    return out
