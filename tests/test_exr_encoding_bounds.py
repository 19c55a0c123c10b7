"""Ground-truth encodings (camsim.encoding): every codec is bit-exact, every precision stays within the bound
transforms.json states, readers get float32 back, and the choice is a render setting resume compares."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from camsim.config import RenderConfig
from camsim.encoding import (
    CODECS,
    FLOW_GRID_MAX,
    HALF_ERROR,
    Encoding,
    codec_available,
    encoding_of,
    encodings_of,
    encodings_record,
)
from camsim.errors import ConfigError
from camsim.fileio import read_exr, read_exr_parts, write_exr
from camsim.passes import DEPTH, FLOW, NORMAL, RENDERED, SEGMENTATION
from camsim.resume import RenderRecord, difference, settings_hash

AVAILABLE = [c for c in CODECS if codec_available(c)]
GRIDS = [2**k for k in range(0, 21, 4)] + [2048]
shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))


def roundtrip(channels: dict[str, np.ndarray], codec: str, names: tuple[str, ...] | None = None):
    """Write `channels` with `codec` and read them back (every channel, or `names` as one array)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.exr"
        write_exr(path, channels, codec)
        return read_exr_parts(path) if names is None else read_exr(path, names)


@pytest.mark.parametrize("codec", AVAILABLE)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_every_codec_gives_every_bit_back(codec, shape, seed):
    """float32 and uint32 of any bit pattern (NaN payloads, infinities, subnormals) come back bit for bit;
    half channels come back as float32 holding exactly the half values."""
    rng = np.random.default_rng(seed)
    f32 = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
    f16 = rng.integers(0, 2**16, shape, dtype=np.uint32).astype(np.uint16).view(np.float16)
    back = roundtrip({"F": f32.view(np.float32), "H": f16, "U": f32}, codec)
    assert back["F"].dtype == np.float32 and np.array_equal(back["F"].view(np.uint32), f32)
    assert back["U"].dtype == np.uint32 and np.array_equal(back["U"], f32)
    assert back["H"].dtype == np.float32
    np.testing.assert_array_equal(back["H"], f16.astype(np.float32))  # NaNs compare equal here


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("n", GRIDS)
@given(
    values=arrays(
        np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(4)), elements=finite_f32
    )
)
def test_flow_on_a_grid_is_within_half_a_step_and_read_back_exactly(n, values):
    enc = Encoding("zip", "float32", 1.0 / n)
    stored = enc.store(values)
    exact = values.astype(np.float64)
    assert stored.dtype == np.float32
    assert np.abs(stored.astype(np.float64) - exact).max() <= enc.max_abs_error == 0.5 / n
    assert np.all(np.mod(stored.astype(np.float64) * n, 1.0) == 0)  # on the grid
    assert np.array_equal(roundtrip(enc.channels(FLOW, values), "zip", FLOW.channels), stored)


unit = st.tuples(*(st.floats(-1, 1, allow_nan=False),) * 3).filter(lambda v: np.linalg.norm(v) > 1e-3)


@pytest.mark.parametrize("codec", AVAILABLE)
@given(vectors=st.lists(unit, min_size=1, max_size=60))
def test_half_normals_are_within_two_to_the_minus_twelve(codec, vectors):
    n = np.array(vectors, np.float64)
    n = (n / np.linalg.norm(n, axis=1, keepdims=True)).astype(np.float32).reshape(1, -1, 3)
    enc = Encoding(codec, "half")
    back = roundtrip(enc.channels(NORMAL, n), codec, NORMAL.channels)
    assert back.dtype == np.float32 and back.shape == n.shape
    assert np.abs(back.astype(np.float64) - n).max() <= enc.max_abs_error == HALF_ERROR
    assert np.abs(np.linalg.norm(back, axis=-1) - 1).max() <= np.sqrt(3) * HALF_ERROR + 1e-7


def test_half_refuses_values_it_cannot_bound():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        Encoding("zip", "half").store(np.array([[1.5]], np.float32))


@pytest.mark.parametrize("codec", AVAILABLE)
def test_lossless_kinds_are_exact_with_every_codec(codec):
    rng = np.random.default_rng(3)
    depth = rng.random((9, 7)).astype(np.float32) * 50
    depth[0, :3] = np.inf
    ids = rng.integers(0, 2**32, (9, 7), dtype=np.uint64).astype(np.uint32)
    settings = RenderConfig(exr_codec=codec, flow_grid=0).settings
    for kind, arr in (
        (DEPTH, depth),
        (SEGMENTATION, ids),
        (FLOW, rng.normal(0, 30, (9, 7, 4)).astype(np.float32)),
    ):
        enc = encoding_of(kind, settings)
        assert enc.codec == codec and enc.max_abs_error == 0
        back = roundtrip(enc.channels(kind, arr), enc.codec, kind.channels)
        assert back.dtype == arr.dtype and np.array_equal(back, arr)


def test_the_record_states_each_kinds_bound():
    defaults = encodings_record(encodings_of(RENDERED, RenderConfig().settings))
    assert defaults["flow"] == {
        "codec": "zip",
        "precision": "float32",
        "grid": 1 / 2048,
        "max_abs_error": 1 / 4096,
    }
    for name in ("depth", "normal", "scene_flow", "disparity", "linear", "albedo"):
        assert defaults[name]["precision"] == "float32" and defaults[name]["max_abs_error"] == 0, name
    assert defaults["segmentation"] == defaults["semantic"] == {"codec": "zip", "precision": "uint32",
                                                                "max_abs_error": 0.0}  # fmt: skip
    assert defaults["linear"]["codec"] == "piz"  # auto: the smallest universally readable codec
    small = encodings_record(
        encodings_of(RENDERED, RenderConfig(flow_grid=64, normal_precision="half").settings)
    )
    assert small["flow"]["max_abs_error"] == 1 / 128 and small["normal"]["max_abs_error"] == 2**-12
    exact = encodings_record(encodings_of(RENDERED, RenderConfig(flow_grid=0).settings))
    assert exact["flow"] == {"codec": "piz", "precision": "float32", "max_abs_error": 0.0}
    assert json.loads(json.dumps(defaults)) == defaults


@pytest.mark.parametrize("n", [3, 6, -2, FLOW_GRID_MAX * 2])
def test_a_flow_grid_must_be_a_power_of_two(n):
    with pytest.raises(ConfigError, match=r"--render-config\.flow-grid"):
        RenderConfig(flow_grid=n).validate()


def test_a_codec_this_openexr_lacks_is_refused(monkeypatch):
    import OpenEXR

    monkeypatch.delattr(OpenEXR, "ZSTD_COMPRESSION", raising=False)
    with pytest.raises(ConfigError, match=r"--render-config.exr-codec needs OpenEXR 3\.5"):
        RenderConfig(exr_codec="zstd").validate()


@pytest.mark.parametrize("change", [{"exr_codec": "piz"}, {"flow_grid": 64}, {"flow_grid": 0},
                                    {"normal_precision": "half"}])  # fmt: skip
def test_another_encoding_is_another_render(change):
    def record(**kw: object) -> RenderRecord:
        return RenderRecord("a.blend", 1, 3, json.loads(json.dumps(RenderConfig(**kw).render_settings())))

    assert settings_hash(record(**change).render) != settings_hash(record().render)
    flag = next(iter(change)).replace("_", "-")
    assert (difference(record(), record(**change)) or "").startswith(f"--render-config.{flag}=")
