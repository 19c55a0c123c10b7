"""create-datasets end to end on real demo scenes: layout, non-overlap, resume, failures, kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from filestate import stamps

from camsim import transforms
from camsim.fileio import read_exr, read_image
from camsim.manifest import read_manifest

pytestmark = pytest.mark.blender

TINY = ["--render-config.width=32", "--render-config.height=24", "--render-config.max-samples=2",
        "--render-config.adaptive-threshold=0", "--render-config.no-use-denoising"]  # fmt: skip


def camsim(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "camsim", *args], capture_output=True, text=True, timeout=600, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"camsim {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def dataset(demo_scenes, tmp_path_factory):
    scenes = demo_scenes[0].parent
    out = tmp_path_factory.mktemp("datasets")
    logs = tmp_path_factory.mktemp("logs")
    camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}", "--sequences-per-scene=2",
           "--num-frames=3", "--render-config.jobs=2", f"--render-config.log-dir={logs}", *TINY)  # fmt: skip
    return scenes, out, logs


def test_layout_counts_and_non_overlap(dataset):
    _, out, _ = dataset
    seqs = sorted((out / "renders").glob("*/*/transforms.json"))
    assert len(seqs) == 6
    by_scene: dict[str, list[tuple[int, int]]] = {}
    for tj in seqs:
        meta = transforms.read(tj)
        folder = tj.parent
        numbers = [f["frame_number"] for f in meta["frames"]]
        assert len(numbers) == 3 and numbers == list(range(numbers[0], numbers[0] + 3))
        assert folder.name == f"{numbers[0]:06d}-{numbers[-1]:06d}-x1"
        by_scene.setdefault(folder.parent.name, []).append((numbers[0], numbers[-1]))
        for kind in ("frames", "depths", "normals", "flows", "segmentations"):
            assert len(list((folder / kind).iterdir())) == 3
        for fr in meta["frames"]:
            assert read_image(folder / fr["file_path"]).shape == (24, 32, 3)
            assert read_exr(folder / fr["flow_file_path"], ("R", "G", "B", "A")).shape == (24, 32, 4)
        info = json.loads((folder / "info.json").read_text())
        pos = np.array([np.asarray(f["transform_matrix"])[:3, 3] for f in meta["frames"]])
        dist = np.linalg.norm(np.diff(pos, axis=0), axis=1).sum()
        assert info["fps"] == meta["fps"] == 50.0
        assert info["duration_seconds"] == pytest.approx(2 / 50.0)
        assert info["camera_distance"] == pytest.approx(dist)
        assert info["average_speed"] == pytest.approx(dist / (2 / 50.0))
    assert sorted(by_scene) == ["demo_000", "demo_001", "demo_002"]
    for spans in by_scene.values():
        (a0, b0), (a1, b1) = sorted(spans)
        assert b0 < a1 and a0 >= 1 and b1 <= 600


def test_rerun_with_allow_skips_renders_nothing(dataset):
    scenes, out, logs = dataset
    before = stamps(out)
    proc = camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}", "--sequences-per-scene=2",
                  "--num-frames=3", "--allow-skips", f"--render-config.log-dir={logs}", *TINY)  # fmt: skip
    assert "0 done, 6 skipped, 0 failed" in proc.stderr
    after = stamps(out)
    assert after.pop("dataset.json") and before.pop(
        "dataset.json"
    )  # the manifest records the latest run's flags
    assert after == before
    assert read_manifest(out).config["allow_skips"] is True


def test_resume_renders_exactly_the_missing_and_corrupt_frames(dataset, tmp_path):
    scenes, src, logs = dataset
    out = tmp_path / "ds"
    shutil.copytree(src, out)
    seq = sorted((out / "renders" / "demo_001").iterdir())[0]
    meta = transforms.read(seq)
    f0, f1 = meta["frames"][0], meta["frames"][1]
    (seq / f0["depth_file_path"]).unlink()
    (seq / f1["file_path"]).unlink()
    flow = seq / meta["frames"][2]["flow_file_path"]
    flow.write_bytes(flow.read_bytes()[:200])  # truncated EXR
    (seq / "transforms.json").unlink()
    before = stamps(out)
    time.sleep(0.01)
    camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}", "--sequences-per-scene=2",
           "--num-frames=3", "--allow-skips", f"--render-config.log-dir={logs}", *TINY)  # fmt: skip
    after = stamps(out)
    changed = {k for k in after if before.get(k) != after[k]} - {
        "dataset.json"
    }  # the manifest records the run
    prefix = str(seq.relative_to(out))
    assert all(k.startswith(prefix) for k in changed), changed
    frame_a, frame_b, frame_c = (fr["frame_number"] for fr in meta["frames"])
    assert not any(f"{frame_a:06d}" not in k and f"{frame_b:06d}" not in k and f"{frame_c:06d}" not in k
                   for k in changed if "/" in k[len(prefix) + 1:])  # fmt: skip
    # The untouched frame kept its files; the damaged ones are whole again.
    assert read_exr(seq / f0["depth_file_path"]).shape == (24, 32)
    assert read_image(seq / f1["file_path"]).shape == (24, 32, 3)
    assert read_exr(flow, ("R", "G", "B", "A")).shape == (24, 32, 4)
    assert transforms.read(seq)["frames"] == meta["frames"]


def test_corrupt_scene_fails_alone(demo_scenes, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(demo_scenes[0], scenes / "good.blend")
    (scenes / "broken.blend").write_bytes(demo_scenes[1].read_bytes()[:5000])
    out = tmp_path / "ds"
    proc = camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}", "--num-frames=2",
                  f"--render-config.log-dir={tmp_path / 'logs'}", *TINY, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "FAILED broken" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(list((out / "renders" / "good").glob("*/transforms.json"))) == 1


def _blender_children(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for kid in kids:
        try:
            if any("service.py" in part for part in kid.cmdline()):
                found.append(kid)
        except psutil.Error:  # exited (or a zombie) since we listed it
            continue
    return found


def test_kill_9_of_a_worker_mid_run_still_completes_the_dataset(demo_scenes, tmp_path):
    scenes = demo_scenes[0].parent
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "camsim", "create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}",
           "--sequences-per-scene=2", "--num-frames=4", "--render-config.jobs=2",
           f"--render-config.log-dir={tmp_path / 'logs'}", *TINY]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = 0
    deadline = time.monotonic() + 120
    while killed < 1 and time.monotonic() < deadline and proc.poll() is None:
        frames = list((out / "renders").glob("*/*/frames/*.png")) if out.exists() else []
        workers = _blender_children(proc.pid)
        if frames and workers:
            os.kill(workers[0].pid, signal.SIGKILL)
            killed += 1
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    assert killed == 1
    assert proc.returncode == 0, err
    assert "6 done" in err
    for tj in (out / "renders").glob("*/*/transforms.json"):
        meta = transforms.read(tj)
        for fr in meta["frames"]:
            read_image(tj.parent / fr["file_path"])
            read_exr(tj.parent / fr["depth_file_path"])
    assert len(list((out / "renders").glob("*/*/transforms.json"))) == 6
    assert not list(out.rglob("*camsim-tmp*"))


def test_tutorial_command_runs_verbatim(build_scene, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(2):
        shutil.copy(build_scene(f"short{i}", kind="flow", frames=(1, 3), camera_velocity=(0.1, 0, 0)),
                    scenes / f"scene{i}.blend")  # fmt: skip
    # VisionSim's tutorial, with `camsim` for `python scripts/mkdataset.py` and a smaller width/height.
    proc = subprocess.run(
        [sys.executable, "-m", "camsim", "create-datasets", "--scenes-dir=scenes/", "--datasets-dir=datasets/",
         "--sequences-per-scene=1", "--render-config.width=16", "--render-config.height=16",
         "--render-config.depths", "--render-config.normals", "--render-config.flows",
         "--render-config.segmentations", "--render-config.keyframe-multiplier=2.0", "--render-config.jobs=5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for i in range(2):
        meta = transforms.read(
            tmp_path / "datasets" / "renders" / f"scene{i}" / "000002-000006-x2" / "transforms.json"
        )
        assert [f["frame_number"] for f in meta["frames"]] == [2, 3, 4, 5, 6]
        assert meta["fps"] == 50.0 and meta["keyframe_multiplier"] == 2.0


def test_dry_run_prints_plan_and_renders_nothing(demo_scenes, tmp_path):
    out = tmp_path / "ds"
    proc = camsim("create-datasets", f"--scenes-dir={demo_scenes[0].parent}", f"--datasets-dir={out}",
                  "--sequences-per-scene=3", "--num-frames=10", "--dry-run",
                  f"--render-config.log-dir={tmp_path / 'logs'}")  # fmt: skip
    assert "3 scenes, 9 sequences, 90 frames in total" in proc.stdout
    assert not (out / "renders").exists()


def test_too_many_frames_is_a_one_line_error(demo_scenes, tmp_path):
    proc = camsim("create-datasets", f"--scenes-dir={demo_scenes[0].parent}", f"--datasets-dir={tmp_path / 'd'}",
                  "--sequences-per-scene=4", "--num-frames=200", f"--render-config.log-dir={tmp_path / 'logs'}",
                  check=False)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "at most 150 frames" in proc.stderr


CUT_SCENE = """
import bpy


