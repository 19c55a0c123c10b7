"""Multi-camera rigs and stereo (--render-config.cameras): a sequence per camera on one time base, the rig's
extrinsics in closed form, disparity of rectified pairs against f*B/Z and against where the right camera
really sees a marker, refusal of what is not rectified, resume and validation of a rig's folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, TESTS
from filestate import stamp, stamps
from scipy.ndimage import binary_erosion
from scipy.spatial.transform import Rotation

from camsim import transforms
from camsim.config import RenderConfig
from camsim.errors import ConfigError, SceneError
from camsim.fileio import read_exr
from camsim.jobs import SequenceJob
from camsim.loader import Dataset
from camsim.planning import PlanOptions, SceneRange, plan_datasets
from camsim.render import render_sequence, sequence_is_complete
from camsim.resume import Reuse, clear_outputs, holds_output
from camsim.rig import rectification_problem, rotation_angle
from camsim.sampling import SceneEntry
from camsim.validate import validate_dataset

STEREO = TESTS / "scenes" / "stereo.py"
BASELINE, WALL, MARKER = 0.3, 4.0, 3.0
RIG_ROT, RIG_LOC = (0.4, -0.3, 0.7), (0.3, -0.2, 0.5)
RIG = FAST.replace(width=128, height=96, cameras=("Left", "Right"))


def _pose(rotation, location) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", rotation).as_matrix()
    m[:3, 3] = location
    return m


def _ids(meta: dict, name: str) -> int:
    return {v: int(k) for k, v in meta["segmentation_ids"].items()}[name]


def _frame(seq: Path, camera: str, i: int = 0) -> tuple[dict, dict]:
    meta = transforms.read(seq / camera)
    return meta, meta["frames"][i]


def _mask(seq: Path, camera: str, name: str, margin: int = 2, i: int = 0) -> np.ndarray:
    meta, fr = _frame(seq, camera, i)
    seg = read_exr(seq / camera / fr["segmentation_file_path"])
    return (
        binary_erosion(seg == _ids(meta, name), iterations=margin, border_value=0)
        if margin
        else seg == _ids(meta, name)
    )


def _rig(seq: Path) -> dict:
    return json.loads((seq / "rig.json").read_text())


def _render(worker, blend: Path, out: Path, config: RenderConfig, reuse: Reuse | None = None, **frames):
    job = SequenceJob(blend, out, config.validate().settings, reuse=reuse or Reuse(), **frames)
    return job, render_sequence(worker, job)


@pytest.fixture(scope="module")
def stereo(build_scene, render):
    blend = build_scene("stereo", script=STEREO, baseline=BASELINE, depth=WALL, marker_depth=MARKER)
    return render(blend, "stereo", config=RIG, frame_start=1, frame_end=2)


# ------------------------------------------------------------------------------------------- stereo


@pytest.mark.blender
def test_disparity_of_a_fronto_parallel_wall_is_f_b_over_z(stereo):
    meta, fr = _frame(stereo, "Left")
    disparity = read_exr(stereo / "Left" / fr["disparity_file_path"])
    assert disparity.dtype == np.float32 and disparity.shape == (96, 128)
    wall = _mask(stereo, "Left", "Wall")
    assert wall.sum() > 3000
    err = np.abs(disparity[wall] - meta["fl_x"] * BASELINE / WALL)
    assert err.max() < 0.05, err.max()
    marker = _mask(stereo, "Left", "Marker")
    assert np.abs(disparity[marker] - meta["fl_x"] * BASELINE / MARKER).max() < 0.05
    # Only the left camera's folder has disparity; the pair is recorded as rectified.
    assert "disparity_file_path" not in _frame(stereo, "Right")[1]
    assert not (stereo / "Right" / "disparities").exists()
    (pair,) = _rig(stereo)["stereo"]
    assert pair["left"] == "Left" and pair["right"] == "Right" and pair["parent"] == "StereoRig"
    assert pair["rectified"] is True and pair["disparity"] is True and pair["reason"] is None
    assert pair["baseline_m"] == pytest.approx(BASELINE, abs=1e-6)


@pytest.mark.blender
def test_the_right_camera_sees_the_marker_shifted_left_by_the_disparity(stereo):
    """Independent of the depth pass: the marker's centroid in the right image is its centroid in the left
    image minus the disparity written there (same row)."""
    for i in range(2):
        _, fr = _frame(stereo, "Left", i)
        disparity = read_exr(stereo / "Left" / fr["disparity_file_path"])
        d = float(np.median(disparity[_mask(stereo, "Left", "Marker", i=i)]))
        assert d > 10.0  # a real shift: f*B/Z of about 12.4 px
        centroids = {}
        for cam in ("Left", "Right"):
            rows, cols = np.nonzero(_mask(stereo, cam, "Marker", margin=0, i=i))
            assert len(rows) > 150  # the whole disc is in view of both cameras
            centroids[cam] = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
        shift = centroids["Right"] - (centroids["Left"] - [d, 0.0])
        assert np.abs(shift).max() < 0.3, shift


@pytest.mark.blender
def test_rig_extrinsics_match_the_closed_form_and_cameras_share_a_time_base(stereo):
    rig = _rig(stereo)
    assert rig["format"] == "camsim-rig/1" and rig["reference"] == "Left" and rig["rigid"] is True
    assert [c["name"] for c in rig["cameras"]] == ["Left", "Right"] == [c["folder"] for c in rig["cameras"]]
    truth = {"Left": np.eye(4), "Right": _pose((0, 0, 0), (BASELINE, 0.0, 0.0))}
    for cam in rig["cameras"]:
        np.testing.assert_allclose(cam["camera_to_reference"], truth[cam["name"]], atol=1e-6)
        assert "camera_to_reference_per_frame" not in cam
    left, right = transforms.read(stereo / "Left"), transforms.read(stereo / "Right")
    for a, b in zip(left["frames"], right["frames"], strict=True):
        assert (a["frame_number"], a["time"]) == (b["frame_number"], b["time"])
        assert (a["camera"], b["camera"]) == ("Left", "Right")
        relative = np.linalg.inv(a["transform_matrix"]) @ np.asarray(b["transform_matrix"])
        np.testing.assert_allclose(relative, truth["Right"], atol=1e-6)
    rig_world = _pose(RIG_ROT, RIG_LOC)
    np.testing.assert_allclose(
        left["frames"][0]["transform_matrix"], rig_world @ _pose((0, 0, 0), (-BASELINE / 2, 0, 0)), atol=1e-6
    )
    assert rig["frame_numbers"] == [1, 2] and rig["settings_hash"] == left["settings_hash"]


@pytest.mark.blender
def test_all_renders_every_camera_sorted_by_name(build_scene, render):
    over_rot, over_loc = (1.2, 0.0, 0.6), (2.0, -3.0, 1.5)
    blend = build_scene("stereo_all", script=STEREO, overview=True, overview_rotation=over_rot,
                        overview_location=over_loc)  # fmt: skip
    cfg = RIG.replace(cameras=("all",), normals=False, flows=False, debug=False)
    seq = render(blend, "stereo_all", config=cfg, frame_start=1, frame_end=1)
    rig = _rig(seq)
    assert [c["name"] for c in rig["cameras"]] == ["Left", "Overview", "Right"]
    assert sorted(p.name for p in seq.iterdir() if p.is_dir()) == ["Left", "Overview", "Right"]
    left_world = _pose(RIG_ROT, RIG_LOC) @ _pose((0, 0, 0), (-BASELINE / 2, 0, 0))
    overview = next(c for c in rig["cameras"] if c["name"] == "Overview")
    assert overview["parent"] is None
    truth = np.linalg.inv(left_world) @ _pose(over_rot, over_loc)
    np.testing.assert_allclose(overview["camera_to_reference"], truth, atol=1e-6)
    assert [(p["left"], p["right"]) for p in rig["stereo"]] == [("Left", "Right")]
    for cam in ("Left", "Overview", "Right"):
        assert len(transforms.read(seq / cam)["frames"]) == 1


@pytest.mark.blender
def test_a_rotated_pair_is_not_rectified_and_writes_no_disparity(build_scene, render):
    toe_in = 0.02
    blend = build_scene("stereo_toe", script=STEREO, toe_in=toe_in)
    seq = render(
        blend, "stereo_toe", config=RIG.replace(normals=False, flows=False), frame_start=1, frame_end=1
    )
    rig = _rig(seq)
    (pair,) = rig["stereo"]
    assert pair["rectified"] is False and pair["disparity"] is False
    assert "orientations differ by 1.146 degrees" in pair["reason"]
    assert any("not rectified" in w and "no disparity" in w for w in rig["warnings"])
    assert not (seq / "Left" / "disparities").exists()
    assert not any("disparity_file_path" in fr for cam in ("Left", "Right")
                   for fr in transforms.read(seq / cam)["frames"])  # fmt: skip
    truth = _pose((0.0, toe_in, 0.0), (BASELINE, 0.0, 0.0))
    np.testing.assert_allclose(rig["cameras"][1]["camera_to_reference"], truth, atol=1e-6)


@pytest.mark.blender
def test_a_rig_whose_cameras_move_apart_records_extrinsics_per_frame(build_scene, render):
    blend = build_scene("stereo_wide", script=STEREO, baseline_velocity=0.05, rig_velocity=(0.1, 0.0, 0.0))
    cfg = RIG.replace(normals=False, flows=False, segmentations=False, debug=False)
    seq = render(blend, "stereo_wide", config=cfg, frame_start=1, frame_end=3)
    rig = _rig(seq)
    assert rig["rigid"] is False and any("not rigid" in w and "Right" in w for w in rig["warnings"])
    right = rig["cameras"][1]
    for k, m in enumerate(right["camera_to_reference_per_frame"]):
        np.testing.assert_allclose(m, _pose((0, 0, 0), (BASELINE + 0.05 * k, 0.0, 0.0)), atol=1e-6)
    (pair,) = rig["stereo"]
    assert pair["rectified"] is True
    np.testing.assert_allclose(
        pair["baseline_m_per_frame"], [BASELINE + 0.05 * k for k in range(3)], atol=1e-6
    )
    meta = transforms.read(seq / "Left")
    for k, fr in enumerate(meta["frames"]):  # each frame's disparity uses that frame's baseline
        d = read_exr(seq / "Left" / fr["disparity_file_path"])
        assert abs(float(np.median(d[d > 0])) - meta["fl_x"] * (BASELINE + 0.05 * k) / WALL) < 0.05


# ------------------------------------------------------------------------------------ resume, validate


@pytest.mark.blender
def test_a_resumed_rig_rerenders_only_the_frame_one_camera_lost(worker, build_scene, tmp_path):
    blend = build_scene("stereo_resume", script=STEREO)
    cfg = RIG.replace(normals=False, debug=False)
    job, first = _render(worker, blend, tmp_path / "seq", cfg, frame_start=1, frame_end=2)
    assert (first.frames_total, first.frames_rendered) == (4, 4)
    assert sequence_is_complete(job.output, job)
    files = {p: stamp(p) for p in job.output.rglob("*") if p.is_file()}
    lost = job.output / "Right" / "frames" / "frame_000002.png"
    lost.unlink()
    assert not sequence_is_complete(job.output, job)
    job, again = _render(worker, blend, job.output, cfg, Reuse(resume=True), frame_start=1, frame_end=2)
    assert (again.frames_rendered, again.frames_skipped) == (1, 3)
    assert sequence_is_complete(job.output, job) and lost.is_file()
    redone = {p for p in files if p.parent.parent.name == "Right" and p.name.endswith("000002" + p.suffix)}
    assert lost in redone and len(redone) == 4  # the frame, its depth, flow and segmentation
    for p, before in files.items():
        if p not in redone and p.name not in ("info.json", "transforms.json", "objects.json"):
            assert stamp(p) == before, p
    assert json.loads((job.output / "rig.json").read_text()) == _rig(job.output)
    (job.output / "rig.json").unlink()  # rig.json is written last: without it the rig is incomplete
    assert not sequence_is_complete(job.output, job)


@pytest.mark.blender
def test_a_rig_validates_loads_and_is_replaced_whole(stereo, tmp_path):
    report = validate_dataset(stereo)
    assert report.ok and [s.name for s in report.sequences] == [stereo.name]
    assert report.sequences[0].frames == 4
    data = Dataset.from_path(stereo)
    assert sorted(s.name for s in data.sequences) == ["Left", "Right"]
    left = Dataset.from_path(stereo / "Left", modalities=["frame", "disparity"])[0]
    assert left["disparity"].shape == (96, 128) and left["disparity"].max() > 9.0
    # A rig that lost a camera's transforms.json is incomplete, and so reported.
    copy = tmp_path / "copy"
    shutil.copytree(stereo, copy)
    (copy / "Right" / "transforms.json").unlink()
    broken = validate_dataset(copy)
    assert not broken.ok and broken.sequences[0].status == "incomplete"
    # --overwrite removes the rig's camera folders with its own files.
    clear_outputs(copy)
    assert not holds_output(copy) and sorted(p.name for p in copy.iterdir()) == []


@pytest.mark.blender
def test_create_datasets_renders_validates_reads_and_resumes_a_rig(build_scene, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(build_scene("stereo_cd", script=STEREO), scenes / "stereo.blend")
    out = tmp_path / "datasets"
    tiny = ["--render-config.width=64", "--render-config.height=48", "--render-config.max-samples=2",
            "--render-config.adaptive-threshold=0", "--render-config.no-use-denoising",
            f"--render-config.log-dir={tmp_path / 'logs'}", "--render-config.cameras", "Left", "Right"]  # fmt: skip

    def camsim(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "camsim",
            "create-datasets",
            f"--scenes-dir={scenes}",
            f"--datasets-dir={out}",
        ]
        return subprocess.run([*cmd, *args, *tiny], capture_output=True, text=True, timeout=600)

    done = camsim("--num-frames=2")
    assert done.returncode == 0, done.stderr[-3000:]
    (seq,) = (out / "renders" / "stereo").iterdir()
    assert sorted(p.name for p in seq.iterdir()) == ["Left", "Right", "rig.json", "settings.json"]
    manifest = json.loads((out / "dataset.json").read_text())
    (entry,) = manifest["sequences"].values()
    assert entry["stages"]["render"]["settings_hash"] == _rig(seq)["settings_hash"]
    assert validate_dataset(out).ok
    data = Dataset.from_path(out, stage="render")
    assert [s.name for s in data.sequences] == [f"stereo/{seq.name}/Left", f"stereo/{seq.name}/Right"]
    before = stamps(out / "renders")
    again = camsim("--num-frames=2", "--allow-skips")
    assert again.returncode == 0, again.stderr[-3000:]
    assert stamps(out / "renders") == before  # complete: skipped without rendering anything


# ------------------------------------------------------------------------------------ markers, refusals


@pytest.mark.blender
def test_named_cameras_override_timeline_camera_switches(build_scene, render):
    blend = build_scene("stereo_cut", script=STEREO, switch_to_right_at=2)
    with pytest.raises(SceneError, match="camera cut"):  # the scene camera: markers cut it (as before)
        render(blend, "stereo_cut_plain", config=FAST, frame_start=1, frame_end=3)
    cfg = RIG.replace(normals=False, flows=False, segmentations=False, debug=False)
    seq = render(blend, "stereo_cut_rig", config=cfg, frame_start=1, frame_end=3)
    for cam in ("Left", "Right"):
        meta = transforms.read(seq / cam)
        assert [fr["camera"] for fr in meta["frames"]] == [cam] * 3
        assert any(
            "timeline markers' camera switches (Left, Right) ignored" in a for a in meta["adjustments"]
        )


@pytest.mark.blender
def test_a_camera_the_scene_lacks_is_refused_by_name(build_scene, render):
    blend = build_scene("stereo_names", script=STEREO)
    with pytest.raises(SceneError, match=r"no object 'Middle' in scene 'stereo' \(cameras: Left, Right\)"):
        render(
            blend, "stereo_names", config=RIG.replace(cameras=("Left", "Middle")), frame_start=1, frame_end=1
        )
    with pytest.raises(SceneError, match="'Wall' is a mesh, not a camera"):
        render(blend, "stereo_names2", config=RIG.replace(cameras=("Wall",)), frame_start=1, frame_end=1)


def test_camera_lists_that_cannot_be_a_rig_are_refused():
    for cameras, match in [
        (("all", "Left"), "all stands alone"),
        (("Left", "Left"), "names Left more than once"),
        (("a/b",), "plain file name"),
        ((".hidden",), "starting with '.'"),
        (("frames",), "camsim's own"),
        (("rig.json",), "camsim's own"),
    ]:
        with pytest.raises(ConfigError, match=match):
            RenderConfig(cameras=cameras).validate()
    with pytest.raises(ConfigError, match="unbind-camera"):
        RenderConfig(cameras=("Left", "Right"), unbind_camera=True).validate()


def test_rectification_tolerances_are_tight_and_named():
    cam = {"w": 64, "h": 48, "fl_x": 60.0, "fl_y": 60.0, "cx": 32.0, "cy": 24.0}
    left = {**cam, "transform_matrix": _pose((0.3, 0.2, 0.1), (1.0, 2.0, 3.0))}

    def right(rotation=(0.0, 0.0, 0.0), offset=(0.1, 0.0, 0.0), **changes):
        return {**cam, **changes, "transform_matrix": left["transform_matrix"] @ _pose(rotation, offset)}

    assert rectification_problem(left, right()) is None
    assert rectification_problem(left, right(rotation=(0.0, 1e-6, 0.0))) is None
    assert "orientations differ" in rectification_problem(left, right(rotation=(0.0, 5e-6, 0.0)))
    assert "intrinsics differ (fl_x" in rectification_problem(left, right(fl_x=60.001))
    assert "not along x" in rectification_problem(left, right(offset=(0.1, 1e-4, 0.0)))
    assert "not along x" in rectification_problem(left, right(offset=(-0.1, 0.0, 0.0)))  # right is left of it
    assert rotation_angle(Rotation.from_rotvec([1e-7, 0, 0]).as_matrix()) == pytest.approx(1e-7, rel=1e-6)


def test_planning_a_rig_ignores_camera_cuts(tmp_path):
    scene = tmp_path / "s.blend"
    scene.write_bytes(b"BLENDER-v500")
    entry = SceneEntry("s", scene)
    for cameras, shots in (((), [(1, 4), (5, 10)]), (("Left", "Right"), [(1, 10)])):
        plan = plan_datasets([entry], tmp_path / "out", RenderConfig(cameras=cameras), PlanOptions(),
                             lambda _: SceneRange(1, 10, cuts=(5,)))  # fmt: skip
        assert plan.shots["s"] == shots and not plan.failures
