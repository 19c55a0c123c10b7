"""--consistency without false alarms: moving rigid objects (objects.json), views full of them, grazing
floors at low resolution, nothing to check; and still catching wrong flows.

Sequences are ray-cast with numpy (a floor and boxes, exact centre-sample ground truth, world
background flow from the camera rotation as the renderer writes it), no Blender needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from camsim import transforms
from camsim.consistency import interior_mask, parse_objects
from camsim.errors import DatasetError
from camsim.fileio import read_exr, write_exr, write_image, write_json_atomic
from camsim.validate import validate_dataset

Matrix = Callable[[int], np.ndarray]
"""A pose (4x4) as a function of the frame index (also called with -1 and n, for the end flows)."""


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world (OpenGL axes: the camera looks along -Z)."""
    eye, target, up = (np.asarray(x, float) for x in (eye, target, up))
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def rigid(angle_z: float, translation) -> np.ndarray:
    c, s = np.cos(angle_z), np.sin(angle_z)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = translation
    return m


@dataclass
class Box:
    id: int
    half: tuple[float, float, float]
    pose: Matrix
    recorded: bool = True
    """objects.json holds its matrix_world (False: listed without one, like a deforming object)."""
    wobble: float = 0.0
    """Extra flow (px) on top of the rigid motion: a deforming surface."""


@dataclass
class Scene:
    camera: Matrix
    w: int = 64
    h: int = 48
    f: float = 60.0
    floor: bool = True
    boxes: list[Box] = field(default_factory=list)
    flow_camera: Callable[[int, int], np.ndarray] | None = None
    """Camera pose at frame j that surface flow of frame i uses (Blender: the camera object of frame i
    evaluated at frame j, which differs from the pose of frame j across a camera cut)."""

    def intrinsics(self) -> np.ndarray:
        return np.array([[self.f, 0, self.w / 2], [0, self.f, self.h / 2], [0, 0, 1.0]])

    def rays(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Origin (3,) and directions (H,W,3) with camera-frame z = -1 (so t is planar depth)."""
        k, c2w = self.intrinsics(), self.camera(i)
        u, v = np.meshgrid(np.arange(self.w) + 0.5, np.arange(self.h) + 0.5)
        d = np.stack([(u - k[0, 2]) / k[0, 0], -(v - k[1, 2]) / k[1, 1], -np.ones_like(u)], axis=-1)
        return c2w[:3, 3], d @ c2w[:3, :3].T

    def cast(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Planar depth (inf = background) and segmentation ids (floor 1, boxes their id) of frame i."""
        o, d = self.rays(i)
        depth = np.full((self.h, self.w), np.inf)
        seg = np.zeros((self.h, self.w), np.uint32)
        if self.floor:
            with np.errstate(divide="ignore"):
                t = np.where(d[..., 2] < 0, -o[2] / d[..., 2], np.inf)
            hit = (t > 0) & (t < depth)
            depth[hit], seg[hit] = t[hit], 1
        for box in self.boxes:
            inv = np.linalg.inv(box.pose(i))
            lo = inv[:3, :3] @ o + inv[:3, 3]
            ld = d @ inv[:3, :3].T
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-np.asarray(box.half) - lo) / ld
                t2 = (np.asarray(box.half) - lo) / ld
            tmin = np.nan_to_num(np.minimum(t1, t2), nan=-np.inf).max(axis=-1)
            tmax = np.nan_to_num(np.maximum(t1, t2), nan=np.inf).min(axis=-1)
            hit = (tmax >= tmin) & (tmin > 0) & (tmin < depth)
            depth[hit], seg[hit] = tmin[hit], box.id
        return depth, seg

    def flow(self, i: int, j: int) -> np.ndarray:
        """Flow (H,W,2) of frame i's pixel centres to frame j, as the renderer writes it."""
        depth, seg = self.cast(i)
        o, d = self.rays(i)
        k = self.intrinsics()
        hit = np.isfinite(depth)
        pts = o + d * np.where(hit, depth, 1.0)[..., None]
        wobble = np.zeros((self.h, self.w, 2))
        for box in self.boxes:
            sel = seg == box.id
            m = box.pose(j) @ np.linalg.inv(box.pose(i))
            pts[sel] = pts[sel] @ m[:3, :3].T + m[:3, 3]
            wave = box.wobble * np.sin(0.7 * np.arange(self.w))  # a surface that ripples as it moves
            wobble[sel, 0] = np.broadcast_to(wave, sel.shape)[sel]
        cam_j = self.flow_camera(i, j) if self.flow_camera else self.camera(j)
        uv = _project(pts, cam_j, k, points=True)
        uv_sky = _project(d, self.camera(j), k, points=False)  # points at infinity: rotation only
        u, v = np.meshgrid(np.arange(self.w) + 0.5, np.arange(self.h) + 0.5)
        out = np.where(hit[..., None], uv, uv_sky) - np.stack([u, v], axis=-1) + wobble
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def matrices(self, i: int) -> dict[str, list]:
        mats = {"1": np.eye(4).tolist()} if self.floor else {}
        mats.update({str(b.id): b.pose(i).tolist() for b in self.boxes if b.recorded})
        return mats


