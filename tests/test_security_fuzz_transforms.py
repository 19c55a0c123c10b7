"""Fuzzing the transforms.json reader, the validator and the dataset loader: hostile or broken input raises a
DatasetError (a UserInputError: one line, exit code 2 in the CLI), never anything else.

The oracle: a sequence `camsim validate` passes must load (every item decodes), and known-bad sequences must
be refused; the fuzz run fails unless it met both accepted and refused sequences, so a validator that accepts
(or refuses) everything cannot pass."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from camsim import transforms
from camsim.errors import UserInputError
from camsim.fileio import write_exr, write_image
from camsim.loader import Dataset
from camsim.summary import describe
from camsim.validate import validate_dataset

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
    file = draw(st.one_of(st.just("f.png"), st.sampled_from(FILES)))  # often a good file: some validate
    frames = [
        {"file_path": file, "transform_matrix": EYE, "frame_number": i + 1, "time": i / 24.0}
        for i in range(draw(st.integers(1, 3)))  # no frames at all: KNOWN_BAD
    ]
    meta: dict[str, Any] = {"fl_x": 10.0, "fl_y": 10.0, "cx": 4.0, "cy": 3.0, "w": 8, "h": 6, "fps": 24.0,
                            "frames": frames}  # fmt: skip
    if draw(st.booleans()):  # an NPY dataset: one array per modality, named at the top level
        meta["file_path"] = draw(
            st.sampled_from(["a.npy", "a.npy", "bits.npy", "b.npy", "junk.npy", "objects.npy"])
        )
        for fr in frames:
            fr.pop("file_path")
        if draw(st.booleans()):
            meta["bitpack"] = draw(st.one_of(st.just(True), values))
            meta["bitpack_dim"] = draw(st.one_of(st.integers(-5, 5), values))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4]))):  # unchanged often enough to validate
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


def _sequence(meta: Any) -> Path:
    """A sequence folder holding the fuzz files and `meta` as its transforms.json."""
    seq = Path(tempfile.mkdtemp(dir=_ROOT))
    for f in _ROOT.iterdir():
        if f.is_file():
            shutil.copy(f, seq / f.name)
    (seq / "transforms.json").write_text(json.dumps(meta))
    return seq


def _validates(seq: Path) -> bool:
    """What `camsim validate` says (exit 0 or not); it raises nothing but a DatasetError."""
    try:
        return validate_dataset(seq).ok
    except UserInputError:
        return False


def _load_every_item(seq: Path, meta: dict[str, Any]) -> None:
    ds = Dataset.from_path(seq)
    assert len(ds) == len(meta["frames"])
    # Every kind the sequence lists decodes, at the size it records: h and w, each where transforms.json has
    # it (without them the files' own size is the picture's: a bit-packed array read unpacked is 6x1).
    recorded = (meta.get("h"), meta.get("w"))
    for item in ds:
        for name in ds.modalities():
            shape = item[name].shape[:2]
            assert all(r is None or n == r for n, r in zip(shape, recorded, strict=True)), (name, shape)
    describe(seq)


NO_WIDTH: dict[str, Any] = {
    "fl_x": 10.0, "fl_y": 10.0, "cx": 4.0, "cy": 3.0, "h": 6, "fps": 24.0,
    "frames": [{"transform_matrix": EYE, "frame_number": 1, "time": 0.0}],
}  # fmt: skip


def test_what_validates_loads_and_the_loader_raises_only_dataset_errors() -> None:
    seen = {"validated": 0, "refused": 0}

    @SETTINGS
    @given(meta=metas())
    @example(meta={**NO_WIDTH, "file_path": "bits.npy"})  # found by this test: bits.npy unpacked is 6x1
    def check(meta: Any) -> None:
        seq = _sequence(meta)
        try:
            if _validates(seq):  # the oracle: then every item loads, with no error at all
                seen["validated"] += 1
                _load_every_item(seq, meta)
            else:
                seen["refused"] += 1
                with contextlib.suppress(UserInputError):
                    ds = Dataset.from_path(seq)
                    for item in ds:
                        assert isinstance(item, dict)
                    describe(seq)
        finally:
            shutil.rmtree(seq, ignore_errors=True)

    check()
    assert seen["validated"] >= 5 and seen["refused"] >= 5, seen


GOOD: dict[str, Any] = {
    "fl_x": 10.0, "fl_y": 10.0, "cx": 4.0, "cy": 3.0, "w": 8, "h": 6, "fps": 24.0,
    "frames": [{"file_path": "f.png", "transform_matrix": EYE, "frame_number": i + 1, "time": i / 24.0}
               for i in range(2)],
}  # fmt: skip


def _npy(file: str, frames: int = 2, **top: Any) -> dict[str, Any]:
    meta = json.loads(json.dumps(GOOD))
    meta["frames"] = [{k: v for k, v in fr.items() if k != "file_path"} for fr in meta["frames"]][:frames]
    meta["frames"] += [{"transform_matrix": EYE, "frame_number": i + 1} for i in range(2, frames)]
    return {**meta, "file_path": file, **top}


def _frames(**change: Any) -> dict[str, Any]:
    meta = json.loads(json.dumps(GOOD))
    meta["frames"][1].update(change)
    return meta


KNOWN_GOOD = {
    "png frames": GOOD,
    "npy array": _npy("a.npy"),
    "bit-packed npy": _npy("bits.npy", bitpack=True, bitpack_dim=2),
}
KNOWN_BAD = {
    "path escaping the folder": _frames(file_path="../outside.png"),
    "absolute path": _frames(file_path="/etc/hostname"),
    "missing file": _frames(file_path="missing.png"),
    "undecodable png": _frames(file_path="junk.png"),
    "picture of another size": {**GOOD, "w": 16},
    "3x4 pose": _frames(transform_matrix=EYE[:3]),
    "pose with NaN": _frames(transform_matrix=[[float("nan")] * 4] * 4),
    "frames not a list": {**GOOD, "frames": {"0": GOOD["frames"][0]}},
    "no frames": {**GOOD, "frames": []},
    "zero fps": {**GOOD, "fps": 0},
    "boolean width": {**GOOD, "w": True},
    "repeated frame number": _frames(frame_number=1),
    "time not a number": _frames(time="soon"),
    "array of another shape": _npy("b.npy"),
    "array shorter than the frames": _npy("a.npy", frames=3),
    "truncated npy": _npy("junk.npy"),
    "object array": _npy("objects.npy"),
    "bitpack axis out of range": _npy("bits.npy", bitpack=True, bitpack_dim=7),
}


@pytest.mark.parametrize("name", KNOWN_GOOD)
def test_known_good_sequences_validate_and_load(name: str) -> None:
    seq = _sequence(KNOWN_GOOD[name])
    try:
        assert _validates(seq), validate_dataset(seq).problems
        _load_every_item(seq, KNOWN_GOOD[name])
    finally:
        shutil.rmtree(seq, ignore_errors=True)


@pytest.mark.parametrize("name", KNOWN_BAD)
def test_known_bad_sequences_are_refused(name: str) -> None:
    seq = _sequence(KNOWN_BAD[name])
    try:
        assert not _validates(seq), f"validate accepted a sequence with {name}"
    finally:
        shutil.rmtree(seq, ignore_errors=True)


def teardown_module() -> None:
    shutil.rmtree(_ROOT, ignore_errors=True)
