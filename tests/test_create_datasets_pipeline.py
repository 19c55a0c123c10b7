"""create-datasets with stages (interpolate, four sensors) and splits, end to end on real demo scenes: every
stage of every sequence, the manifest, validate, the loader by stage and split, resume after kill -9 mid-stage
with the same bytes as an uninterrupted run, a sensor added later, and the same files on Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filestate import stamps

from camsim.manifest import STAGES, read_manifest

pytestmark = pytest.mark.blender

TINY = ["--render-config.width=32", "--render-config.height=24", "--render-config.max-samples=2",
        "--render-config.adaptive-threshold=0", "--render-config.no-use-denoising", "--render-config.linear",
        "--num-frames=3", "--sequences-per-scene=1"]  # fmt: skip
USED = tuple(s for s in STAGES if s not in ("itof", "lidar"))
"""The stages this file runs (the active sensors have their own tests: test_emulate_itof_*, test_emulate_lidar_*)."""
STAGE_FLAGS = ["--interpolate-factor=4", "--emulate", "spad", "rgb", "events", "imu", "--splits", "0.5", "0.25",
               "0.25", "--spad.batch-size=4"]  # fmt: skip
SENSORS = ("spad", "rgb", "events", "imu")
VOLATILE = {"info.json", "params.json", "dataset.json", "settings.json"}
"""Files that record run details (timings, absolute source paths, the run's own flags): compared by key, not
byte for byte."""


def camsim(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "camsim", *args], capture_output=True, text=True, timeout=600, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"camsim {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def create(scenes: Path, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}",
                  f"--render-config.log-dir={out.parent / (out.name + '-logs')}", *TINY, *extra,
                  check=check)  # fmt: skip


def data_files(root: Path) -> dict[str, bytes]:
    """Every output file's bytes by relative path, except the run records (VOLATILE) and logs."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in VOLATILE and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def full(demo_scenes, tmp_path_factory):
    scenes = demo_scenes[0].parent
    out = tmp_path_factory.mktemp("pipeline") / "datasets"
    proc = create(scenes, out, *STAGE_FLAGS, "--render-config.jobs=2")
    return scenes, out, proc


def test_one_call_produces_every_stage_of_every_sequence(full):
    _, out, _ = full
    manifest = read_manifest(out)
    assert manifest is not None
    keys = list(manifest.sequences)
    assert len(keys) == 3
    assert manifest.stages == list(USED)
    for key in keys:
        record = manifest.sequences[key]
        assert {s: st.status for s, st in record.stages.items()} == {s: "complete" for s in USED}
        assert all(st.settings_hash for st in record.stages.values())
        assert (out / "renders" / key / "transforms.json").is_file()
        interpolated = json.loads((out / "interpolated" / key / "transforms.json").read_text())
        assert len(interpolated["frames"]) == 2 * 4 + 1
        for sensor in ("spad", "rgb", "events"):
            params = json.loads((out / sensor / key / "params.json").read_text())
            assert params["settings_hash"] == record.stages[sensor].settings_hash
            assert (out / sensor / key / "transforms.json").is_file()
        assert (out / "imu" / key / "imu0" / "data.csv").is_file()
    # the manifest records every flag and the versions
    assert manifest.config["interpolate_factor"] == 4
    assert manifest.config["render_config"]["width"] == 32
    assert manifest.camsim_version and manifest.blender_version
    # whole scenes per split, every split used (3 scenes at 0.5/0.25/0.25)
    assert sorted(manifest.splits.scenes.values()) == ["test", "train", "val"]
    for key, record in manifest.sequences.items():
        assert record.split == manifest.splits.scenes[key.split("/")[0]]


def test_sequences_get_their_own_sensor_noise(full):
    _, out, _ = full
    seeds = {json.loads(p.read_text())["config"]["seed"] for p in (out / "spad").glob("*/*/params.json")}
    assert len(seeds) == 3


def test_validate_and_info_cover_every_stage_and_split(full):
    _, out, _ = full
    proc = camsim("validate", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = camsim("info", str(out)).stdout
    for stage in USED:
        assert stage in info
    for split in ("train", "val", "test"):
        assert split in info


def test_loader_iterates_each_stage_and_split(full):
    from camsim.dataset import Dataset

    _, out, _ = full
    manifest = read_manifest(out)
    for split in ("train", "val", "test"):
        keys = manifest.keys("render", split)
        assert len(keys) == 1
        for stage in ("render", "interpolate", "spad", "rgb"):
            ds = Dataset.from_path(out, stage=stage, split=split)
            assert len(ds) == (3 if stage == "render" else 9 if stage in ("interpolate", "rgb") else len(ds))
            assert len(ds) > 0 and ds[0] is not None


def test_events_too_sparse_is_warned_once_with_the_fix(full):
    _, _, proc = full
    lines = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln and "events" in ln]
    assert len(lines) <= 1
    if lines:
        assert "--interpolate-factor" in lines[0]


def test_kill_mid_stage_then_allow_skips_gives_the_same_files(full, tmp_path):
    scenes, reference, _ = full
    out = tmp_path / "datasets"
    log = tmp_path / "run.log"
    cmd = [sys.executable, "-m", "camsim", "create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}",
           f"--render-config.log-dir={tmp_path / 'logs'}", *TINY, *STAGE_FLAGS]  # fmt: skip
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            # mid-stage: an emulator has begun writing a sequence but has not finished it
            started = [p for p in (out / "spad").glob("*/*") if p.is_dir()]
            if any(not (p / "transforms.json").exists() for p in started) or len(started) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (
            "the run ended before it could be killed mid-stage: " + log.read_text()[-2000:]
        )
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    manifest = read_manifest(out)
    assert manifest is None or any(
        st.status != "complete" for r in manifest.sequences.values() for st in r.stages.values()
    )
    create(scenes, out, *STAGE_FLAGS, "--allow-skips")
    assert data_files(out) == data_files(reference)
    assert camsim("validate", str(out)).returncode == 0


def test_adding_a_sensor_runs_only_that_stage(demo_scenes, tmp_path):
    scenes = demo_scenes[0].parent
    out = tmp_path / "datasets"
    create(scenes, out, "--emulate", "spad")
    before = stamps(out)
    create(scenes, out, "--emulate", "spad", "events", "--allow-skips")
    after = stamps(out)
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed, "nothing was written"
    assert all(k.startswith("events/") or k == "dataset.json" for k in changed), sorted(changed)
    manifest = read_manifest(out)
    assert all(
        r.status("events") == "complete" and r.status("spad") == "complete"
        for r in manifest.sequences.values()
    )


def test_changed_stage_settings_are_refused_without_overwrite(demo_scenes, tmp_path):
    scenes = demo_scenes[0].parent
    out = tmp_path / "datasets"
    create(scenes, out, "--emulate", "imu")
    before = stamps(out)
    proc = create(scenes, out, "--emulate", "imu", "--imu.rate=100", "--allow-skips", check=False)
    assert proc.returncode == 2
    assert "--rate" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert stamps(out) == before
    create(scenes, out, "--emulate", "imu", "--imu.rate=100", "--overwrite")
    assert json.loads(next((out / "imu").glob("*/*/params.json")).read_text())["config"]["rate"] == 100


def test_dask_with_two_workers_gives_the_same_files(full, tmp_path):
    pytest.importorskip("distributed")
    scenes, reference, _ = full
    out = tmp_path / "datasets"
    create(scenes, out, *STAGE_FLAGS, "--cluster=local", "--render-config.jobs=2")
    assert data_files(out) == data_files(reference)


def test_no_keep_interpolated_gives_the_same_sensor_files_without_the_frames(full, tmp_path):
    scenes, reference, _ = full
    out = tmp_path / "datasets"
    create(scenes, out, *STAGE_FLAGS, "--no-keep-interpolated")
    assert not (out / "interpolated").exists()
    ref = {k: v for k, v in data_files(reference).items() if not k.startswith("interpolated/")}
    assert data_files(out) == ref


def test_a_stage_that_cannot_work_is_refused_before_anything_renders(demo_scenes, tmp_path):
    scenes = demo_scenes[0].parent
    out = tmp_path / "datasets"
    proc = camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}", "--num-frames=2",
                  "--render-config.width=16", "--render-config.height=16", "--emulate", "imu", check=False)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "camsim: error: --emulate imu needs sequences of at least 3 frames, "
        + proc.stderr.split("frames, ", 1)[1].strip()
    ]
    assert "has 2 frames: raise --num-frames" in proc.stderr
    assert not out.exists()
