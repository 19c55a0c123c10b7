"""`camsim emulate spad|rgb|events|imu INPUT OUTPUT`: turn a rendered sequence into what a sensor records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union

import tyro

from camsim.emulate.events import EventsConfig
from camsim.emulate.imu import ImuConfig
from camsim.emulate.rgb import RgbConfig
from camsim.emulate.spad import SpadConfig


def _progress(description: str, total: int, fn) -> Path:
    """Run `fn(progress_callback)` under a rich progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    ) as bar:
        task = bar.add_task(description, total=total)
        return fn(lambda n: bar.advance(task, n))


def _frame_count(path: Path) -> int:
    from camsim import transforms

    return len(transforms.read(path)["frames"])


@dataclass
class Spad:
    """Single-photon camera: binary (or multi-bit) frames, bit-packed NPY or PNGs."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """Rendered sequence folder (with transforms.json)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output dataset folder."""
    config: tyro.conf.OmitArgPrefixes[SpadConfig] = field(default_factory=SpadConfig)
    overwrite: bool = False
    """Replace an existing dataset in OUTPUT."""

    def run(self) -> int:
        from camsim.emulate.spad import emulate_spad

        out = _progress(
            "SPAD",
            _frame_count(self.input),
            lambda cb: emulate_spad(self.input, self.output, self.config, self.overwrite, cb),
        )
        print(f"SPAD dataset written to {out}")
        return 0


@dataclass
class Rgb:
    """Conventional RGB camera: motion blur, rolling shutter, Bayer sensor noise, ISP, 8-bit PNGs."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """Rendered sequence folder (with transforms.json)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output dataset folder."""
    config: tyro.conf.OmitArgPrefixes[RgbConfig] = field(default_factory=RgbConfig)
    overwrite: bool = False
    """Replace an existing dataset in OUTPUT."""

    def run(self) -> int:
        from camsim.emulate.rgb import emulate_rgb

        self.config.validate()  # before the bar's total divides by chunk_size
        total = max(1, _frame_count(self.input) // self.config.chunk_size)
        out = _progress(
            "RGB", total, lambda cb: emulate_rgb(self.input, self.output, self.config, self.overwrite, cb)
        )
        print(f"RGB dataset written to {out}")
        return 0


@dataclass
class Events:
    """Event camera (v2e pixel model, interpolated timestamps): events.h5 plus previews."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """Rendered sequence folder (with transforms.json)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output dataset folder."""
    config: tyro.conf.OmitArgPrefixes[EventsConfig] = field(default_factory=EventsConfig)
    overwrite: bool = False
    """Replace an existing dataset in OUTPUT."""

    def run(self) -> int:
        from camsim.emulate.events import emulate_events

        out = _progress(
            "events",
            _frame_count(self.input),
            lambda cb: emulate_events(self.input, self.output, self.config, self.overwrite, cb),
        )
        print(f"event dataset written to {out}")
        return 0


@dataclass
class Imu:
    """IMU from the camera trajectory: EuRoC-style CSV + YAML, noiseless ground truth alongside."""

    input: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """Rendered sequence folder (with transforms.json)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output dataset folder."""
    config: tyro.conf.OmitArgPrefixes[ImuConfig] = field(default_factory=ImuConfig)
    overwrite: bool = False
    """Replace an existing dataset in OUTPUT."""

    def run(self) -> int:
        from camsim.emulate.imu import emulate_imu
        from camsim.emulate.light import open_sequence

        seq = open_sequence(self.input, "srgb")
        total = int((seq.times[-1] - seq.times[0]) * self.config.rate) + 1
        out = _progress(
            "IMU", total, lambda cb: emulate_imu(self.input, self.output, self.config, self.overwrite, cb)
        )
        print(f"IMU dataset written to {out}")
        return 0


Emulate = Union[  # noqa: UP007 - tyro reads the Annotated members of a typing.Union
    Annotated[Spad, tyro.conf.subcommand("spad")],
    Annotated[Rgb, tyro.conf.subcommand("rgb")],
    Annotated[Events, tyro.conf.subcommand("events")],
    Annotated[Imu, tyro.conf.subcommand("imu")],
]
"""`camsim emulate <sensor>`: one registry entry; tyro builds the nested subcommands from this union."""

__all__ = ["Emulate", "Events", "Imu", "Rgb", "Spad"]
