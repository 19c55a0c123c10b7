"""`camsim emulate spad|rgb|events|imu|itof|lidar INPUT OUTPUT`: turn rendered sequences into what a sensor records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union

import tyro

from camsim.emulate.events import EventsConfig
from camsim.emulate.imu import ImuConfig
from camsim.emulate.itof import ItofConfig
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.rgb import RgbConfig
from camsim.emulate.spad import SpadConfig


@dataclass
class _Emulate:
    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A rendered sequence folder (with transforms.json), or a dataset folder: every sequence below it."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output folder (for a dataset folder: each sequence at the same path below it)."""
    workers: int = 0
    """Parallel workers (0: one per CPU core): processes over a dataset folder's sequences, threads reading frames within a sequence. The output is the same for any value."""
    allow_skips: bool = False
    """Resume: keep outputs complete and made with the same settings, redo unfinished ones; an output made with other settings is refused (pass --overwrite to replace it)."""
    overwrite: bool = False
    """Replace existing outputs in OUTPUT (everything a camsim sequence folder holds is removed first)."""

    def _emulate(self, name: str, label: str) -> int:
        from camsim.derive import cpu_workers
        from camsim.emulate.sensors import SENSORS, plan_emulation, run_emulation
        from camsim.progress import progress_bar
        from camsim.resume import Reuse

        config = self.config  # type: ignore[attr-defined]
        cpu_workers(self.workers)
        plan = plan_emulation(name, self.input, self.output, config, Reuse(self.allow_skips, self.overwrite))
        if plan.to_run:
            with progress_bar(SENSORS[name].unit) as bar:
                task = bar.add_task(label, total=plan.total)
                run_emulation(name, config, plan, self.workers, lambda n: bar.update(task, advance=n))
        for job in plan.to_run:
            partial = _partial_exposure(job.output)
            if partial:
                print(
                    f"{job.output}: the last frame integrates {partial} input frames (kept, as VisionSim does)"
                )
        if plan.tree:
            skipped = f", {len(plan.skipped)} skipped (complete, same settings)" if plan.skipped else ""
            print(f"{label}: {len(plan.to_run)} sequence(s) written under {self.output}{skipped}")
        elif plan.skipped:
            print(f"{label} dataset in {self.output} is complete with the same settings: skipped")
        else:
            print(f"{label} dataset written to {self.output}")
        return 0


def _partial_exposure(folder: Path) -> str | None:
    """'2 of 4' when an RGB output's last exposure ran out of input frames (from its params.json)."""
    try:
        partial = json.loads((folder / "params.json").read_text())["derived"].get("partial_last_exposure")
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return f"{partial['input_frames']} of {partial['of']}" if isinstance(partial, dict) else None


@dataclass
class Spad(_Emulate):
    """Single-photon camera: binary (or multi-bit) frames, bit-packed NPY or PNGs; auto-exposed by default."""

    config: tyro.conf.OmitArgPrefixes[SpadConfig] = field(default_factory=SpadConfig)

    def run(self) -> int:
        return self._emulate("spad", "SPAD")


@dataclass
class Rgb(_Emulate):
    """Conventional RGB camera: motion blur, rolling shutter, Bayer sensor noise, ISP, 8-bit PNGs."""

    config: tyro.conf.OmitArgPrefixes[RgbConfig] = field(default_factory=RgbConfig)

    def run(self) -> int:
        return self._emulate("rgb", "RGB")


@dataclass
class Events(_Emulate):
    """Event camera (v2e pixel model, interpolated timestamps): events.h5 plus previews."""

    config: tyro.conf.OmitArgPrefixes[EventsConfig] = field(default_factory=EventsConfig)

    def run(self) -> int:
        return self._emulate("events", "events")


@dataclass
class Imu(_Emulate):
    """IMU from the camera trajectory: EuRoC-style CSV + YAML, noiseless ground truth alongside."""

    config: tyro.conf.OmitArgPrefixes[ImuConfig] = field(default_factory=ImuConfig)

    def run(self) -> int:
        return self._emulate("imu", "IMU")


@dataclass
class Itof(_Emulate):
    """Indirect time-of-flight camera: K taps per frequency from radial depth, albedo and ambient light, each tap at
    its own source frame (motion between taps); frames.npy (N, H, W, taps) uint16."""

    config: tyro.conf.OmitArgPrefixes[ItofConfig] = field(default_factory=ItofConfig)

    def run(self) -> int:
        return self._emulate("itof", "iToF")


@dataclass
class Lidar(_Emulate):
    """Single-photon direct time-of-flight LiDAR (needs the albedo pass): per-pixel photon-count histograms
    (histograms.npy, equi-width or equi-depth) and organised point clouds in the camera and world frames
    (points.npy) with per-point times (flash, row or rotating scans)."""

    config: tyro.conf.OmitArgPrefixes[LidarConfig] = field(default_factory=LidarConfig)

    def run(self) -> int:
        return self._emulate("lidar", "LiDAR")


Emulate = Union[  # noqa: UP007 - tyro reads the Annotated members of a typing.Union
    Annotated[Spad, tyro.conf.subcommand("spad")],
    Annotated[Rgb, tyro.conf.subcommand("rgb")],
    Annotated[Events, tyro.conf.subcommand("events")],
    Annotated[Imu, tyro.conf.subcommand("imu")],
    Annotated[Itof, tyro.conf.subcommand("itof")],
    Annotated[Lidar, tyro.conf.subcommand("lidar")],
]
"""`camsim emulate <sensor>`: one registry entry; tyro builds the nested subcommands from this union."""

__all__ = ["Emulate", "Events", "Imu", "Itof", "Lidar", "Rgb", "Spad"]
