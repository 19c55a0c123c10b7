"""The emulators' optional GPU path: PyTorch on a CUDA device, chosen by a sensor config's `device`.

`cpu` (the default) draws with numpy: bit-identical on every machine. `cuda` draws with PyTorch's generator
(Philox on the GPU) re-seeded for every frame from the same key as the numpy path, (seed, stream, index)
(`common.seed_sequence`), so a GPU run keeps the seeding semantics: deterministic for a seed on one GPU and
PyTorch version, and independent of batch size and workers. It is not bit-identical to the numpy path: the
generator differs, the law is the same. `auto` takes the GPU when PyTorch sees one. Without PyTorch or a GPU,
`cuda` falls back to numpy with a warning (as rendering falls back to the CPU) and `auto` quietly. The settings
record the device the draws ran on (`runs_on`: a fallback is `cpu`), and params.json says what ran
(`device_used`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from camsim.emulate.common import seed_sequence
from camsim.errors import ConfigError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Device = Literal["cpu", "cuda", "auto"]
DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")


@dataclass
class OnDevice:
    """The `device` field of the sensors that have a GPU path (SPAD, RGB, iToF)."""

    device: Device = "cpu"
    """Where the random draws and the per-pixel model run: cpu (numpy, bit-identical on every machine), cuda (PyTorch on an NVIDIA GPU: the same seeding from another generator, so other bits of the same law; without PyTorch or a GPU it falls back to cpu with a warning) or auto (cuda when PyTorch sees a GPU)."""

    def check_device(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")


def choose(requested: str) -> tuple[torch.device | None, str]:
    """The torch device `requested` gets here (None: the numpy path) and, when it falls back, why."""
    if requested == "cpu":
        return None, ""
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA GPU"
    return torch.device("cuda"), ""


def resolve(requested: str) -> torch.device | None:
    """The torch device a run uses for `requested`, or None for the numpy path (saying so when `cuda` falls
    back: a warning; `auto`: at info level)."""
    device, why = choose(requested)
    if device is None and requested != "cpu":
        (log.warning if requested == "cuda" else log.info)(
            "device %s: %s; drawing on the CPU (numpy)", requested, why
        )
    return device


def runs_on(requested: str) -> str:
    """The device as the settings record it: where the draws really run (`cpu` when `cuda` or `auto` falls
    back: the numpy path's bits), so outputs drawn by different generators never count as the same settings."""
    device, _ = choose(requested)
    return "cpu" if device is None else device.type


def cuda_available() -> bool:
    """PyTorch is installed and sees a CUDA GPU."""
    return choose("cuda")[0] is not None


def describe(device: torch.device | None) -> str:
    """What ran, for params.json: `cpu (numpy)`, or the torch device and, on a GPU, its name."""
    if device is None:
        return "cpu (numpy)"
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}), torch {torch.__version__}"
    return f"{device}, torch {torch.__version__}"


def reseed(generator: Any, seed: int, stream: str, index: int) -> Any:
    """Re-seed a torch.Generator for draw `index` of `stream`, from the same key as `common.rng`."""
    generator.manual_seed(int(seed_sequence(seed, stream, index).generate_state(1, np.uint64)[0]))
    return generator
