"""dataset.json: what camsim.manifest writes it reads back unchanged; a malformed or newer file is one line
naming what is wrong; the scene cache holds while the file and the camera asked for are the same."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK
from camsim.manifest import (
    FORMAT,
    MANIFEST,
    STAGES,
    STATUSES,
    Manifest,
    SceneRecord,
    SequenceRecord,
    Splits,
    StageState,
    from_json,
    read_manifest,
    scene_cache_valid,
    stage_folder,
    to_json,
    write_manifest,
)

text = st.text(min_size=1, max_size=10)
maybe_text = st.none() | text
ints = st.integers(-(2**40), 2**40)


@st.composite
def manifests(draw) -> Manifest:
    scenes = draw(st.lists(st.text("abcxyz_", min_size=1, max_size=8), min_size=0, max_size=4, unique=True))
    names = ["train", "val", "test"][: draw(st.integers(1, 3))]
    splits = (
        Splits(
            names,
            [1.0 / len(names)] * len(names),
            draw(ints),
            {s: draw(st.sampled_from(names)) for s in scenes},
        )
        if draw(st.booleans())
        else None
    )
    m = Manifest(
        config=draw(st.dictionaries(text, st.integers() | st.booleans() | maybe_text, max_size=3)),
        blender_version=draw(maybe_text),
        stages=draw(
            st.lists(st.sampled_from(list(STAGES)), unique=True).map(lambda s: [x for x in STAGES if x in s])
        ),
        keep_interpolated=draw(st.booleans()),
        splits=splits,
    )
    for s in scenes:
        m.scenes[s] = SceneRecord(
            draw(text), draw(st.integers(0, 2**40)), draw(ints), draw(maybe_text), draw(st.none() | ints),
            draw(st.none() | ints), draw(st.lists(ints, max_size=3)), draw(maybe_text), draw(maybe_text),
        )  # fmt: skip
        for first in draw(st.lists(st.integers(0, 9999), max_size=2, unique=True)):
            states = {}
            for stage in draw(st.lists(st.sampled_from(list(STAGES)), unique=True)):
                status = draw(st.sampled_from(STATUSES))
                states[stage] = StageState(
                    status, draw(st.none() | st.text("0123456789abcdef", min_size=16, max_size=16)),
                    draw(text) if status == "failed" else None,
                )  # fmt: skip
            split = splits.scenes[s] if splits else None
            m.sequences[f"{s}/{first:06d}-{first + 9:06d}-x1"] = SequenceRecord(
                s, split, first, first + 9, states
            )
    return m


@given(m=manifests())
def test_a_manifest_survives_json_unchanged(m):
    data = json.loads(json.dumps(to_json(m), allow_nan=False))
    assert from_json(data) == m
    assert data["format"] == FORMAT
    assert list(data["sequences"]) == list(m.sequences)  # the order is the loader's order


def test_write_then_read_gives_it_back_atomically_and_none_when_absent(tmp_path):
    assert read_manifest(tmp_path) is None
    m = Manifest(config={"seed": 3}, blender_version="5.0.1", stages=["render", "spad"])
    m.sequences["a/000001-000010-x1"] = SequenceRecord(
        "a",
        None,
        1,
        10,
        {"render": StageState("complete", "0123456789abcdef"), "spad": StageState("failed", None, "boom")},
    )
    path = write_manifest(tmp_path, m)
    assert path == tmp_path / MANIFEST and read_manifest(tmp_path) == m
    m.stages.append("imu")
    write_manifest(tmp_path, m)  # replaced whole
    assert read_manifest(tmp_path) == m
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]  # no temporary left
    assert not any(TMP_MARK in p.name for p in tmp_path.iterdir())
    assert (
        json.loads(path.read_text())["sequences"]["a/000001-000010-x1"]["stages"]["spad"]["error"] == "boom"
    )


def _valid() -> dict:
    m = Manifest(stages=["render"], splits=Splits(["train"], [1.0], 0, {"a": "train"}))
    m.scenes["a"] = SceneRecord("/s/a.blend", 10, 5, None, 1, 20, [7])
    m.sequences["a/000001-000010-x1"] = SequenceRecord(
        "a", "train", 1, 10, {"render": StageState("complete", "ab")}
    )
    return to_json(m)


@pytest.mark.parametrize(
    "change, names",
    [
        (lambda d: d.pop("stages"), "stages is missing"),
        (lambda d: d.update(keep_interpolated="yes"), "keep_interpolated has the wrong type"),
        (lambda d: d.update(stages=["render", "radar"]), "unknown stage 'radar'"),
        (lambda d: d["scenes"]["a"].update(size="10"), "scenes['a'].size"),
        (lambda d: d["scenes"]["a"].update(cuts=[1.5]), "scenes['a'].cuts"),
        (lambda d: d["sequences"]["a/000001-000010-x1"].update(first=True), "first has the wrong type"),
        (
            lambda d: d["sequences"]["a/000001-000010-x1"]["stages"]["render"].update(status="done"),
            "not one of",
        ),
        (
            lambda d: d["sequences"]["a/000001-000010-x1"].update(split="holdout"),
            "not a split of this dataset",
        ),
        (lambda d: d["splits"]["scenes"].update(b="test"), "splits.scenes['b']"),
        (lambda d: d.update(format="1"), "format has the wrong type"),
    ],
)
def test_a_malformed_manifest_is_one_line_naming_the_key(tmp_path, change, names):
    data = _valid()
    assert from_json(data) is not None
    change(data)
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        read_manifest(tmp_path)
    assert names in str(err.value) and "\n" not in str(err.value) and MANIFEST in str(err.value)


def test_a_manifest_that_is_not_json_or_is_newer_is_refused_in_one_line(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_manifest(tmp_path)
    data = _valid()
    data["format"] = FORMAT + 1
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=f"format {FORMAT + 1}; this camsim reads format {FORMAT}"):
        read_manifest(tmp_path)


def test_the_scene_cache_holds_while_size_mtime_and_camera_match(tmp_path):
    blend = tmp_path / "a.blend"
    blend.write_bytes(b"x" * 100)
    st_ = blend.stat()
    record = SceneRecord(str(blend), st_.st_size, st_.st_mtime_ns, "CamB", 1, 50, [])
    assert scene_cache_valid(record, blend, "CamB")
    assert not scene_cache_valid(record, blend, None)  # another camera asked for
    os.utime(blend, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    assert not scene_cache_valid(record, blend, "CamB")  # saved again
    os.utime(blend, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    blend.write_bytes(b"x" * 101)
    os.utime(blend, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert not scene_cache_valid(record, blend, "CamB")  # same mtime, other size
    blend.unlink()
    assert not scene_cache_valid(record, blend, "CamB")


def test_stage_folders_are_named_in_one_place(tmp_path):
    assert list(STAGES) == ["render", "interpolate", "spad", "rgb", "events", "imu", "itof", "lidar"]
    assert stage_folder(tmp_path, "render", "a/000001-000010-x1") == tmp_path / "renders/a/000001-000010-x1"
    assert stage_folder(tmp_path, "interpolate") == tmp_path / "interpolated"
    with pytest.raises(DatasetError, match="unknown stage 'radar'; stages: render, interpolate"):
        stage_folder(tmp_path, "radar")
