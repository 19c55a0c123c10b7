"""Sensor emulation on rendered sequences: SPAD, conventional RGB, event camera, IMU.

Each emulator is one function `emulate_<sensor>(input_dir, output_dir, cfg, overwrite, progress)` with a
dataclass config; outputs are seeded, reproducible whatever the batch size, and streamed in batches.
"""

from __future__ import annotations

from camsim.emulate.events import EventsConfig, emulate_events, read_events
from camsim.emulate.imu import ImuConfig, emulate_imu
from camsim.emulate.rgb import RgbConfig, emulate_rgb
from camsim.emulate.spad import SpadConfig, emulate_spad, unpack_frames

__all__ = [
    "EventsConfig",
    "ImuConfig",
    "RgbConfig",
    "SpadConfig",
    "emulate_events",
    "emulate_imu",
    "emulate_rgb",
    "emulate_spad",
    "read_events",
    "unpack_frames",
]
