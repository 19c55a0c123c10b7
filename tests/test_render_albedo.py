"""The albedo pass (--render-config.albedo, Cycles' Diffuse Color) against the closed form of each material.

Cycles writes, at the camera ray's first hit, the sum of the weights of the diffuse closures the shader makes
(kernel `surface_shader_diffuse`, averaged over the pixel's samples). A Diffuse BSDF's weight is its Color. The
Principled BSDF (Blender 4+, `svm_node_closure_bsdf`) builds its layers top down, each attenuating the ones
below: after sheen and coat (off here), the metallic lobe takes `metallic` of the weight (weight *= 1 -
metallic), the transmission lobe `transmission` of what is left (weight *= 1 - transmission), then the
dielectric specular layer attenuates the rest by its directional albedo E (weight *= 1 - E, E from Cycles'
GGX tables: about 0.04 at normal incidence for IOR 1.5, roughness 0.5, more at grazing angles); the diffuse
lobe gets base colour x weight (subsurface moves part of it to a BSSRDF, which the pass counts too). So

    albedo = base colour x (1 - metallic) x (1 - transmission) x (1 - E)

and with Specular IOR Level 0 (F0 = 0: no specular layer, E = 0) exactly base x (1 - metallic) x
(1 - transmission). Measured here: the default specular layer leaves 0.962 of the base colour at the squares'
near-normal incidence. The world background has no closure: albedo 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAST, TESTS
from scipy.ndimage import binary_dilation, binary_erosion

from camsim import transforms
from camsim.fileio import read_exr

pytestmark = pytest.mark.blender

TRUTH = {  # closed form: base colour x (1 - metallic) x (1 - transmission), Specular IOR Level 0
    "Diffuse": np.array([0.2, 0.6, 0.9]),
    "Principled": np.array([0.8, 0.3, 0.1]),
    "Metallic": np.array([0.5, 0.7, 0.3]) * (1 - 0.6),
    "Transmission": np.array([0.9, 0.4, 0.6]) * (1 - 0.5),
    "Both": np.array([0.7, 0.5, 0.9]) * (1 - 0.5) * (1 - 0.5),
}


@pytest.fixture(scope="module")
def rendered(build_scene, render):
    blend = build_scene("albedo", script=TESTS / "scenes" / "albedo.py")
    out = render(blend, "albedo", FAST.replace(albedo=True), frame_start=1, frame_end=2)
    meta = transforms.read(out)
    fr = meta["frames"][0]
    albedo = read_exr(out / fr["albedo_file_path"], ("R", "G", "B"))
    seg = read_exr(out / fr["segmentation_file_path"])
    ids = {name: int(k) for k, name in meta["segmentation_ids"].items()}
    return albedo, seg, ids


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels 2 px inside `mask`: the pass is averaged over the pixel filter, so edges mix surfaces."""
    return binary_erosion(mask, iterations=2, border_value=0)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_albedo_is_base_colour_times_one_minus_metallic_times_one_minus_transmission(rendered, name):
    albedo, seg, ids = rendered
    inside = _interior(seg == ids[name])
    assert inside.sum() >= 60, f"{name} covers too few pixels"
    err = np.abs(albedo[inside] - TRUTH[name]).max()
    assert err < 1e-5, (name, err)


def test_default_specular_layer_attenuates_the_diffuse_albedo_by_its_directional_albedo(rendered):
    """Specular IOR Level 0.5, IOR 1.5 (F0 = 0.04), roughness 0.5: 1 - E between 0.95 and 0.99 near normal
    incidence, the same in every channel (a white specular layer)."""
    albedo, seg, ids = rendered
    ratio = albedo[_interior(seg == ids["Specular"])] / 0.6
    assert ratio.min() > 0.95 and ratio.max() < 0.99, (ratio.min(), ratio.max())
    assert np.ptp(ratio, axis=1).max() < 1e-6


def test_albedo_is_zero_on_the_world_background(rendered):
    albedo, seg, _ = rendered
    far = ~binary_dilation(seg > 0, iterations=2)  # the pixel filter reaches 1.5 px
    assert far.sum() > 500
    assert np.abs(albedo[far]).max() == 0.0
