"""The RGB camera's sensor and ISP on a torch device: `rgb.sense` then `rgb.isp`, drawn by PyTorch (`emulate.gpu`).

Exposure (the mean of the source frames), the Bayer mosaic of the photons, the fixed pattern (drawn once with
numpy) and PNG encoding stay on the host. Per output frame the photons go to the device and the 8-bit sRGB
picture and the raw DN come back. The steps are `rgb.sense`'s and `rgb.isp`'s in float32: photon and dark
Poisson counts, clipped at the full well, read noise, gain, black level, rounding and clipping to the ADC;
then black level off, white to 1, white balance, bilinear demosaic (mirrored borders, as cv2's
BORDER_REFLECT_101), colour matrix and the sRGB curve rounded to 8 bits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from camsim.emulate.gpu import reseed

if TYPE_CHECKING:
    import torch

    from camsim.emulate.rgb import RgbConfig


class TorchCamera:
    """`__call__(photons, index)` -> (HxWx3 uint8 sRGB, raw uint16 DN) of output frame `index`."""

    def __init__(
        self,
        cfg: RgbConfig,
        fpn: tuple[np.ndarray, np.ndarray],
        dark: np.ndarray | None,
        white_e: float,
        device: torch.device,
    ) -> None:
        import torch

        from camsim.emulate.rgb import bayer_channel

        self.torch, self.cfg, self.device, self.white_e = torch, cfg, device, white_e
        self.prnu = torch.from_numpy(np.ascontiguousarray(fpn[0], np.float32)).to(device)
        self.dark = (
            None if dark is None else torch.from_numpy(np.ascontiguousarray(dark, np.float32)).to(device)
        )
        self._local = threading.local()  # a generator per worker thread
        if cfg.bayer:
            channel = torch.from_numpy(bayer_channel(*fpn[0].shape[:2]).astype(np.int64)).to(device)
            wb = torch.tensor(cfg.white_balance, dtype=torch.float32, device=device)
            # Per channel: its sites' white-balance gain, 0 elsewhere (the planes the demosaic fills in).
            self.site_gain = torch.stack([(channel == c) * wb[c] for c in range(3)])  # (3, H, W)
            k_rb = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float32, device=device) / 4
            k_g = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float32, device=device) / 4
            self.kernels = torch.stack([k_rb, k_g, k_rb])[:, None]  # (3, 1, 3, 3): one per channel
        ccm = np.asarray(cfg.color_matrix, np.float32).reshape(3, 3)
        self.ccm = None if np.array_equal(ccm, np.eye(3)) else torch.from_numpy(ccm).to(device)

    def _generator(self, index: int) -> torch.Generator:
        g = getattr(self._local, "generator", None)
        if g is None:
            g = self._local.generator = self.torch.Generator(device=self.device)
        return reseed(g, self.cfg.seed, "rgb_frame", index)

    def __call__(self, photons: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        torch, cfg = self.torch, self.cfg
        p = torch.from_numpy(np.ascontiguousarray(photons, np.float32)).to(self.device)
        if cfg.noise:
            g = self._generator(index)
            e = torch.poisson(p * cfg.qe * self.prnu, generator=g)
            e += torch.poisson(self.dark, generator=g)
            e.clamp_(max=cfg.full_well)
            e += torch.randn(e.shape, generator=g, device=self.device) * cfg.read_noise
        else:
            e = torch.clamp(p * cfg.qe, max=cfg.full_well)
        raw = torch.round(e * cfg.gain + cfg.black_level).clamp_(0, cfg.white_level)
        lin = (raw - cfg.black_level) / (self.white_e * cfg.gain)
        if cfg.bayer:
            planes = torch.nn.functional.pad((lin * self.site_gain)[None], (1, 1, 1, 1), mode="reflect")
            rgb = torch.nn.functional.conv2d(planes, self.kernels, groups=3)[0]  # (3, H, W)
        else:
            rgb = (lin * torch.tensor(cfg.white_balance, dtype=torch.float32, device=self.device)).permute(
                2, 0, 1
            )
        if self.ccm is not None:
            rgb = torch.einsum("ij,jhw->ihw", self.ccm, rgb)
        x = rgb.clamp(0.0, 1.0)
        srgb = torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
        img = torch.round(srgb * 255).to(torch.uint8).permute(1, 2, 0)
        return img.cpu().numpy(), raw.to(torch.int32).cpu().numpy().astype(np.uint16)