def _project(x: np.ndarray, c2w: np.ndarray, k: np.ndarray, points: bool) -> np.ndarray:
    w2c = np.linalg.inv(c2w)
    pc = x @ w2c[:3, :3].T + (w2c[:3, 3] if points else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack(
            [k[0, 0] * pc[..., 0] / -pc[..., 2] + k[0, 2], -k[1, 1] * pc[..., 1] / -pc[..., 2] + k[1, 2]], -1
        )


def write_sequence(root: Path, scene: Scene, n: int = 5, objects: bool = True) -> Path:
    """Write scene frames 0..n-1 in the camsim IMG layout (+ objects.json unless `objects` is False)."""
    for sub in ("frames", "depths", "flows", "segmentations"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    k = scene.intrinsics()
    frames, object_frames = [], []
    for i in range(n):
        num = 100 + i
        depth, seg = scene.cast(i)
        shade = np.where(np.isfinite(depth), 255 / (1 + depth), 40).astype(np.uint8)
        write_image(
            root / f"frames/frame_{num:06d}.png",
            np.stack([shade, shade, (seg * 60 % 256).astype(np.uint8)], -1),
        )
        write_exr(root / f"depths/depth_{num:06d}.exr", {"Y": depth.astype(np.float32)})
        write_exr(root / f"segmentations/segmentation_{num:06d}.exr", {"Y": seg})
        fwd, bwd = scene.flow(i, i + 1).astype(np.float32), scene.flow(i, i - 1).astype(np.float32)
        write_exr(
            root / f"flows/flow_{num:06d}.exr",
            {"R": fwd[..., 0], "G": fwd[..., 1], "B": bwd[..., 0], "A": bwd[..., 1]},
        )
        frames.append(
            {
                "file_path": f"frames/frame_{num:06d}.png",
                "depth_file_path": f"depths/depth_{num:06d}.exr",
                "flow_file_path": f"flows/flow_{num:06d}.exr",
                "segmentation_file_path": f"segmentations/segmentation_{num:06d}.exr",
                "transform_matrix": scene.camera(i).tolist(),
                "frame_number": num,
                "time": i / 24.0,
            }
        )
        object_frames.append({"frame_number": num, "matrix_world": scene.matrices(i)})
    names = {"1": "Floor"} if scene.floor else {}
    names.update({str(b.id): f"Box{b.id}" for b in scene.boxes})
    meta = {
        "format": transforms.FORMAT_VERSION,
        "camera_model": "OPENCV",
        "fl_x": k[0, 0],
        "fl_y": k[1, 1],
        "cx": k[0, 2],
        "cy": k[1, 2],
        "w": scene.w,
        "h": scene.h,
        "fps": 24.0,
        "metres_per_unit": 1.0,
        "conventions": transforms.CONVENTIONS,
        "segmentation_ids": names,
        "frames": frames,
    }
    if objects:
        rigid_ids = {"1"} if scene.floor else set()
        rigid_ids |= {str(b.id) for b in scene.boxes if b.recorded}
        listing = {i: {"name": name, "rigid": i in rigid_ids} for i, name in names.items()}
        write_json_atomic(
            root / "objects.json",
            {"format": "camsim-objects/1", "objects": listing, "frames": object_frames},
        )
        meta["objects_file_path"] = "objects.json"
    transforms.write(root / "transforms.json", meta)
    return root


def sliding_camera(i: int) -> np.ndarray:
    return look_at((-0.06 * i, -4.0, 2.0), (-0.06 * i, 0.0, 0.5))


def slow_box_scene() -> Scene:
    """A box filling a third of the view, turning and drifting about 0.7 px a frame on its own (the
    floor, steep in depth, was all taken out by the former 2 % depth-jump mask, leaving the box)."""
    box = Box(2, (1.2, 0.8, 0.6), lambda i: rigid(0.006 * i, (0.03 * i, 0.0, 0.6)))
    return Scene(sliding_camera, boxes=[box])


def crowded_scene() -> Scene:
    """A truck-sized box passing 3 px a frame right in front of the camera: 95 % of the view moves."""
    box = Box(2, (3.0, 0.5, 1.35), lambda i: rigid(0.0, (0.25 * i, -2.0, 1.65)))
    return Scene(lambda i: look_at((0.0, -4.5, 1.0), (0.0, 0.0, 1.0)), boxes=[box])


def grazing_scene() -> Scene:
    """32x24, the camera 0.25 m above the floor looking nearly level, walking forward: sky above."""
    return Scene(lambda i: look_at((0.0, 0.08 * i, 0.25), (0.0, 0.08 * i + 10.0, -0.3)), w=32, h=24, f=28.0)


def _offset_flow(path: Path, dy: float = 0.0, dx: float = 0.0, where: np.ndarray | None = None) -> None:
    f = read_exr(path, tuple("RGBA"))
    sel = np.ones(f.shape[:2], bool) if where is None else where
    f[sel, 0] += dx
    f[sel, 1] += dy
    write_exr(path, {c: f[..., j] for j, c in enumerate("RGBA")})


def _consistency(root: Path):
    rep = validate_dataset(root, consistency=True)
    return rep, rep.sequences[0]


# ------------------------------------------------------------------------------ correct renders pass


def test_slowly_moving_rigid_object_is_judged_by_its_recorded_pose(tmp_path):
    root = write_sequence(tmp_path / "seq", slow_box_scene())
    seg = read_exr(root / "segmentations/segmentation_000100.exr", ("Y",))
    assert (seg == 2).mean() > 0.3
    flow = read_exr(root / "flows/flow_000100.exr", tuple("RGBA"))
    still = Scene(sliding_camera, boxes=[Box(2, (1.2, 0.8, 0.6), lambda i: rigid(0.0, (0.0, 0.0, 0.6)))])
    own = np.linalg.norm(flow[..., :2] - still.flow(0, 1), axis=-1)[seg == 2]
    assert 0.5 < np.median(own) < 1.0  # its own motion: what the static/moving heuristic cannot tell

    rep, s = _consistency(root)
    assert rep.ok, rep.problems
    c = s.consistency
    assert c.epe < 1e-3 and c.static_fraction == 1.0 and c.rigid_fraction == 1.0 and c.checked > 0


def test_view_full_of_a_moving_object_passes(tmp_path):
    root = write_sequence(tmp_path / "seq", crowded_scene())
    seg = read_exr(root / "segmentations/segmentation_000100.exr", ("Y",))
    assert 0.9 < (seg == 2).mean() < 0.97
    rep, s = _consistency(root)
    assert rep.ok, rep.problems
    assert s.consistency.epe < 1e-3 and s.consistency.rigid_fraction > 0.9


def test_old_dataset_without_objects_json_keeps_the_heuristic(tmp_path):
    """Without objects.json a 3 px/frame object is told apart as moving: fine when it is a part of the
    view; when it fills 95 % of the view, nothing says it moves, and the pair is flagged as before."""
    scene = crowded_scene()
    scene.boxes[0].half = (0.5, 0.5, 0.5)
    root = write_sequence(tmp_path / "small", scene, objects=False)
    rep, s = _consistency(root)
    assert rep.ok, rep.problems
    assert 0.5 < s.consistency.static_fraction < 1.0 and s.consistency.rigid_fraction == 0.0

    rep, s = _consistency(write_sequence(tmp_path / "full", crowded_scene(), objects=False))
    assert not rep.ok and "disagrees" in rep.problems[0].message


def test_deforming_object_listed_without_pose_is_left_out(tmp_path):
    scene = slow_box_scene()
    scene.boxes[0].recorded = False
    scene.boxes[0].wobble = 2.0
    rep, s = _consistency(write_sequence(tmp_path / "seq", scene))
    assert rep.ok, rep.problems
    c = s.consistency
    assert c.excluded > 0 and c.checked > 0 and c.epe < 1e-3 and c.rigid_fraction == 1.0  # floor only


def test_grazing_floor_at_32x24_is_checked(tmp_path):
    root = write_sequence(tmp_path / "seq", grazing_scene())
    depth = read_exr(root / "depths/depth_000100.exr", ("Y",))
    rows = depth[np.isfinite(depth).all(axis=1), 0]
    assert (rows[:-1] / rows[1:] > 1.05).all()  # > 5 % depth step between every two rows
    rep, s = _consistency(root)
    assert rep.ok, rep.problems
    c = s.consistency
    assert c.checked > 0.3 * 32 * 24 * 4 and c.epe < 1e-3, c
    assert not s.warnings


def test_nothing_to_check_is_a_warning_not_corruption(tmp_path):
    sky = Scene(lambda i: look_at((0.0, 0.05 * i, 1.0), (0.0, 0.05 * i + 1.0, 5.0)), floor=False)
    rep, s = _consistency(write_sequence(tmp_path / "seq", sky))
    assert rep.ok and s.status == "ok", rep.problems
    assert s.warnings == ["consistency not checked: no interior surface pixels"]
    assert s.consistency.checked == 0
    r = subprocess.run(
        [sys.executable, "-m", "camsim", "validate", str(tmp_path / "seq"), "--consistency"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "consistency not checked: no interior surface pixels" in r.stdout


def test_interior_mask_keeps_planes_and_drops_silhouettes():
    depth, seg = slow_box_scene().cast(0)
    mask = interior_mask(depth, seg)
    box = seg == 2
    # every pixel next to another id or to the sky is out; a plane's interior is in whatever its slope
    edge = np.zeros_like(box)
    for axis in (0, 1):
        for shift in (1, -1):
            edge |= np.roll(seg, shift, axis=axis) != seg
    assert not (mask & edge).any()
    assert mask[box & ~edge].mean() > 0.85 and mask[(seg == 1) & ~edge].mean() > 0.85
    # a step within one id (a ledge of the same object) is an edge too
    step = np.full((12, 16), 2.0)
    step[:, 8:] = 2.5
    m = interior_mask(step, np.ones((12, 16), np.uint32))
    assert not m[:, 7:9].any() and m[1:-1, 1:7].all() and m[1:-1, 9:-1].all()


# ------------------------------------------------------------------------------ wrong flows are caught


@pytest.mark.parametrize("make", [slow_box_scene, crowded_scene, grazing_scene])
def test_constant_offset_in_one_flow_file_is_caught(tmp_path, make):
    """The animated-lens-shift bug: one flow file 1.6 px off in y."""
    root = write_sequence(tmp_path / "seq", make())
    _offset_flow(root / "flows/flow_000102.exr", dy=1.6)
    rep, s = _consistency(root)
    assert s.status == "corrupted"
    assert [(p.kind, p.path.name) for p in rep.problems] == [("inconsistent", "flow_000102.exr")]
    assert "frames 2->3" in rep.problems[0].message


def test_camera_cut_inside_a_sequence_is_caught(tmp_path):
    """Frames 0-2 from one camera, 3-4 from another: Blender's flow of frame 2 follows its own camera,
    the poses jump by hundreds of pixels."""
    cam_a = sliding_camera
    cam_b: Matrix = lambda i: look_at((-4.0 + 0.05 * i, -0.5, 2.5), (0.0, 0.0, 0.5))  # noqa: E731
    scene = slow_box_scene()
    scene.camera = lambda i: cam_a(i) if i < 3 else cam_b(i)
    scene.flow_camera = lambda i, j: cam_a(j) if i < 3 else cam_b(j)
    root = write_sequence(tmp_path / "seq", scene)
    rep = validate_dataset(root, consistency=True)
    assert [(p.kind, p.path.name) for p in rep.problems] == [("inconsistent", "flow_000102.exr")]
    assert "disagrees" in rep.problems[0].message or "end-point error" in rep.problems[0].message


def test_wrong_flow_on_a_posed_object_is_not_excused_as_motion(tmp_path):
    root = write_sequence(tmp_path / "seq", slow_box_scene())
    seg = read_exr(root / "segmentations/segmentation_000101.exr", ("Y",))
    _offset_flow(root / "flows/flow_000101.exr", dx=3.0, where=seg == 2)
    rep = validate_dataset(root, consistency=True)
    assert [(p.kind, p.path.name) for p in rep.problems] == [("inconsistent", "flow_000101.exr")]
    assert "static and posed surfaces" in rep.problems[0].message


# ------------------------------------------------------------------------------------ objects.json


def test_objects_json_missing_or_broken_is_named(tmp_path):
    root = write_sequence(tmp_path / "a", slow_box_scene(), n=3)
    (root / "objects.json").unlink()
    rep = validate_dataset(root)
    assert [(p.kind, p.path.name) for p in rep.problems] == [("missing", "objects.json")]

    root = write_sequence(tmp_path / "b", slow_box_scene(), n=3)
    data = json.loads((root / "objects.json").read_text())
    data["frames"] = data["frames"][:2]
    (root / "objects.json").write_text(json.dumps(data))
    rep = validate_dataset(root, consistency=True)
    assert [(p.kind, p.path.name) for p in rep.problems] == [("corrupted", "objects.json")]
    assert "2 frames, transforms.json has 3" in rep.problems[0].message


def test_parse_objects():
    eye = np.eye(4).tolist()
    data = {
        "format": "camsim-objects/1",
        "objects": {"3": {"name": "Cube", "rigid": True}, "4": {"name": "Cloth", "rigid": False}},
        "frames": [{"frame_number": 1, "matrix_world": {"3": eye}}, {"frame_number": 2, "matrix_world": {}}],
    }
    poses = parse_objects(data, [1, 2])
    assert poses.ids == {3, 4} and set(poses.matrices[0]) == {3}
    assert poses.motions(0, 1) == {}
    with pytest.raises(DatasetError, match=r"frame 2, transforms\.json says 5"):
        parse_objects(data, [1, 5])
    # the renderer's layout: a rigid object that does not move has its matrix once, in its entry
    moved = rigid(0.1, (1.0, 2.0, 3.0))
    data["objects"]["5"] = {"name": "Table", "rigid": True, "matrix_world": eye}
    data["objects"]["4"]["matrix_world"] = eye  # not rigid: its matrix is not used
    data["frames"][1]["matrix_world"] = {"3": moved.tolist()}
    poses = parse_objects(data, [1, 2])
    assert poses.ids == {3, 4, 5} and [set(m) for m in poses.matrices] == [{3, 5}, {3, 5}]
    motions = poses.motions(0, 1)
    assert set(motions) == {3, 5} and np.allclose(motions[3], moved) and np.allclose(motions[5], np.eye(4))
    data["frames"][1]["matrix_world"] = {"3": [[1, 2], [3, 4]]}
    with pytest.raises(DatasetError, match="4x4"):
        parse_objects(data, [1, 2])
