"""A render's ground-truth files keep to the encodings its transforms.json states: the same frames of a demo scene
rendered exactly (float32 everywhere), with the default encodings (flow on a 1/2048 px grid) and with the
smallest ones offered (flow on a 1/64 px grid, half-float normals, PIZ) differ by at most each kind's stated
`max_abs_error`; readers (loader, validate) get float32 back either way."""

from __future__ import annotations

import numpy as np
import OpenEXR
import pytest
from conftest import FAST

from camsim import transforms
from camsim.dataset import Dataset
from camsim.encoding import encodings_of, encodings_record
from camsim.fileio import read_exr
from camsim.layout import SequenceLayout
from camsim.validate import validate_dataset

pytestmark = pytest.mark.blender

CONFIGS = {
    "exact": FAST.replace(flow_grid=0, exr_codec="zip"),
    "default": FAST,
    "small": FAST.replace(flow_grid=64, normal_precision="half", exr_codec="piz"),
}


@pytest.fixture(scope="module")
def renders(demo_scenes, render):
    return {name: render(demo_scenes[0], f"encodings-{name}", cfg, frame_start=290, frame_end=292)
            for name, cfg in CONFIGS.items()}  # fmt: skip


def stored(path) -> tuple[str, set[str]]:
    """The compression and the pixel types of an EXR file as written (camsim's readers widen half)."""
    with OpenEXR.File(str(path), separate_channels=True) as f:
        part = f.parts[0]
        return str(part.header["compression"]), {str(c.pixels.dtype) for c in part.channels.values()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_transforms_json_states_each_kinds_encoding(renders, name):
    meta = transforms.read(renders[name])
    settings = CONFIGS[name].settings
    kinds = SequenceLayout.of(renders[name], settings).kinds
    assert meta["encodings"] == encodings_record(encodings_of(kinds, settings))
    assert set(meta["encodings"]) == {"depth", "normal", "flow", "segmentation"}
    fr = meta["frames"][0]
    for kind in kinds:
        enc = meta["encodings"][kind.name]
        compression, types = stored(renders[name] / fr[kind.key])
        assert compression == f"Compression.{enc['codec'].upper()}_COMPRESSION"
        assert types == {"float32": {"float32"}, "half": {"float16"}, "uint32": {"uint32"}}[enc["precision"]]


@pytest.mark.parametrize("name", ["default", "small"])
def test_every_value_is_within_the_stated_bound_of_the_exact_render(renders, name):
    exact_meta, meta = transforms.read(renders["exact"]), transforms.read(renders[name])
    assert all(e["max_abs_error"] == 0 for e in exact_meta["encodings"].values())
    kinds = SequenceLayout.of(renders[name], CONFIGS[name].settings).kinds
    worst = dict.fromkeys((k.name for k in kinds), 0.0)
    for ex, fr in zip(exact_meta["frames"], meta["frames"], strict=True):
        for kind in kinds:
            a = read_exr(renders["exact"] / ex[kind.key], kind.channels)
            b = read_exr(renders[name] / fr[kind.key], kind.channels)
            assert b.dtype == a.dtype and b.shape == a.shape
            finite = np.isfinite(a)
            assert np.array_equal(np.isfinite(b), finite) and np.array_equal(a[~finite], b[~finite])
            err = np.abs(b[finite].astype(np.float64) - a[finite])
            worst[kind.name] = max(worst[kind.name], float(err.max(initial=0.0)))
            grid = meta["encodings"][kind.name].get("grid")
            if grid:
                assert np.all(np.mod(b.astype(np.float64) / grid, 1.0) == 0), kind.name
    bounds = {k: e["max_abs_error"] for k, e in meta["encodings"].items()}
    assert all(worst[k] <= bounds[k] for k in worst), (worst, bounds)
    assert worst["depth"] == worst["segmentation"] == 0
    assert worst["flow"] > 0.5 * bounds["flow"]  # the flow was rounded (it moves), by up to the bound
    if name == "small":
        assert 0 < worst["normal"] <= 2**-12
    else:
        assert worst["normal"] == 0


@pytest.mark.parametrize("name", ["default", "small"])
def test_readers_get_float32_and_validate_accepts(renders, name):
    item = Dataset.from_path(renders[name], modalities=["normal", "flow", "depth"])[0]
    assert item["normal"].dtype == item["flow"].dtype == item["depth"].dtype == np.float32
    assert validate_dataset(renders[name]).ok
