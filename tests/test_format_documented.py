"""docs/FORMAT.md documents every file and key camsim writes: each writer runs once on a tiny rendered
sequence, and every key it emits must appear (in backticks) in the section of FORMAT.md for that file.
A writer that gains a key fails here until the key is documented (issue 13, item 13)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from clirun import run_ok
from conftest import FAST, TESTS

from camsim import passes

FORMAT = Path(__file__).parent.parent / "docs" / "FORMAT.md"

OPAQUE = {
    "render",
    "conventions",
    "segmentation_ids",
    "segmentation_objects",
    "config",
    "objects",
    "matrix_world",
    "checksums",
    "categories",
}
"""Blocks whose keys are data (ids, setting names, convention names), documented as a whole."""


def keys_of(obj: Any, out: set[str] | None = None) -> set[str]:
    """Every key of a JSON document: of objects, of objects inside lists, of nested blocks (OPAQUE ones only
    by name); object ids ("3") are data, the keys of what they map to are not."""
    out = set() if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not k.isdigit():
                out.add(k)
            if k not in OPAQUE:
                keys_of(v, out)
    elif isinstance(obj, list):
        for v in obj:
            keys_of(v, out)
    return out


def section(title: str) -> str:
    """The text of FORMAT.md under the heading that contains `title`, up to the next heading of its level."""
    text = FORMAT.read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and title in line:
            level = len(line) - len(line.lstrip("#"))
            body = []
            for nxt in lines[i + 1 :]:
                if nxt.startswith("#") and len(nxt) - len(nxt.lstrip("#")) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    raise AssertionError(f"FORMAT.md has no heading with {title!r}")


def documented(text: str) -> set[str]:
    return {w for span in re.findall(r"`([^`]+)`", text) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


@pytest.fixture(scope="module")
def outputs(build_scene, render, tmp_path_factory) -> dict[str, Path]:
    blend = build_scene("format", kind="flow")
    seq = render(blend, "format-seq", FAST.replace(linear=True, scene_flows=True, albedo=True), frame_start=1,
                 frame_end=4)  # fmt: skip
    root = tmp_path_factory.mktemp("format-outputs")
    run_ok("interpolate", seq, root / "interpolated", "--factor", "2", "--workers", "1")
    for sensor in ("spad", "rgb", "events", "imu", "itof"):
        run_ok("emulate", sensor, seq, root / sensor)
    run_ok("convert", "img-to-npy", seq, root / "npy")
    run_ok("export", "nerfstudio", seq, root / "nerfstudio")
    stereo = build_scene("format-stereo", script=TESTS / "scenes" / "stereo.py")
    rig = render(stereo, "format-rig", FAST.replace(cameras=("Left", "Right")), frame_start=1, frame_end=2)
    lens = FAST.replace(annotations=False, debug=False)  # real lenses: a distortion and a fisheye
    distorted = render(blend, "format-distorted", lens.replace(distortion=(-0.1, 0.01, 0.0, 0.001, 0.0)),
                       frame_start=1, frame_end=2)  # fmt: skip
    fisheye = render(blend, "format-fisheye", lens.replace(lens="fisheye-equisolid"), frame_start=1,
                     frame_end=2)  # fmt: skip
    lenses = {"distorted": distorted, "fisheye": fisheye}
    return {"render": seq, "rig": rig, **lenses, **{p.name: p for p in root.iterdir() if p.is_dir()}}


FILES = [  # (output, file, FORMAT.md heading)
    ("render", "transforms.json", "`transforms.json` of a rendered sequence"),
    ("render", "info.json", "`info.json`"),
    ("render", "settings.json", "`settings.json`"),
    ("render", "objects.json", "`objects.json`"),
    ("rig", "rig.json", "`rig.json`"),
    ("rig", "Left/transforms.json", "`transforms.json` of a rendered sequence"),
    ("distorted", "transforms.json", "`transforms.json` of a rendered sequence"),
    ("fisheye", "transforms.json", "`transforms.json` of a rendered sequence"),
    ("npy", "transforms.json", "NPY format"),
    ("interpolated", "transforms.json", "Interpolated sequences"),
    ("spad", "transforms.json", "Emulated sequences"),
    ("spad", "params.json", "Emulated sequences"),
    ("rgb", "transforms.json", "Emulated sequences"),
    ("rgb", "params.json", "Emulated sequences"),
    ("events", "transforms.json", "Emulated sequences"),
    ("events", "params.json", "Emulated sequences"),
    ("imu", "params.json", "Emulated sequences"),
    ("itof", "transforms.json", "Emulated sequences"),
    ("itof", "params.json", "Emulated sequences"),
    ("nerfstudio", "transforms.json", "nerfstudio export"),
]


@pytest.mark.blender
@pytest.mark.parametrize("output, name, heading", FILES, ids=[f"{o}/{n}" for o, n, _ in FILES])
def test_every_key_written_is_documented(outputs, output, name, heading):
    path = outputs[output] / name
    if not path.is_file():
        pytest.skip(f"{output} writes no {name}")
    missing = sorted(keys_of(json.loads(path.read_text())) - documented(section(heading)))
    # A key of a rendered sequence is documented for every output that inherits it.
    if output != "render":
        missing = [
            k for k in missing if k not in documented(section("`transforms.json` of a rendered sequence"))
        ]
    assert not missing, f"{output}/{name} writes keys FORMAT.md ({heading}) does not document: {missing}"


@pytest.mark.blender
def test_every_file_and_folder_written_is_documented(outputs):
    """Every file and folder name a writer creates (numbers stripped) appears in FORMAT.md."""
    text = FORMAT.read_text()
    names = set()
    for out in outputs.values():
        for p in out.rglob("*"):
            rel = p.relative_to(out)
            names.update(re.sub(r"\d{5,}", "", part) for part in rel.parts)
    missing = sorted(n for n in names if re.sub(r"_?\.", ".", n).split(".")[0].rstrip("_") not in text)
    assert not missing, f"FORMAT.md does not mention: {missing}"


@pytest.mark.blender
def test_every_path_key_written_is_a_registered_kind(outputs):
    """Every `file_path` / `*_file_path` key of every transforms.json (rendered, interpolated, emulated,
    converted, exported) names a kind of the pass registry or a per-sequence file it lists."""
    registered = set(passes.KEYS) | {f.key for f in passes.SEQUENCE_FILES}
    for out in outputs.values():
        for path in out.rglob("transforms.json"):
            meta = json.loads(path.read_text())
            keys = {k for d in (meta, *meta.get("frames", [])) for k in d if k.endswith("file_path")}
            assert keys <= registered, f"{path}: {sorted(keys - registered)} not in camsim.passes"


def manifest_keys(data: dict[str, Any]) -> set[str]:
    """The keys of dataset.json that are names (not data: scene names, sequence keys, stage names, config)."""
    out = set(data)
    splits = data["splits"] or {}
    out |= set(splits)
    for record in data["scenes"].values():
        out |= set(record)
    for seq in data["sequences"].values():
        out |= set(seq)
        for state in seq["stages"].values():
            out |= set(state)
    return out


def test_every_key_of_dataset_json_and_every_stage_folder_is_documented(tmp_path):
    """dataset.json is written by camsim.manifest alone (create-datasets' host process); a manifest with every
    optional part filled in names every key it can hold."""
    from camsim.manifest import (
        STAGES,
        Manifest,
        SceneRecord,
        SequenceRecord,
        Splits,
        StageState,
        write_manifest,
    )

    m = Manifest(
        config={"render_config": {"width": 32}},
        blender_version="5.0.1",
        stages=list(STAGES),
        splits=Splits(["train", "val"], [0.5, 0.5], 0, {"a": "train"}),
    )
    m.scenes["a"] = SceneRecord(
        "/s/a.blend", 1, 2, "Cam", 1, 40, [20], "camera 'X' is orthographic", "no camera"
    )
    m.sequences["a/000001-000010-x1"] = SequenceRecord(
        "a",
        "train",
        1,
        10,
        {"render": StageState("complete", "0" * 16), "spad": StageState("failed", None, "x")},
    )
    data = json.loads(write_manifest(tmp_path, m).read_text())
    text = section("A dataset folder (create-datasets)")
    missing = sorted(manifest_keys(data) - documented(text))
    assert not missing, f"dataset.json writes keys FORMAT.md does not document: {missing}"
    for stage, folder in STAGES.items():
        assert f"`{stage}`" in text and f"{folder}/SCENE/SEQUENCE-ID/" in text, stage
    assert "dataset.json" in text
