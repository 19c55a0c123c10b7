"""Fuzzing the transforms.json reader and the dataset loader: hostile or broken input raises a DatasetError
(a UserInputError: one line, exit code 2 in the CLI), never anything else."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camsim import transforms
from camsim.errors import UserInputError
from camsim.fileio import write_exr, write_image
from camsim.loader import Dataset, describe

EYE = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["../x", "/etc/passwd", "frames/f.png", "d.exr", "a.npy", "C:x"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
KEYS = ["file_path", "depth_file_path", "normal_file_path", "flow_file_path", "segmentation_file_path",
        "linear_file_path", "transform_matrix", "frame_number", "time", "fl_x", "fl_y", "cx", "cy", "w", "h",
        "fps", "frames", "bitpack", "bitpack_dim", "channels", "segmentation_ids", "events_file_path"]  # fmt: skip
FILES = ["f.png", "d.exr", "rgb.exr", "a.npy", "b.npy", "bits.npy", "missing.png", "junk.png", "junk.exr",
         "junk.npy", "../outside.png", "/etc/hostname", "", "."]  # fmt: skip
values = st.one_of(json_values, st.sampled_from(FILES), st.just(EYE), st.integers(-3, 9))


@st.composite
def metas(draw: st.DrawFn) -> Any:
    """Mostly well-formed transforms.json content with a few fields replaced by anything."""
    frame = {
        "file_path": draw(st.sampled_from(FILES)),
        "transform_matrix": EYE,
        "frame_number": 1,
        "time": 0.0,
    }
    frames = [dict(frame) for _ in range(draw(st.integers(0, 3)))]
    meta: dict[str, Any] = {"fl_x": 10.0, "fl_y": 10.0, "cx": 4.0, "cy": 3.0, "w": 8, "h": 6, "fps": 24.0,
                            "frames": frames}  # fmt: skip
    if draw(st.booleans()):  # an NPY dataset: one array per modality, named at the top level
        meta["file_path"] = draw(st.sampled_from(["a.npy", "bits.npy", "b.npy", "junk.npy", "objects.npy"]))
        for fr in frames:
            fr.pop("file_path")
        if draw(st.booleans()):
            meta["bitpack"] = draw(st.one_of(st.just(True), values))
            meta["bitpack_dim"] = draw(st.one_of(st.integers(-5, 5), values))
    for _ in range(draw(st.integers(0, 4))):
        target = meta
        if frames and draw(st.booleans()):
            target = frames[draw(st.integers(0, len(frames) - 1))]
        key = draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 5)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(values)
    if draw(st.integers(0, 10)) == 0:
        return draw(json_values)
    return meta


def _files(root: Path) -> None:
    """Real and broken files the fuzzed transforms.json may point at."""
    write_image(root / "f.png", np.full((6, 8, 3), 7, np.uint8))
    write_exr(root / "d.exr", {"Y": np.ones((6, 8), np.float32)})
    write_exr(root / "rgb.exr", {c: np.ones((6, 8), np.float32) for c in "RGB"})
    np.save(root / "a.npy", np.zeros((2, 6, 8, 3), np.uint8))
    np.save(root / "b.npy", np.zeros((5, 7), np.float32))
    np.save(root / "bits.npy", np.packbits(np.zeros((2, 6, 8, 1), np.uint8), axis=2))
    np.save(root / "objects.npy", np.array([{"x": 1}], dtype=object))
    (root / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (root / "junk.exr").write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 20)
    (root / "junk.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"x" * 20)


@SETTINGS
@given(meta=json_values | metas())
def test_validate_raises_only_dataset_errors(meta: Any) -> None:
    with contextlib.suppress(UserInputError):
        transforms.validate(meta)


@SETTINGS
@given(data=st.binary(max_size=200) | metas().map(lambda m: json.dumps(m).encode()))
def test_read_raises_only_dataset_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "transforms.json"
        p.write_bytes(data)
        with contextlib.suppress(UserInputError):
            transforms.read(p)


_ROOT = Path(tempfile.mkdtemp(prefix="camsim-fuzz-"))
_files(_ROOT)


@SETTINGS
@given(meta=metas())
def test_loader_raises_only_dataset_errors(meta: Any) -> None:
    seq = Path(tempfile.mkdtemp(dir=_ROOT))
    try:
        for f in _ROOT.iterdir():
            if f.is_file():
                shutil.copy(f, seq / f.name)
        (seq / "transforms.json").write_text(json.dumps(meta))
        try:
            ds = Dataset.from_path(seq)
            for item in ds:
                assert isinstance(item, dict)
            describe(seq)
        except UserInputError:
            pass
    finally:
        shutil.rmtree(seq, ignore_errors=True)


def teardown_module() -> None:
    shutil.rmtree(_ROOT, ignore_errors=True)
