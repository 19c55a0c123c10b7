"""`camsim demo`'s comparison of active sensors with the renderer (emulate/active_check.py): on a plane in
closed form, without noise, the iToF decoded depth and the LiDAR ranges land on the rendered radial depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_active import pinhole_radial, plane_frame, write_active_sequence

from camsim.emulate import sensors
from camsim.emulate.active_check import itof_check, lidar_check, picture
from camsim.emulate.itof import ItofConfig
from camsim.emulate.lidar_config import LidarConfig

H, W, Z = 12, 16, 3.0


def _emulate(name: str, cfg, src: Path, out: Path) -> Path:
    from camsim.emulate.light import run_emulator

    sensor = sensors.SENSORS[name]
    return run_emulator(sensor.run, sensor.total, cfg, src, out, False, None, 1)


def test_noiseless_itof_and_lidar_agree_with_the_rendered_radial_depth(tmp_path: Path) -> None:
    src = write_active_sequence(tmp_path / "src", lambda i: plane_frame(H, W, Z), 8, H, W)
    itof = _emulate(
        "itof",
        ItofConfig(noise=False, adc_bits=16, full_well=1e12, ambient_scale=0.0, source_power=1e12 * Z**2),
        src,
        tmp_path / "itof",
    )
    lidar = _emulate(
        "lidar", LidarConfig(ambient_rate=0.0, dark_count_rate=0.0, seed=1), src, tmp_path / "lidar"
    )
    # a deep well and a 16-bit ADC: quantisation far below 1 mm
    truth = pinhole_radial(H, W, Z)
    a, b = itof_check(itof, src), lidar_check(lidar)
    assert np.allclose(a.truth, truth, rtol=1e-5)
    assert a.pixels == H * W and a.median_error_m < 1e-3
    assert b.pixels == H * W and b.median_error_m < 0.0375  # one TDC bin: c x 250 ps / 2
    img = picture([a, b])
    assert img.shape == (2 * H, 3 * W, 3) and img.dtype == np.uint8
