"""SPAD binary frames on a torch device: `spad._binary_frame`'s steps, drawn by PyTorch (see `emulate.gpu`).

The dark-count map and the rate maps stay the numpy path's (drawn once, computed per source frame); only the
per-gate draws and the detection logic run on the device, one rate map sent per source frame and one
detection map (1 byte a pixel) brought back per binary frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from camsim.emulate.gpu import reseed

if TYPE_CHECKING:
    import torch

    from camsim.emulate.spad import SpadConfig


def neighbours(det: torch.Tensor) -> torch.Tensor:
    """Count of detecting 4-neighbours of each pixel (HxWxC float32), as `spad._neighbours`."""
    d = det.float()
    n = d.new_zeros(d.shape)
    n[1:] += d[:-1]
    n[:-1] += d[1:]
    n[:, 1:] += d[:, :-1]
    n[:, :-1] += d[:, 1:]
    return n


class TorchFrames:
    """Binary frames (HxWxC bool, as numpy) for global binary-frame index j, with dead time, afterpulsing and
    crosstalk carried on the device from one frame to the next."""

    def __init__(self, cfg: SpadConfig, device: torch.device) -> None:
        import torch

        self.torch, self.cfg, self.device = torch, cfg, device
        self.generator = torch.Generator(device=device)
        self.prev: torch.Tensor | None = None
        self._source: np.ndarray | None = None
        self._rate: torch.Tensor | None = None

    def __call__(self, rate: np.ndarray, gate: float, period: float, j: int) -> np.ndarray:
        torch, cfg = self.torch, self.cfg
        if rate is not self._source:  # K binary frames share their source frame's rate map
            self._source, self._rate = rate, torch.from_numpy(np.ascontiguousarray(rate)).to(self.device)
        r = self._rate
        g = reseed(self.generator, cfg.seed, "spad_frame", j)
        arrival = torch.empty_like(r).exponential_(generator=g)
        lam = r * gate
        prev = self.prev
        if prev is not None and cfg.dead_time > period - gate:
            blind = min(gate, cfg.dead_time - (period - gate))
            lam = torch.where(prev, r * (gate - blind), lam)
        det = arrival < lam  # the first arrival falls inside the gate: probability 1 - exp(-lam)
        if cfg.afterpulsing > 0 and prev is not None:
            det |= prev & (torch.rand(r.shape, generator=g, device=self.device) < cfg.afterpulsing)
        if cfg.crosstalk > 0:
            p_ct = 1.0 - (1.0 - cfg.crosstalk) ** neighbours(det)
            det |= torch.rand(r.shape, generator=g, device=self.device) < p_ct
        self.prev = det
        return det.cpu().numpy()
