"""Sensor emulation on rendered sequences: SPAD, conventional RGB, event camera, IMU, indirect time-of-flight,
single-photon LiDAR.

Each emulator is one function `emulate_<sensor>(input_dir, output_dir, cfg, overwrite, progress, workers)`
with a dataclass config; outputs are seeded, reproducible whatever the batch size or worker count, and
streamed in batches. `emulate_tree(sensor, ...)` runs one on every sequence below a dataset folder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use (PEP 562): a command that needs only the configs (create-datasets' options) does not
# pay for every emulator's dependencies (scipy.special, scipy.ndimage) before its Blender can start.
_WHERE = {
    "EventsConfig": "events",
    "emulate_events": "events",
    "read_events": "events",
    "ImuConfig": "imu",
    "emulate_imu": "imu",
    "ItofConfig": "itof",
    "emulate_itof": "itof",
    "LidarConfig": "lidar",
    "emulate_lidar": "lidar",
    "RgbConfig": "rgb",
    "emulate_rgb": "rgb",
    "emulate_tree": "sensors",
    "SpadConfig": "spad",
    "emulate_spad": "spad",
    "unpack_frames": "spad",
}

if TYPE_CHECKING:
    from camsim.emulate.events import EventsConfig, emulate_events, read_events
    from camsim.emulate.imu import ImuConfig, emulate_imu
    from camsim.emulate.itof import ItofConfig, emulate_itof
    from camsim.emulate.lidar import LidarConfig, emulate_lidar
    from camsim.emulate.rgb import RgbConfig, emulate_rgb
    from camsim.emulate.sensors import emulate_tree
    from camsim.emulate.spad import SpadConfig, emulate_spad, unpack_frames


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"camsim.emulate.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'camsim.emulate' has no attribute {name!r}")


__all__ = [
    "EventsConfig",
    "ImuConfig",
    "ItofConfig",
    "LidarConfig",
    "RgbConfig",
    "SpadConfig",
    "emulate_events",
    "emulate_imu",
    "emulate_itof",
    "emulate_lidar",
    "emulate_rgb",
    "emulate_spad",
    "emulate_tree",
    "read_events",
    "unpack_frames",
]
