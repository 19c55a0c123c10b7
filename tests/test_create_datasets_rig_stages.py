"""create-datasets with a rig (--render-config.cameras) and stages: every stage after the render runs per camera
into STAGE/SCENE/SEQ/CAMERA/, each camera with its own sensor seed; dataset.json keeps one record per sequence
with each camera's state under the stage; validate, info and the loader read the cameras; a rerun with
--allow-skips touches nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filestate import stamps

from camsim.manifest import (
    Manifest,
    SequenceRecord,
    StageState,
    combined,
    from_json,
    read_manifest,
    recorded_hash,
    stage_folder,
    to_json,
)
from camsim.resume import Reuse
from camsim.stages import Pipeline, sensor_config, tasks_for

TESTS = Path(__file__).parent
STEREO = TESTS / "scenes" / "stereo.py"
CAMERAS = ("Left", "Right")
AFTER_RENDER = ("interpolate", "events", "imu")
TINY = ["--render-config.width=32", "--render-config.height=24", "--render-config.max-samples=2",
        "--render-config.adaptive-threshold=0", "--render-config.no-use-denoising", "--render-config.linear",
        "--num-frames=3", "--render-config.cameras", *CAMERAS]  # fmt: skip
STAGE_FLAGS = ["--emulate", "imu", "events", "--interpolate-factor", "2"]


def camsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camsim", *args], capture_output=True, text=True, timeout=600
    )


def create(scenes: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}",
                  f"--render-config.log-dir={out.parent / 'logs'}", *TINY, *STAGE_FLAGS, *extra)  # fmt: skip


@pytest.fixture(scope="module")
def rig(build_scene, tmp_path_factory):
    root = tmp_path_factory.mktemp("rig-stages")
    scenes = root / "scenes"
    scenes.mkdir()
    shutil.copy(
        build_scene("stereo_stages", script=STEREO, rig_velocity=(0.05, 0.0, 0.0)), scenes / "stereo.blend"
    )
    out = root / "datasets"
    proc = create(scenes, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = read_manifest(out)
    assert manifest is not None
    (key,) = manifest.sequences
    return scenes, out, key


# ------------------------------------------------------------------------------------------ real runs


@pytest.mark.blender
def test_every_stage_runs_for_each_camera_into_its_own_folder(rig):
    _, out, key = rig
    manifest = read_manifest(out)
    record = manifest.sequences[key]
    assert manifest.stages == ["render", *AFTER_RENDER]
    render = record.stages["render"]
    assert render.status == "complete" and not render.cameras  # one rig render
    assert render.settings_hash == recorded_hash("render", stage_folder(out, "render", key))
    for stage in AFTER_RENDER:
        state = record.stages[stage]
        assert state.status == "complete" and state.settings_hash is None
        assert list(state.cameras) == list(CAMERAS)
        for camera, cam in state.cameras.items():
            folder = stage_folder(out, stage, f"{key}/{camera}")
            assert cam.status == "complete"
            assert cam.settings_hash is not None and cam.settings_hash == recorded_hash(stage, folder)
    for camera in CAMERAS:
        interpolated = json.loads((out / "interpolated" / key / camera / "transforms.json").read_text())
        assert len(interpolated["frames"]) == (3 - 1) * 2 + 1
        assert (
            interpolated["interpolation"]["source"]["settings_hash"] == record.stages["render"].settings_hash
        )
        events = json.loads((out / "events" / key / camera / "params.json").read_text())
        assert Path(events["source"]).resolve() == (out / "interpolated" / key / camera).resolve()
        assert (out / "imu" / key / camera / "imu0" / "data.csv").is_file()
    # the same sequence through two cameras: the same frame times, but noise of its own per camera
    for sensor in ("events", "imu"):
        seeds = {
            json.loads((out / sensor / key / c / "params.json").read_text())["config"]["seed"]
            for c in CAMERAS
        }
        assert len(seeds) == 2
    raw = json.loads((out / "dataset.json").read_text())
    assert set(raw["sequences"][key]["stages"]["events"]["cameras"]) == set(CAMERAS)


@pytest.mark.blender
def test_validate_info_and_the_loader_read_each_camera(rig):
    from camsim.dataset import Dataset
    from camsim.summary import describe_datasets
    from camsim.validate_datasets import validate_datasets

    _, out, key = rig
    proc = camsim("validate", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {r.name for r in validate_datasets(out).sequences}
    for stage, folder in (("interpolate", "interpolated"), ("events", "events"), ("imu", "imu")):
        assert {f"{folder}/{key}/{c}" for c in CAMERAS} <= names, stage
    rows = {(r.stage, r.split): r for r in describe_datasets(out).rows}
    assert rows[("interpolate", None)].complete == 1
    assert rows[("interpolate", None)].frames == 2 * 5  # both cameras' frames
    events = Dataset.from_path(out, stage="events")
    assert [s.name for s in events.sequences] == [f"{key}/{c}" for c in CAMERAS]
    items = list(events)
    assert len(items) == len(events) == sum(len(s) for s in events.sequences) > 0
    imu = Dataset.from_path(out, stage="imu")
    assert [name for _, name in imu.folders] == [f"{key}/{c}" for c in CAMERAS]
    assert len(imu) > 0


@pytest.mark.blender
def test_a_rerun_with_allow_skips_touches_nothing(rig):
    scenes, out, _ = rig
    before = {stage: stamps(stage_folder(out, stage)) for stage in ("render", *AFTER_RENDER)}
    proc = create(scenes, out, "--allow-skips")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {stage: stamps(stage_folder(out, stage)) for stage in before} == before
    for stage in AFTER_RENDER:  # each camera's stage skipped, none redone
        assert f"{stage}: 0 done, 2 skipped, 0 failed" in proc.stderr


VOLATILE = {"info.json", "params.json", "dataset.json", "settings.json"}
"""Files that record run details (timings, absolute paths): left out of byte comparisons."""


def data_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in VOLATILE and not p.name.startswith(".")
    }


@pytest.mark.blender
def test_dask_gives_each_camera_the_same_files(rig, tmp_path):
    pytest.importorskip("distributed")
    scenes, reference, _ = rig
    out = tmp_path / "datasets"
    proc = create(scenes, out, "--cluster=local")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert data_files(out) == data_files(reference)


@pytest.mark.blender
def test_streamed_interpolation_reads_each_cameras_render(rig, tmp_path):
    scenes, reference, _ = rig
    out = tmp_path / "datasets"
    proc = create(scenes, out, "--no-keep-interpolated")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "interpolated").exists()
    kept = {k: v for k, v in data_files(reference).items() if not k.startswith("interpolated/")}
    assert data_files(out) == kept


@pytest.mark.blender
def test_validate_names_the_camera_whose_output_is_wrong_or_unlisted(rig, tmp_path):
    from camsim.validate_datasets import validate_datasets

    _, out, key = rig
    copy = tmp_path / "datasets"
    shutil.copytree(out, copy)
    (copy / "events" / key / "Right" / "params.json").unlink()
    shutil.copytree(copy / "imu" / key / "Left", copy / "imu" / key / "Middle")
    bad = {r.name: r for r in validate_datasets(copy).sequences if r.problems}
    assert set(bad) == {f"events/{key}/Right", f"imu/{key}/Middle"}
    assert [p.kind for p in bad[f"imu/{key}/Middle"].problems] == ["unlisted"]


# --------------------------------------------------------------------------------------- no Blender


def test_a_rig_gets_every_stage_per_camera_with_seeds_of_its_own(tmp_path):
    from camsim.emulate.events import EventsConfig

    pipeline = Pipeline(interpolate_factor=2, emulate=("events",), sensors=(("events", EventsConfig()),))
    tasks = tasks_for("scene/000001-000003-x1", tmp_path, pipeline, Reuse(), CAMERAS)
    assert [(t.stage, t.key, t.camera, t.sequence) for t in tasks] == [
        (s, f"scene/000001-000003-x1/{c}", c, "scene/000001-000003-x1")
        for c in CAMERAS
        for s in ("interpolate", "events")
    ]
    events = [t for t in tasks if t.stage == "events"]
    assert events[0].source == tmp_path / "interpolated" / "scene" / "000001-000003-x1" / "Left"
    assert events[1].output == tmp_path / "events" / "scene" / "000001-000003-x1" / "Right"
    assert sensor_config(events[0]).seed != sensor_config(events[1]).seed
    (single,) = tasks_for("scene/000001-000003-x1", tmp_path, pipeline, Reuse())[1:]
    assert single.camera is None and single.sequence == single.key == "scene/000001-000003-x1"


def test_a_rig_stage_is_complete_when_every_camera_is_and_round_trips(tmp_path):
    cams = {"Left": StageState("complete", "aa"), "Right": StageState()}
    assert combined(cams).status == "missing"
    assert combined({**cams, "Right": StageState("complete", "bb")}).status == "complete"
    failed = combined({**cams, "Right": StageState("failed", None, "boom")})
    assert (failed.status, failed.error) == ("failed", "camera Right: boom")
    m = Manifest(stages=["render", "events"])
    m.sequences["s/q"] = SequenceRecord(
        "s", None, 1, 3, {"render": StageState("complete", "r"), "events": failed}
    )
    back = from_json(json.loads(json.dumps(to_json(m))))
    assert back.sequences["s/q"].stages["events"] == failed
    assert back.keys("events") == [] and back.keys("events", status="failed") == ["s/q"]
    m.sequences["s/q"].stages["events"] = combined(
        {"Left": StageState("complete", "a"), "Right": StageState("complete", "b")}
    )
    assert m.outputs("events") == [("s/q", "s/q/Left"), ("s/q", "s/q/Right")]
    assert m.outputs("render") == [("s/q", "s/q")]


def test_all_cameras_cannot_go_with_stages(tmp_path):
    proc = camsim("create-datasets", f"--scenes-dir={tmp_path}", f"--datasets-dir={tmp_path / 'out'}",
                  "--render-config.cameras", "all", "--emulate", "imu")  # fmt: skip
    assert proc.returncode == 2
    assert "--render-config.cameras all cannot go with --interpolate-factor or --emulate" in proc.stderr
    assert not (tmp_path / "out").exists()