def _camera(scene, name, x, kind):
    cam = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    cam.data.type = kind
    cam.location = (x, 0.0, 0.0)
    scene.collection.objects.link(cam)
    return cam


def build(frames=(1, 20), cut=None, ortho=False):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = frames
    scene.render.fps = 25
    scene.world = bpy.data.worlds.new("World")
    mesh = bpy.data.meshes.new("Back")
    mesh.from_pydata([(-50, -50, -5), (50, -50, -5), (50, 50, -5), (-50, 50, -5)], [], [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Back", mesh))
    scene.camera = _camera(scene, "CamA", 0.0, "ORTHO" if ortho else "PERSP")
    if cut is not None:
        scene.timeline_markers.new("A", frame=frames[0]).camera = scene.camera
        scene.timeline_markers.new("B", frame=cut).camera = _camera(scene, "CamB", 1.0, "PERSP")
    scene.frame_set(frames[0])
"""


def test_camera_cuts_bound_sequences_and_unusable_scenes_fail_alone(build_scene, worker, tmp_path):
    script = tmp_path / "cut_scene.py"
    script.write_text(CUT_SCENE)
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name, kwargs in {"cuts": {"cut": 11}, "ortho": {"ortho": True}, "short": {"frames": (1, 3)}}.items():
        shutil.copy(build_scene(f"cutscene-{name}", script=script, **kwargs), scenes / f"{name}.blend")
    info = worker.scene_range(scenes / "cuts.blend")
    assert info.cuts == [11] and info.camera_problem is None
    out = tmp_path / "ds"
    proc = camsim("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={out}", "--sequences-per-scene=2",
                  "--num-frames=4", f"--render-config.log-dir={tmp_path / 'logs'}", *TINY, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "FAILED ortho: " in proc.stderr and "orthographic" in proc.stderr
    assert "FAILED short: " in proc.stderr and "at most 1 frames" in proc.stderr
    assert "2 done" in proc.stderr and "Traceback" not in proc.stderr
    # Shots 1..10 (CamA at x=0) and 11..20 (CamB at x=1): one sequence centred in each, none across the cut.
    seqs = sorted(p.name for p in (out / "renders" / "cuts").iterdir())
    assert seqs == ["000004-000007-x1", "000014-000017-x1"]
    for seq, x, camera in zip(seqs, (0.0, 1.0), ("CamA", "CamB"), strict=True):
        for fr in transforms.read(out / "renders" / "cuts" / seq / "transforms.json")["frames"]:
            assert np.asarray(fr["transform_matrix"])[0, 3] == pytest.approx(x, abs=1e-6)
            assert fr.get("camera", camera) == camera
    assert not (out / "renders" / "ortho").exists() and not (out / "renders" / "short").exists()
