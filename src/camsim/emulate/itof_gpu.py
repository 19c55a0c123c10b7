"""iToF taps digitised on a torch device: `itof.digitise`'s steps, drawn by PyTorch (see `emulate.gpu`).

The tap's mean electrons are the numpy path's (`itof.tap_mean`, on the host); the device draws the photon
counts and the read noise and quantises: Poisson counts of the mean (capped as the numpy path caps it),
clipped at the full well, read noise, the ADC's gain, rounding and range.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from camsim.emulate.gpu import reseed

if TYPE_CHECKING:
    import torch

    from camsim.emulate.itof import ItofConfig


class TorchDigitiser:
    """`__call__(mean_e, index)` -> (uint16 DN, saturated pixels) of tap `index`, as `itof.digitise`."""

    def __init__(self, cfg: ItofConfig, device: torch.device) -> None:
        import torch

        self.torch, self.cfg, self.device = torch, cfg, device
        self._local = threading.local()  # a generator per worker thread

    def __call__(self, mean_e: np.ndarray, index: int) -> tuple[np.ndarray, int]:
        torch, cfg = self.torch, self.cfg
        mean = torch.from_numpy(np.ascontiguousarray(mean_e, np.float32)).to(self.device)
        if cfg.noise:
            g = getattr(self._local, "generator", None)
            if g is None:
                g = self._local.generator = torch.Generator(device=self.device)
            reseed(g, cfg.seed, "itof_tap", index)
            e = torch.poisson(mean.clamp(max=4.0 * cfg.full_well + 1000.0), generator=g)
            full = e >= cfg.full_well
            e.clamp_(max=cfg.full_well)
            e += cfg.read_noise * torch.randn(e.shape, generator=g, device=self.device)
        else:
            full = mean >= cfg.full_well
            e = mean.clamp(max=cfg.full_well)
        white = 2**cfg.adc_bits - 1
        dn = torch.round(e * cfg.dn_per_electron())
        saturated = int(torch.count_nonzero(full | (dn >= white)))
        return dn.clamp_(0, white).to(torch.int32).cpu().numpy().astype(np.uint16), saturated
