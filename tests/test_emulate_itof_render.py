"""End to end on a real render: Blender renders squares of known materials with the albedo pass, `camsim emulate
itof` (noiseless, 16-bit) turns them into taps, and `decode` gives back the rendered depth along each ray and
the amplitude the albedo, normals and inverse-square law predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clirun import run_ok
from conftest import FAST, TESTS
from scipy.ndimage import binary_erosion

from camsim import transforms
from camsim.emulate.itof import decode, read_taps
from camsim.emulate.light import LUMA
from camsim.fileio import read_exr

pytestmark = pytest.mark.blender

FW, QE, POWER = 1e9, 0.35, 2e10


def test_rendered_scene_decodes_to_its_radial_depth(build_scene, render, tmp_path):
    blend = build_scene("itof-squares", script=TESTS / "scenes" / "albedo.py")
    seq = render(blend, "itof-squares", FAST.replace(albedo=True, linear=True), frame_start=1, frame_end=4)
    out = tmp_path / "itof"
    run_ok("emulate", "itof", seq, out, "--no-noise", "--adc-bits", "16", "--full-well", FW, "--qe", QE,
           "--source-power", POWER, "--workers", "1")  # fmt: skip
    meta = json.loads((out / "transforms.json").read_text())
    depth, amp = decode(read_taps(out), meta)
    src = transforms.read(seq)
    fr = src["frames"][0]
    z = read_exr(seq / fr["depth_file_path"])
    albedo = read_exr(seq / fr["albedo_file_path"], ("R", "G", "B")) @ LUMA
    normal = read_exr(seq / fr["normal_file_path"], ("R", "G", "B"))
    K = transforms.intrinsics(src, 0)
    u = (np.arange(src["w"]) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(src["h"]) + 0.5 - K[1, 2]) / K[1, 1]
    rays = np.stack(np.broadcast_arrays(u[None, :], -v[:, None], -np.ones((src["h"], 1))), -1)
    norm = np.linalg.norm(rays, axis=-1)
    radial = z * norm
    hit = (z < 1e9) & (albedo > 0.05)
    assert hit.sum() > 800
    assert np.abs(depth[0][hit] - radial[hit]).max() < 1e-3
    inside = binary_erosion(hit, iterations=2)
    cos_i = np.abs((normal * rays).sum(-1)) / norm
    want = (2**16 - 1) / FW * QE * POWER * albedo * cos_i / radial**2
    assert np.abs(amp[0][inside] / want[inside] - 1).max() < 5e-3
    assert amp[0][z >= 1e9].max() < 1.0  # the black world returns nothing
