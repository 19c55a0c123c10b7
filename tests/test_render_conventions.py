"""Every sentence of camsim.transforms.CONVENTIONS, checked against what a render writes (issue 13, item 1).

One tiny sequence of tests/scenes/conventions.py (the analytic "flow" scene, dressed: a back plane
beside the world background, a tilted mover seen from behind, two collection instances, a spinning
and zooming camera with lens shift and object scale, a camera cut after the sequence, 1 unit = 0.5 m)
is rendered once per module, plus three frames of the same scene at keyframe multiplier 2.5 under
Blender's default AgX view transform. Everything is predicted in closed form from the scene's
parameters (plane and box intersections through pixel centres, the rig's Euler angles, Blender's
lens and shift rules), and what Blender itself reports (active camera, matrix_world, intrinsics,
centre-ray hits) comes from the independent ray-casting oracle (tests/oracle.py).

CHECKS maps every CONVENTIONS key to the check of its sentence; a key without a check fails. Each
check first asserts that the sentence still says what the check verifies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FAST, TESTS
from lens_truth import sample_rays
from oracle import OracleFrame, oracle
from scipy.ndimage import binary_dilation, label
from scipy.spatial.transform import Rotation

from camsim import lenses, srgb, transforms
from camsim.errors import SceneError
from camsim.fileio import read_exr, read_exr_parts, read_image

pytestmark = pytest.mark.blender

SCRIPT = TESTS / "scenes" / "conventions.py"

# The scene (Blender units; the rig frame is the camera's frame when the camera is at its first-frame spot).
W, H = 64, 48
LENS, SENSOR, LENS_GROWTH, SPAN = 35.0, 36.0, 1.5, 10  # analytic.py: lens x 1.5 from frame 1 to 11
SHIFT = (0.05, -0.04)
RIG_ROT, RIG_LOC = (0.3, -0.2, 0.5), (1.0, 2.0, 3.0)
SPIN = (0.0, 0.004, 0.012)  # rig rotation, radians per frame (XYZ Euler)
CAM_V, OBJ_V = (0.05, 0.02, 0.0), (0.04, -0.03, 0.0)  # per frame, rig frame
DEPTH, OBJ_DEPTH = 6.0, 3.0
BACK_SIZE, BACK_X = (5.0, 8.0), -2.5
TILT = 0.6  # the mover is turned by TILT + pi about X: the camera sees its back face
POSTS, POST_SIZE = ((1.4, 0.9, -4.0), (2.0, -1.0, -5.0)), 0.4
CUT = 4  # timeline marker: CamB from frame 4
MPU = 0.5  # scale_length
CAMERA_SCALE = 2.0
SCENE = dict(width=W, height=H, lens=LENS, shift_x=SHIFT[0], shift_y=SHIFT[1], rig_rotation=RIG_ROT,
             rig_location=RIG_LOC, camera_velocity=CAM_V, object_velocity=OBJ_V, depth=DEPTH,
             object_depth=OBJ_DEPTH, animate_lens=True, frames=(1, 1 + SPAN), back_size=BACK_SIZE,
             back_x=BACK_X, mover_tilt=TILT + math.pi, spin=SPIN, posts=POSTS, post_size=POST_SIZE,
             cut_frame=CUT, scale_length=MPU, camera_scale=CAMERA_SCALE)  # fmt: skip
FRAMES = (1, 3)  # frame 0 (before the scene) and frame 4 (CamB's) are the edge neighbours
MULTIPLIER, SCALED_FRAMES = 2.5, (3, 5)
NAMES = ("", "Back", "Mover", "Post")  # closed-form hit index -> object name ("" = nothing)

DEPTH_REL = 1e-4
FLOW_EPE_MEAN, FLOW_EPE_P99 = 0.05, 0.1
NORMAL_DEG = 0.5


# ------------------------------------------------------------------------------ closed-form truth


def scene_time(frame: float) -> float:
    """Frames since the first key (frame 1); every animation is linear and extrapolated linearly."""
    return frame - 1.0


def intrinsics_at(t: float) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) by Blender's rules: horizontal sensor fit (W > H), shift in units of the width."""
    fx = LENS * (1.0 + (LENS_GROWTH - 1.0) * t / SPAN) / SENSOR * W
    return fx, fx, W / 2 - SHIFT[0] * W, H / 2 + SHIFT[1] * W


def rig_rotation(t: float) -> np.ndarray:
    return Rotation.from_euler("xyz", np.add(RIG_ROT, np.multiply(SPIN, t))).as_matrix()


def camera_in_rig(t: float) -> np.ndarray:
    return np.multiply(CAM_V, t)


def camera_to_world(t: float) -> np.ndarray:
    """4x4 camera-to-world in METRES: the camera has no rotation of its own inside the rig."""
    m = np.eye(4)
    m[:3, :3] = rig_rotation(t)
    m[:3, 3] = (rig_rotation(t) @ camera_in_rig(t) + RIG_LOC) * MPU
    return m


def _planes(t: float) -> list[tuple[int, np.ndarray, np.ndarray, tuple[float, float]]]:
    """(name index, centre in the rig frame, rotation, half extents) of the two planes at time t."""
    mover = np.array([0.0, 0.0, -OBJ_DEPTH]) + np.multiply(OBJ_V, t)
    return [
        (1, np.array([BACK_X, 0.0, -DEPTH]), np.eye(3), (BACK_SIZE[0] / 2, BACK_SIZE[1] / 2)),
        (2, mover, Rotation.from_euler("x", TILT + math.pi).as_matrix(), (0.5, 0.5)),
    ]


def rays(u: np.ndarray, v: np.ndarray, k: tuple[float, float, float, float]) -> np.ndarray:
    """Camera-frame rays through image points (u right, v down) with z = -1 (the sentence's inverse)."""
    fx, fy, cx, cy = k
    return np.stack([(u - cx) / fx, -(v - cy) / fy, -np.ones_like(u)], axis=-1)


def plane_depth(t: float, which: int, r: np.ndarray, bounded: bool = True) -> np.ndarray:
    """Planar depth (Blender units) where rays r (camera frame, z = -1) meet plane `which`; inf: missed."""
    _, centre, rot, half = _planes(t)[which - 1]
    p0 = centre - camera_in_rig(t)
    n = rot[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (p0 @ n) / (r @ n)
    local = (s[..., None] * r - p0) @ rot
    inside = (np.abs(local[..., 0]) <= half[0]) & (np.abs(local[..., 1]) <= half[1]) if bounded else True
    return np.where((s > 0) & inside, s, np.inf)


def box_depth(t: float, centre: tuple[float, ...], r: np.ndarray) -> np.ndarray:
    """Planar depth where rays meet an axis-aligned cube (slab method); inf: missed."""
    c = np.asarray(centre) - camera_in_rig(t)
    h = POST_SIZE / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (c - h) / r, (c + h) / r
    near, far = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    return np.where((near <= far) & (near > 0), near, np.inf)


def cast(t: float, u: np.ndarray, v: np.ndarray, k=None) -> tuple[np.ndarray, np.ndarray]:
    """(index into NAMES, planar depth in Blender units) of the nearest surface through image points."""
    r = rays(u, v, k or intrinsics_at(t))
    boxes = np.minimum.reduce([box_depth(t, c, r) for c in POSTS])
    stack = np.stack([plane_depth(t, 1, r), plane_depth(t, 2, r), boxes])
    hit = np.isfinite(stack).any(0)
    return np.where(hit, np.argmin(stack, 0) + 1, 0), stack.min(0)


def project(points: np.ndarray, k: tuple[float, float, float, float]) -> np.ndarray:
    """The intrinsics sentence: u = fl_x X/(-Z) + cx, v = -fl_y Y/(-Z) + cy."""
    fx, fy, cx, cy = k
    z = -points[..., 2]
    return np.stack([fx * points[..., 0] / z + cx, -fy * points[..., 1] / z + cy], axis=-1)


def surface_flow(t: float, t2: float, which: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Flow (px, y down) of the point of plane `which` (extended) seen at (u, v), from time t to t2."""
    r = rays(u, v, intrinsics_at(t))
    p = plane_depth(t, which, r, bounded=False)[..., None] * r + camera_in_rig(t)  # rig frame
    if which == 2:
        p = p + np.multiply(OBJ_V, t2 - t)
    uv = project(p - camera_in_rig(t2), intrinsics_at(t2))
    return uv - np.stack([u, v], -1)


def background_flow(t: float, t2: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Flow of points at infinity: the ray's world direction seen by the camera at t2."""
    r = rays(u, v, intrinsics_at(t))
    r2 = r @ (rig_rotation(t2).T @ rig_rotation(t)).T
    return project(r2, intrinsics_at(t2)) - np.stack([u, v], -1)


def pixel_grid() -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)


def footprint_uniform(t: float, reach: float = 1.0, steps: int = 5) -> np.ndarray:
    """Pixels whose whole neighbourhood (+-reach px, where the filter's samples land) shows one surface."""
    u, v = pixel_grid()
    first = cast(t, u, v)[0]
    same = np.ones(first.shape, dtype=bool)
    for dy in np.linspace(-reach, reach, steps):
        for dx in np.linspace(-reach, reach, steps):
            same &= cast(t, u + dx, v + dy)[0] == first
    return same


# ------------------------------------------------------------------------------------- renders


@dataclass
class Frame:
    number: int
    t: float
    entry: dict[str, Any]
    rgb: np.ndarray
    linear: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    flow: np.ndarray
    ids: np.ndarray
    names: np.ndarray  # object name per pixel through segmentation_ids ("" = 0)
    truth_which: np.ndarray
    truth_depth: np.ndarray  # metres
    oracle: OracleFrame


@dataclass
class Rendered:
    out: Path
    meta: dict[str, Any]
    frames: list[Frame]
    blend: Path
    scaled_out: Path
    scaled_meta: dict[str, Any]
    render: Callable[..., Path]
    scene_info: dict[str, Any]

    def file(self, rel: str, scaled: bool = False) -> Path:
        return transforms.resolve_path(self.scaled_out if scaled else self.out, rel)


@pytest.fixture(scope="module")
def rendered(worker, render, tmp_path_factory) -> Rendered:
    folder = tmp_path_factory.mktemp("conventions-scenes")
    blend, agx = folder / "conventions.blend", folder / "conventions_agx.blend"
    scene_info = worker.build_scene(SCRIPT, blend, **SCENE)
    worker.build_scene(SCRIPT, agx, **{**SCENE, "view_transform": "AgX"})
    out = render(blend, "conventions", config=FAST.replace(linear=True, scene_flows=True), frame_start=FRAMES[0],
                 frame_end=FRAMES[1])  # fmt: skip
    scaled_cfg = FAST.replace(linear=True, keyframe_multiplier=MULTIPLIER, depths=False, normals=False,
                              flows=False, debug=False)  # fmt: skip
    scaled = render(agx, "conventions_scaled", config=scaled_cfg, frame_start=SCALED_FRAMES[0],
                    frame_end=SCALED_FRAMES[1])  # fmt: skip
    meta = transforms.read(out)
    seen = oracle(blend, out)
    name_of = {0: "", **{int(i): name for i, name in meta["segmentation_ids"].items()}}
    u, v = pixel_grid()
    frames = []
    for fr in meta["frames"]:
        f = int(fr["frame_number"])
        t = scene_time(f)
        ids = read_exr(transforms.resolve_path(out, fr["segmentation_file_path"]))
        which, depth_bu = cast(t, u, v)
        frames.append(Frame(
            number=f, t=t, entry=fr,
            rgb=read_image(transforms.resolve_path(out, fr["file_path"])),
            linear=read_exr(transforms.resolve_path(out, fr["linear_file_path"]), ("R", "G", "B")),
            depth=read_exr(transforms.resolve_path(out, fr["depth_file_path"]), ("Y",)),
            normal=read_exr(transforms.resolve_path(out, fr["normal_file_path"]), ("R", "G", "B")),
            flow=read_exr(transforms.resolve_path(out, fr["flow_file_path"]), ("R", "G", "B", "A")),
            ids=ids, names=np.vectorize(lambda i: name_of.get(int(i), "?"), otypes=[str])(ids),
            truth_which=which, truth_depth=depth_bu * MPU, oracle=seen[f],
        ))  # fmt: skip
    return Rendered(out, meta, frames, blend, scaled, transforms.read(scaled), render, scene_info)


def says(key: str, *phrases: str) -> None:
    """The sentence still makes the claims its check verifies."""
    text = transforms.CONVENTIONS[key]
    missing = [p for p in phrases if p not in text]
    assert not missing, f"CONVENTIONS[{key!r}] no longer says {missing}: update its check"


def channels(path: Path) -> dict[str, np.dtype]:
    return {name: arr.dtype for name, arr in read_exr_parts(path).items()}


def truth_names(fr: Frame) -> np.ndarray:
    return np.array(NAMES)[fr.truth_which]


# ---------------------------------------------------------------------------------------- checks


def check_camera_axes(r: Rendered) -> None:
    says("camera_axes", "+X right", "+Y up", "+Z toward the viewer", "looks along -Z")
    for fr in r.frames:
        c2w = np.asarray(fr.entry["transform_matrix"])
        # Objects the scene puts at -Z (in front), +X / +Y of the camera are there in the recorded frame ...
        for centre in POSTS:
            world = np.append((rig_rotation(fr.t) @ centre + RIG_LOC) * MPU, 1.0)
            local = (np.linalg.inv(c2w) @ world)[:3]
            np.testing.assert_allclose(local, (np.asarray(centre) - camera_in_rig(fr.t)) * MPU, atol=1e-6)
        # ... and in the image: both posts (+X) right of cx, the +Y one above cy, the -Y one below.
        blobs, n = label(fr.names == "Post")
        assert n == 2
        _, _, cx, cy = intrinsics_at(fr.t)
        centroids = [np.argwhere(blobs == b).mean(0) + 0.5 for b in (1, 2)]  # (row, col) centres
        assert all(col > cx + 5 for _, col in centroids)
        assert sorted(np.sign(cy - row) for row, _ in centroids) == sorted(np.sign(c[1]) for c in POSTS)
        # The camera's +Z axis points away from the scene: the back plane lies along -Z.
        back_world = (rig_rotation(fr.t) @ np.array([BACK_X, 0.0, -DEPTH]) + RIG_LOC) * MPU
        ahead = back_world - c2w[:3, 3]
        assert ahead @ c2w[:3, 2] / np.linalg.norm(ahead) < -0.9


def check_transform_matrix(r: Rendered) -> None:
    says("transform_matrix", "camera-to-world", "4x4", "row-major", "orthonormal", "scale", "metres")
    for fr in r.frames:
        m = np.asarray(fr.entry["transform_matrix"], dtype=np.float64)
        assert m.shape == (4, 4)
        np.testing.assert_array_equal(m[3], [0.0, 0.0, 0.0, 1.0])
        rot = m[:3, :3]
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-6)  # the camera object has scale 2
        assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(m, camera_to_world(fr.t), atol=1e-6)  # rows; translation in metres
        # camera-to-world: the camera-frame origin is the camera's world position, in metres.
        np.testing.assert_allclose(m @ [0, 0, 0, 1], [*fr.oracle.c2w[:3, 3] * MPU, 1.0], atol=1e-6)
        np.testing.assert_allclose(rot, fr.oracle.c2w[:3, :3], atol=1e-6)


def check_world_axes(r: Rendered) -> None:
    says("world_axes", "Blender world", "+Z up", "right-handed", "metres", "metres_per_unit")
    assert r.meta["metres_per_unit"] == MPU == r.frames[0].oracle.metres_per_unit
    for fr in r.frames:
        c2w = np.asarray(fr.entry["transform_matrix"])
        assert np.linalg.det(c2w[:3, :3]) > 0  # right-handed
        # Back-projected pixels land on the back plane where Blender's world puts it, x metres_per_unit.
        back = (fr.names == "Back") & np.isfinite(fr.depth)
        depth = np.where(back, fr.depth, 1.0).astype(np.float64)
        pts = transforms.unproject(depth, c2w, transforms.intrinsics(r.meta, r.frames.index(fr)))
        n_world = rig_rotation(fr.t)[:, 2]
        on_plane = (pts[back] / MPU - RIG_LOC) @ n_world
        np.testing.assert_allclose(on_plane, -DEPTH, atol=DEPTH * 1e-4)
        np.testing.assert_allclose(c2w[:3, 3], fr.oracle.c2w[:3, 3] * MPU, atol=1e-6)


def check_pixel_origin(r: Rendered) -> None:
    says("pixel_origin", "top-left corner of the top-left pixel", "integer + 0.5", "x right, y down")
    u, v = pixel_grid()
    for fr in r.frames:
        assert (truth_names(fr) != fr.names).sum() <= 3
        # Other origins explain the ids far worse: corners at integers, or y up.
        for du, dv, flip in ((-0.5, -0.5, False), (0.0, 0.0, True)):
            which = cast(fr.t, u + du, (H - v if flip else v) + dv)[0]
            assert (np.array(NAMES)[which] != fr.names).sum() >= 30
        # Depth on the tilted mover is exact at pixel centres, and off by far more half a pixel away.
        mover = (fr.names == "Mover") & (truth_names(fr) == "Mover") & footprint_uniform(fr.t, 0.6, 3)
        assert mover.sum() > 100
        rel = np.abs(fr.depth[mover] - fr.truth_depth[mover]) / fr.truth_depth[mover]
        assert rel.max() < DEPTH_REL
        shifted = plane_depth(fr.t, 2, rays(u - 0.5, v - 0.5, intrinsics_at(fr.t)), bounded=False) * MPU
        assert (np.abs(fr.depth[mover] - shifted[mover]) / shifted[mover]).mean() > 30 * DEPTH_REL


def check_intrinsics(r: Rendered) -> None:
    says("intrinsics", "u = fl_x * X/(-Z) + cx", "v = -fl_y * Y/(-Z) + cy", "every frame carries its own",
         "animated", "first frame's", "no distortion")  # fmt: skip
    meta = r.meta
    assert all(meta[k] == 0.0 for k in ("k1", "k2", "p1", "p2"))
    assert (meta["w"], meta["h"]) == (W, H)
    for key in ("fl_x", "fl_y", "cx", "cy"):
        assert meta[key] == r.frames[0].entry[key]
    u, v = pixel_grid()
    fls = []
    for i, fr in enumerate(r.frames):
        k = tuple(fr.entry[key] for key in ("fl_x", "fl_y", "cx", "cy"))
        np.testing.assert_allclose(k, intrinsics_at(fr.t), rtol=1e-7)
        np.testing.assert_allclose(transforms.intrinsics(meta, i), fr.oracle.K, atol=1e-3)
        fls.append(k[0])
        # The sentence's projection with the recorded numbers explains every id but silhouette pixels.
        which = cast(fr.t, u, v, k)[0]
        assert (np.array(NAMES)[which] == fr.names).mean() > 0.995
        # A known point: the mover's centre projects through the recorded intrinsics onto the mover.
        centre = _planes(fr.t)[1][1] - camera_in_rig(fr.t)
        cu, cv = project(centre, k)
        assert fr.names[int(cv), int(cu)] == "Mover"
    assert fls[0] < fls[1] < fls[2]  # the zoom is recorded frame by frame


def check_depth(r: Rendered) -> None:
    says("depth", "planar z-depth", "not along the ray", "metres", "float32", "channel Y", "+inf")
    u, v = pixel_grid()
    for fr in r.frames:
        assert channels(r.file(fr.entry["depth_file_path"])) == {"Y": np.dtype(np.float32)}
        hit = np.isfinite(fr.truth_depth)
        # Everywhere the centre ray meets a surface (silhouettes too): the closed-form planar depth.
        ok = hit & (truth_names(fr) == fr.names)
        assert ok.sum() > 0.99 * hit.sum()
        rel = np.abs(fr.depth[ok] - fr.truth_depth[ok]) / fr.truth_depth[ok]
        assert rel.max() < DEPTH_REL, rel.max()
        # Planar, not radial: the fronto-parallel back plane is one depth, DEPTH x MPU metres, although
        # its distance along the rays differs by over 3 % across it.
        back = fr.names == "Back"
        np.testing.assert_allclose(fr.depth[back], DEPTH * MPU, rtol=DEPTH_REL)
        radial = np.linalg.norm(rays(u, v, intrinsics_at(fr.t)), axis=-1)[back]
        assert radial.max() / radial.min() > 1.03
        # Background: +inf exactly where the centre ray hits nothing (Blender's oracle agrees).
        assert np.array_equal(np.isposinf(fr.depth), ~np.isfinite(fr.oracle.depth))
        assert np.isposinf(fr.depth[~hit]).all() and not np.isnan(fr.depth).any()
        assert (~hit).mean() > 0.3


def check_normal(r: Rendered) -> None:
    says("normal", "unit", "camera frame", "+Z toward the viewer", "R, G, B = x, y, z", "toward the camera",
         "background 0")  # fmt: skip
    f32 = np.dtype(np.float32)
    mover_geometric = Rotation.from_euler("x", TILT + math.pi).apply([0.0, 0.0, 1.0])  # faces away
    truths = {"Back": np.array([0.0, 0.0, 1.0]), "Mover": -mover_geometric}
    u, v = pixel_grid()
    for fr in r.frames:
        assert channels(r.file(fr.entry["normal_file_path"])) == {"R": f32, "G": f32, "B": f32}
        surface = np.isfinite(fr.depth)
        np.testing.assert_allclose(np.linalg.norm(fr.normal[surface], axis=-1), 1.0, atol=1e-5)
        assert (fr.normal[~surface] == 0).all()
        clean = footprint_uniform(fr.t)
        for name, truth in truths.items():
            mask = clean & (fr.names == name)
            assert mask.sum() > 50, name
            angle = np.degrees(np.arccos(np.clip(fr.normal[mask] @ truth, -1.0, 1.0)))
            assert angle.max() < NORMAL_DEG, (name, angle.max())
        # In the camera frame, not the world's (the rig is turned), and toward the camera even for the
        # mover's back face: n . (-ray) > 0 on every surface pixel (the posts' faces included).
        assert np.degrees(np.arccos(truths["Back"] @ rig_rotation(fr.t)[:, 2])) > 10
        facing = np.einsum("hwc,hwc->hw", fr.normal, -rays(u, v, intrinsics_at(fr.t)))
        assert (facing[surface] > 0).all()
        assert (fr.normal[surface][:, 2] > 0).mean() > 0.95


def check_flow(r: Rendered) -> None:
    says("flow", "pixels, x right, y down", "R, G = forward flow (dx, dy) from this frame to the next",
         "B, A = backward flow (dx, dy) from this frame to the previous", "pixel-centre sample hit no surface",
         "points at infinity", "camera rotation and intrinsics only", "first and last frame",
         "one frame outside the sequence", "scene's range", "camera cut")  # fmt: skip
    f32 = np.dtype(np.float32)
    u, v = pixel_grid()
    moving_bg = 0.0
    for fr in r.frames:
        assert channels(r.file(fr.entry["flow_file_path"])) == {c: f32 for c in "RGBA"}
        fwd, bwd = fr.flow[..., :2], fr.flow[..., 2:]
        clean = footprint_uniform(fr.t)
        # Frame 1's backward flow goes to frame 0, before the scene's range (animation extrapolated);
        # frame 3's forward flow to frame 4, where the active camera is CamB: the truth is Camera's.
        for name, which in (("Back", 1), ("Mover", 2)):
            mask = clean & (fr.names == name)
            assert mask.sum() > 50, name
            for got, t2 in ((fwd, fr.t + 1), (bwd, fr.t - 1)):
                epe = np.linalg.norm(got[mask] - surface_flow(fr.t, t2, which, u, v)[mask], axis=-1)
                where = (fr.number, name, "forward" if t2 > fr.t else "backward")
                assert epe.mean() < FLOW_EPE_MEAN and np.percentile(epe, 99) < FLOW_EPE_P99, where
        # World background: the flow of points at infinity, not 0, and not the surfaces' flow.
        sky = ~np.isfinite(fr.depth)
        for got, t2 in ((fwd, fr.t + 1), (bwd, fr.t - 1)):
            truth = background_flow(fr.t, t2, u, v)[sky]
            assert np.abs(got[sky] - truth).max() < 1e-3
            moving_bg = max(moving_bg, float(np.linalg.norm(truth, axis=-1).min()))
    assert moving_bg > 0.3  # the background does move (rotation and zoom)
    # The edge neighbours checked above: frame 0 lies before the scene's range, frame 4 after the cut.
    assert r.frames[0].number - 1 < r.meta["scene_frame_range"][0] and r.frames[-1].number + 1 == CUT


def check_segmentation(r: Rendered) -> None:
    says("segmentation", "channel Y", "uint32", "0 = background", "one id per object", "shared by all its instances",
         "1..N", "sorted", "stable for a scene", "segmentation_ids", "name [library path]")  # fmt: skip
    meta = r.meta
    assert meta["segmentation_ids"] == {"1": "Back", "2": "Mover", "3": "Post"}  # sorted names -> 1..N
    assert meta["segmentation_objects"]["3"]["instanced_by"] == ["PostA", "PostB"]
    for fr in r.frames:
        assert channels(r.file(fr.entry["segmentation_file_path"])) == {"Y": np.dtype(np.uint32)}
        assert np.array_equal(fr.ids == 0, ~np.isfinite(fr.depth))  # 0 exactly where nothing was hit
        assert (fr.ids == fr.oracle.ids).mean() > 0.999
        assert (truth_names(fr) == fr.names).mean() > 0.995
        # Both instances of Post carry Post's one id.
        blobs, n = label(fr.names == "Post")
        assert n == 2 and min((blobs == b).sum() for b in (1, 2)) > 10
    # Stable: another render of the scene (another build, frames and keyframe multiplier) gives the same ids.
    assert r.scaled_meta["segmentation_ids"] == meta["segmentation_ids"]
    for fr in r.scaled_meta["frames"]:
        ids = read_exr(r.file(fr["segmentation_file_path"], scaled=True))
        assert set(np.unique(ids)) == {0, 1, 2, 3}
    # Linked-library names ('name [library path]') and particle / geometry-nodes instances need library
    # files and instancers this scene lacks: test_render_zoo.py::test_instances_and_linked_objects_get_their_own_ids.


def check_time(r: Rendered) -> None:
    says("time", "seconds", "(frame_number - frame_start x keyframe_multiplier) / fps",
         "fps = scene fps x keyframe_multiplier", "same time at every multiplier")  # fmt: skip
    assert r.meta["fps"] == 25.0
    for fr in r.frames:
        assert fr.entry["time"] == pytest.approx((fr.number - 1) / 25.0, abs=1e-12)
    scaled = r.scaled_meta
    assert scaled["fps"] == pytest.approx(25.0 * MULTIPLIER)
    assert scaled["scene_frame_range"][0] == math.ceil(SCENE["frames"][0] * MULTIPLIER)
    for fr in scaled["frames"]:
        # Frame n shows the scene's frame n / m: its time is that frame's time in the unscaled scene.
        t = (fr["frame_number"] / MULTIPLIER - SCENE["frames"][0]) / 25.0
        assert fr["time"] == pytest.approx(t, abs=1e-12)


def check_frame_number(r: Rendered) -> None:
    says("frame_number", "Blender frame number after keyframe scaling", "n / keyframe_multiplier",
         "frame_000123")  # fmt: skip
    assert [fr.number for fr in r.frames] == list(range(FRAMES[0], FRAMES[1] + 1))
    for fr in r.frames:
        assert fr.entry["file_path"] == f"frames/frame_{fr.number:06d}.png"
        # The pose recorded for frame n is Blender's camera at frame n (the oracle's frame_set(n)).
        np.testing.assert_allclose(
            np.asarray(fr.entry["transform_matrix"])[:3, :3], fr.oracle.c2w[:3, :3], atol=1e-6
        )
    scaled = r.scaled_meta["frames"]
    assert [fr["frame_number"] for fr in scaled] == list(range(SCALED_FRAMES[0], SCALED_FRAMES[1] + 1))
    for fr in scaled:
        t = scene_time(fr["frame_number"] / MULTIPLIER)  # frame n shows the scene's frame n / m
        np.testing.assert_allclose(fr["transform_matrix"], camera_to_world(t), atol=1e-6)
        assert fr["fl_x"] == pytest.approx(intrinsics_at(t)[0], rel=1e-7)
        assert fr["file_path"] == f"frames/frame_{fr['frame_number']:06d}.png"


def check_camera(r: Rendered) -> None:
    says("camera", "frames[i].camera", "scene camera of the frame", "never crosses a camera cut", "refused")
    for fr in r.frames:
        assert fr.entry["camera"] == fr.oracle.camera == "Camera"
    assert all(fr["camera"] == "Camera" for fr in r.scaled_meta["frames"])
    with pytest.raises(SceneError, match=rf"frame {CUT}\b.*'Camera'.*'CamB'"):
        r.render(r.blend, "conventions_cut", config=FAST, frame_start=CUT - 1, frame_end=CUT)


def check_rgb(r: Rendered) -> None:
    says("rgb", "PNG", "Combined pass", "scene's own colour management", "recorded in colour_management",
         "view transform", "AgX", "dither", "Standard", "sRGB OETF", "linear/", "within one code value")  # fmt: skip
    info = r.scene_info
    settings = ("view_transform", "look", "exposure", "gamma", "curves", "display_device")
    assert tuple(info[k] for k in settings) == ("Standard", "None", 0.0, 1.0, False, "sRGB")
    assert info["dither_intensity"] == 1.0  # Blender's default
    recorded = r.meta["colour_management"]  # what the scene builder set, as transforms.json records it
    assert (recorded["view_transform"], recorded["look"], recorded["display_device"]) == (
        "Standard",
        "None",
        "sRGB",
    )
    assert (recorded["exposure"], recorded["gamma"], recorded["use_curve_mapping"]) == (0.0, 1.0, False)
    assert recorded["dither_intensity"] == 1.0
    assert r.scaled_meta["colour_management"]["view_transform"] == "AgX"
    for fr in r.frames:
        assert fr.rgb.dtype == np.uint8 and fr.rgb.shape == (H, W, 3)
        assert len(np.unique(fr.rgb)) > 30  # many colours: the check below is not about one grey
        encoded = srgb.oetf(np.clip(fr.linear.astype(np.float64), 0, 1)) * 255
        diff = fr.rgb.astype(np.float64) - np.floor(encoded + 0.5)
        assert np.abs(diff).max() <= 1 and np.abs(fr.rgb - encoded).mean() < 0.5
    # The same scene under Blender's default AgX: the frames are not the sRGB OETF of linear light.
    for fr in r.scaled_meta["frames"]:
        rgb = read_image(r.file(fr["file_path"], scaled=True)).astype(np.float64)
        lin = read_exr(r.file(fr["linear_file_path"], scaled=True), ("R", "G", "B")).astype(np.float64)
        assert np.abs(rgb - srgb.oetf(np.clip(lin, 0, 1)) * 255).mean() > 5


def check_sampling(r: Rendered) -> None:
    says("sampling", "one camera sample at the pixel centre", "never a blend", "averaged over the pixel's samples",
         "mix the surfaces", "world background do not count", "anti-aliased with pixel_filter")  # fmt: skip
    assert r.meta["pixel_filter"] == {
        "type": r.scene_info["pixel_filter"][0],
        "width": r.scene_info["pixel_filter"][1],
    }
    u, v = pixel_grid()
    n_back = np.array([0.0, 0.0, 1.0])
    n_mover = -Rotation.from_euler("x", TILT + math.pi).apply([0.0, 0.0, 1.0])  # its back face, flipped
    plane_normal = np.cross(n_back, n_mover) / np.linalg.norm(np.cross(n_back, n_mover))
    mixed_normals = mixed_flows = anti_aliased = 0
    for fr in r.frames:
        clean = footprint_uniform(fr.t)
        edge = ~clean & np.isfinite(fr.depth)
        # Centre samples: on silhouettes too, depth and ids are those of the centre ray (Blender's and
        # the closed form's), never something in between.
        assert (fr.ids == fr.oracle.ids).mean() > 0.999
        agree = edge & (truth_names(fr) == fr.names)
        assert agree.sum() > 100
        rel = np.abs(fr.depth[agree] - fr.truth_depth[agree]) / fr.truth_depth[agree]
        assert rel.max() < DEPTH_REL
        hit = agree & np.isfinite(fr.oracle.depth)
        assert (np.abs(fr.depth[hit] - fr.oracle.depth[hit] * MPU) / fr.depth[hit]).max() < DEPTH_REL
        # Averaged: between the mover and the back plane, normals and flows lie between the two surfaces'.
        near_mover = binary_dilation(fr.truth_which == 2, iterations=2)
        near_back = binary_dilation(fr.truth_which == 1, iterations=2)
        between = edge & near_mover & near_back & np.isin(fr.names, ("Back", "Mover"))
        n = fr.normal[between]
        off_both = (n @ n_back < math.cos(math.radians(3))) & (n @ n_mover < math.cos(math.radians(3)))
        assert (np.abs(n @ plane_normal) < 0.01).all()  # a mix of the two normals, nothing else
        mixed_normals += int(off_both.sum())
        fb = surface_flow(fr.t, fr.t + 1, 1, u, v)[between]
        fm = surface_flow(fr.t, fr.t + 1, 2, u, v)[between]
        got = fr.flow[..., :2][between]
        d = fm - fb
        alpha = np.einsum("nc,nc->n", got - fb, d) / np.einsum("nc,nc->n", d, d)
        residual = np.linalg.norm(got - (fb + alpha[:, None] * d), axis=-1)
        assert np.percentile(residual, 90) < FLOW_EPE_P99
        mixed_flows += int(((alpha > 0.1) & (alpha < 0.9) & (residual < FLOW_EPE_P99)).sum())
        # Background samples do not count: a surface pixel next to the sky keeps the surface's own normal
        # and flow (neither shortened toward 0 nor pulled toward the sky's flow).
        sky_near = binary_dilation(fr.truth_which == 0, iterations=2)
        for name, which, normal in (("Back", 1, n_back), ("Mover", 2, n_mover)):
            other_near = binary_dilation((fr.truth_which != which) & (fr.truth_which != 0), iterations=2)
            rim = sky_near & ~other_near & (fr.names == name) & ~clean
            assert rim.sum() > 5, name
            angle = np.degrees(np.arccos(np.clip(fr.normal[rim] @ normal, -1, 1)))
            assert angle.max() < NORMAL_DEG, (name, angle.max())
            epe = np.linalg.norm(
                fr.flow[..., :2][rim] - surface_flow(fr.t, fr.t + 1, which, u, v)[rim], axis=-1
            )
            assert epe.max() < FLOW_EPE_P99, (name, epe.max())
        # Colours are filtered: the back plane's edge against the sky has in-between colours.
        sky_colour = np.median(fr.linear[(fr.truth_which == 0) & clean], axis=0)
        back_colour = np.median(fr.linear[(fr.truth_which == 1) & clean], axis=0)
        lo, hi = np.minimum(sky_colour, back_colour), np.maximum(sky_colour, back_colour)
        span = hi - lo
        inner = ((fr.linear > lo + 0.1 * span) & (fr.linear < hi - 0.1 * span)).all(-1)
        anti_aliased += int((inner & ~clean & sky_near & near_back).sum())
    assert mixed_normals >= 5 and mixed_flows >= 5 and anti_aliased >= 10, (
        mixed_normals,
        mixed_flows,
        anti_aliased,
    )


def check_scene_flow(r: Rendered) -> None:
    says("scene_flow", "metres", "this frame's camera axes", "float32",
         "forward.X, forward.Y, forward.Z = the motion of the surface point seen at the pixel centre from this "
         "frame to the next", "backward.X, backward.Y, backward.Z = from this frame to the previous",
         "X + forward is that point at the next frame", "projected with its intrinsics",
         "pixel plus the forward optical flow", "M(next) M(this)^-1", "pixel-centre sample hit no surface",
         "rigid: false", "warnings name", "first and last frame")  # fmt: skip
    from camsim.sceneflow import CHANNELS, flow_from_scene_flow

    assert CHANNELS[:3] == ("forward.X", "forward.Y", "forward.Z")
    post = int({v: k for k, v in r.meta["segmentation_ids"].items()}["Post"])
    assert any(w.startswith("scene flow") and f"{post} 'Post'" in w for w in r.meta["warnings"])
    u, v = pixel_grid()
    for i, fr in enumerate(r.frames):
        path = r.file(fr.entry["scene_flow_file_path"])
        assert channels(path) == {c: np.dtype(np.float32) for c in CHANNELS}
        sf = read_exr(path, CHANNELS).astype(np.float64)
        # Closed form: the rig (the camera's parent, and the planes') turns and moves; the mover slides in it.
        # A point P (rig frame, Blender units) at t is at MPU (R(t2) P2 - R(t) P) + ... : in the camera axes at t
        # (the rig's, the camera has no rotation of its own) its displacement is MPU (R(t)^T R(t2) P2 - P).
        ray = rays(u, v, intrinsics_at(fr.t))
        for name, which in (("Back", 1), ("Mover", 2)):
            pixels = (fr.names == name) & (truth_names(fr) == name)
            assert pixels.sum() > 50, name
            p = plane_depth(fr.t, which, ray, bounded=False)[..., None] * ray + camera_in_rig(fr.t)
            for channel, t2 in ((slice(0, 3), fr.t + 1), (slice(3, 6), fr.t - 1)):
                p2 = p + (np.multiply(OBJ_V, t2 - fr.t) if which == 2 else 0.0)
                truth = MPU * (p2 @ (rig_rotation(fr.t).T @ rig_rotation(t2)).T - p)
                assert np.abs(sf[..., channel][pixels] - truth[pixels]).max() < 1e-4, (fr.number, name)
        # NaN: the world background (no surface at the pixel centre) and Post, drawn twice by instances.
        covered = np.isin(fr.names, ("Back", "Mover"))
        assert np.array_equal(np.isnan(sf).any(-1), ~covered) and np.isnan(sf[~covered]).all()
        assert (fr.names == "Post").sum() > 10 and (~np.isfinite(fr.depth)).sum() > 100
        # Depth + scene flow + the neighbour's pose and intrinsics give the rendered optical flow.
        clean = footprint_uniform(fr.t) & covered
        for j, channel, flow in ((i + 1, slice(0, 3), slice(0, 2)), (i - 1, slice(3, 6), slice(2, 4))):
            if not 0 <= j < len(r.frames):
                continue  # the edge frames' neighbours lie outside the sequence: checked in closed form above
            other = r.frames[j].entry
            pred = flow_from_scene_flow(fr.depth, sf[..., channel], np.asarray(fr.entry["transform_matrix"]),
                                        transforms.intrinsics(r.meta, i), np.asarray(other["transform_matrix"]),
                                        transforms.intrinsics(r.meta, j))  # fmt: skip
            epe = np.linalg.norm(pred[clean] - fr.flow[..., flow][clean], axis=-1)
            assert epe.mean() < FLOW_EPE_MEAN and np.percentile(epe, 99) < FLOW_EPE_P99, (fr.number, j)
    # The edge neighbours checked in closed form: frame 0 lies before the scene's range, frame 4 after the cut.
    assert r.frames[0].number - 1 < r.meta["scene_frame_range"][0] and r.frames[-1].number + 1 == CUT


CHECKS: dict[str, Callable[[Rendered], None]] = {
    "camera_axes": check_camera_axes,
    "transform_matrix": check_transform_matrix,
    "world_axes": check_world_axes,
    "pixel_origin": check_pixel_origin,
    "intrinsics": check_intrinsics,
    "depth": check_depth,
    "normal": check_normal,
    "flow": check_flow,
    "segmentation": check_segmentation,
    "time": check_time,
    "frame_number": check_frame_number,
    "camera": check_camera,
    "rgb": check_rgb,
    "sampling": check_sampling,
    "scene_flow": check_scene_flow,
}


def test_every_convention_has_a_check():
    assert set(CHECKS) == set(transforms.CONVENTIONS)


def test_render_writes_the_conventions(rendered):
    assert rendered.meta["conventions"] == transforms.CONVENTIONS
    assert rendered.scaled_meta["conventions"] == transforms.CONVENTIONS


@pytest.mark.parametrize("key", list(transforms.CONVENTIONS))
def test_convention_holds_on_a_render(rendered, key):
    CHECKS[key](rendered)


# ------------------------------------------------------------------------------------------------ lenses
# The sentences a lens other than the pinhole replaces (transforms.LENS_CONVENTIONS), each checked on a render of
# the same scene through that lens (frames 1..3: the camera's zoom, shift and object scale, the spinning rig).

LENS_DISTORTION = (-0.15, 0.02, 0.001, 0.004, -0.003)  # barrel with tangential terms
LENS_FOV = 100.0  # degrees: an equidistant fisheye whose image circle spans the 64x48 frame
FISHEYE_DEPTH_REL = 3e-4  # Cycles turns fisheye pixels into directions in float32 (measured: up to 1.1e-4)


@dataclass
class LensFrame:
    t: float
    entry: dict[str, Any]
    camera: transforms.Camera
    sample: np.ndarray
    """Rays of the one sample each pixel's depth and id come from (the nearest pinhole pixel's for a distortion)."""
    own: np.ndarray
    """Each pixel centre's own ray through the lens (NaN: none, outside a fisheye's image circle)."""
    depth: np.ndarray
    names: np.ndarray
    flow: np.ndarray
    linear: np.ndarray


@dataclass
class LensRendered:
    meta: dict[str, Any]
    frames: list[LensFrame]


LENS_CONFIGS = {
    "distortion": FAST.replace(linear=True, annotations=False, distortion=LENS_DISTORTION),
    "fisheye": FAST.replace(linear=True, annotations=False, lens="fisheye-equidistant", fisheye_fov=LENS_FOV),
}


@pytest.fixture(scope="module")
def lens_rendered(rendered, render) -> dict[str, LensRendered]:
    out = {}
    for family, cfg in LENS_CONFIGS.items():
        path = render(rendered.blend, f"conventions-{family}", config=cfg, frame_start=FRAMES[0],
                      frame_end=FRAMES[1])  # fmt: skip
        meta = transforms.read(path)
        name_of = {0: "", **{int(i): name for i, name in meta["segmentation_ids"].items()}}
        frames = []
        for i, fr in enumerate(meta["frames"]):
            cam = transforms.camera_of(meta, i)
            own, ok = lenses.pixel_rays(cam)
            ids = read_exr(transforms.resolve_path(path, fr["segmentation_file_path"]))
            frames.append(LensFrame(
                t=scene_time(fr["frame_number"]), entry=fr, camera=cam, sample=sample_rays(meta, cam),
                own=np.where(ok[..., None], own, np.nan),
                depth=read_exr(transforms.resolve_path(path, fr["depth_file_path"]), ("Y",)),
                names=np.vectorize(name_of.get, otypes=[str])(ids.astype(np.int64), "?"),
                flow=read_exr(transforms.resolve_path(path, fr["flow_file_path"]), ("R", "G", "B", "A")),
                linear=read_exr(transforms.resolve_path(path, fr["linear_file_path"]), ("R", "G", "B")),
            ))  # fmt: skip
        out[family] = LensRendered(meta, frames)
    return out


def lens_says(family: str, key: str, *phrases: str) -> None:
    text = transforms.LENS_CONVENTIONS[family][key]
    missing = [p for p in phrases if p not in text]
    assert not missing, f"LENS_CONVENTIONS[{family!r}][{key!r}] no longer says {missing}: update its check"


def cast_rays(t: float, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into NAMES, s along the rays in Blender units) of the nearest surface along camera-frame rays r
    (NaN rays hit nothing): planar depth for rays with z = -1, the distance along unit rays."""
    r = np.nan_to_num(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        boxes = np.minimum.reduce([box_depth(t, c, r) for c in POSTS])
        stack = np.stack([plane_depth(t, 1, r), plane_depth(t, 2, r), boxes])
    stack[~np.isfinite(stack) | (stack <= 0)] = np.inf
    hit = np.isfinite(stack).any(0)
    return np.where(hit, np.argmin(stack, 0) + 1, 0), stack.min(0)


def fisheye_intrinsics() -> tuple[float, float, float, float]:
    """The equidistant fisheye's (fx, fy, cx, cy): the image circle spans the frame (pixels per radian = size /
    fov), and a panoramic camera's shift moves the image by shift_x x width, shift_y x height."""
    fov = math.radians(LENS_FOV)
    return W / fov, H / fov, W / 2 - SHIFT[0] * W, H / 2 + SHIFT[1] * H


def lens_camera(family: str, t: float) -> transforms.Camera:
    """The closed-form camera at time t: the pinhole's intrinsics with the distortion, or the fisheye's."""
    if family == "distortion":
        return transforms.Camera(*intrinsics_at(t), W, H, transforms.Lens("OPENCV", LENS_DISTORTION))
    lens = transforms.Lens("OPENCV_FISHEYE", (0.0, 0.0, 0.0, 0.0), math.radians(LENS_FOV))
    return transforms.Camera(*fisheye_intrinsics(), W, H, lens)


def lens_flow(fr: LensFrame, t2: float, which: int, cam2: transforms.Camera) -> tuple[np.ndarray, np.ndarray]:
    """Flow of the point of surface `which` (extended) on each pixel's own ray to the camera at t2, and whether
    it has an image there."""
    with np.errstate(divide="ignore", invalid="ignore"):  # pixels without a ray (NaN) have no flow to check
        s = plane_depth(fr.t, which, np.nan_to_num(fr.own), bounded=False)
    p = s[..., None] * fr.own + camera_in_rig(fr.t)
    if which == 2:
        p = p + np.multiply(OBJ_V, t2 - fr.t)
    uv, ok = lenses.project(p - camera_in_rig(t2), cam2)
    return uv - fr.camera.pixel_centres(), ok


def lens_sky_flow(fr: LensFrame, t2: float, cam2: transforms.Camera) -> np.ndarray:
    """Flow of points at infinity along each pixel's own ray (the rig's rotation) through the lens; 0 where the
    direction has no image at t2."""
    turned = np.nan_to_num(fr.own) @ (rig_rotation(t2).T @ rig_rotation(fr.t)).T
    uv, ok = lenses.project(turned, cam2)
    return np.where(ok[..., None], uv - fr.camera.pixel_centres(), 0.0)


def lens_clean(fr: LensFrame) -> np.ndarray:
    """Pixels whose rays within +-1 px all meet the surface of the pixel's own ray."""
    first = cast_rays(fr.t, fr.own)[0]
    same = np.isfinite(fr.own).all(-1)
    for dy in (-1.0, 0.0, 1.0):
        for dx in (-1.0, 0.0, 1.0):
            shifted, ok = lenses.unproject(fr.camera.pixel_centres() + np.array([dx, dy]), fr.camera)
            same &= ok & (cast_rays(fr.t, np.where(ok[..., None], shifted, np.nan))[0] == first)
    return same


def check_lens_flows(lr: LensRendered, family: str) -> float:
    """Surface flows (back plane, mover) and the world background's against the closed form through the lens;
    returns the largest median background motion seen (the check is not about a still background)."""
    moving_bg = 0.0
    for fr in lr.frames:
        fwd, bwd = fr.flow[..., :2], fr.flow[..., 2:]
        clean = lens_clean(fr)
        for name, which in (("Back", 1), ("Mover", 2)):
            mask = clean & (fr.names == name)
            assert mask.sum() > 30, (family, name)
            for got, t2 in ((fwd, fr.t + 1), (bwd, fr.t - 1)):
                truth, seen = lens_flow(fr, t2, which, lens_camera(family, t2))
                epe = np.linalg.norm(got[mask & seen] - truth[mask & seen], axis=-1)
                where = (family, fr.t, name, "forward" if t2 > fr.t else "backward")
                assert epe.mean() < FLOW_EPE_MEAN and np.percentile(epe, 99) < FLOW_EPE_P99, where
        sky = ~np.isfinite(fr.depth) & np.isfinite(fr.own).all(-1)
        assert sky.sum() > 50
        for got, t2 in ((fwd, fr.t + 1), (bwd, fr.t - 1)):
            truth = lens_sky_flow(fr, t2, lens_camera(family, t2))
            assert np.abs(got[sky] - truth[sky]).max() < 1e-3, family
            moving_bg = max(moving_bg, float(np.median(np.linalg.norm(truth[sky], axis=-1))))
    return moving_bg


def check_distortion_intrinsics(lr: LensRendered) -> None:
    lens_says("distortion", "intrinsics", "camera_model OPENCV with k1, k2, k3, p1, p2 as written",
              "a = X/(-Z), b = -Y/(-Z), s = a^2 + b^2, g = 1 + k1 s + k2 s^2 + k3 s^3",
              "u = fl_x * (a g + 2 p1 a b + p2 (s + 2 a^2)) + cx", "v = fl_y * (b g + p1 (s + 2 b^2) + 2 p2 a b) + cy",
              "inverts it to 1e-9 px", "first frame's", "every frame carries its own")  # fmt: skip
    meta = lr.meta
    assert meta["camera_model"] == "OPENCV"
    assert [meta[k] for k in ("k1", "k2", "k3", "p1", "p2")] == list(LENS_DISTORTION)
    for key in ("fl_x", "fl_y", "cx", "cy"):
        assert meta[key] == lr.frames[0].entry[key]
    k1, k2, k3, p1, p2 = LENS_DISTORTION
    u, v = pixel_grid()
    fls = []
    for fr in lr.frames:
        # The pinhole's intrinsics, frame by frame (the zoom), with the distortion on top.
        k = tuple(fr.entry[key] for key in ("fl_x", "fl_y", "cx", "cy"))
        np.testing.assert_allclose(k, intrinsics_at(fr.t), rtol=1e-7)
        fls.append(k[0])
        # The sentence, written out, is camsim.lenses.project: points across the frame and beyond.
        pts = np.stack([np.random.default_rng(7).uniform(-0.8, 0.8, (200, 2)).T[0],
                        np.random.default_rng(8).uniform(-0.6, 0.6, 200), -np.ones(200)], -1) * 3.0  # fmt: skip
        a, b = pts[:, 0] / -pts[:, 2], -pts[:, 1] / -pts[:, 2]
        s = a * a + b * b
        g = 1 + k1 * s + k2 * s**2 + k3 * s**3
        sentence = np.stack([k[0] * (a * g + 2 * p1 * a * b + p2 * (s + 2 * a * a)) + k[2],
                             k[1] * (b * g + p1 * (s + 2 * b * b) + 2 * p2 * a * b) + k[3]], -1)  # fmt: skip
        np.testing.assert_allclose(lenses.project(pts, fr.camera)[0], sentence, atol=1e-9)
        # unproject inverts it to 1e-9 px at every pixel centre
        rays, ok = lenses.pixel_rays(fr.camera)
        back = lenses.project(rays, fr.camera)[0]
        assert ok.all() and np.abs(back - fr.camera.pixel_centres()).max() < 1e-9
        # With the recorded numbers the distorted rays explain every id but silhouettes; the pinhole's do not.
        assert (np.array(NAMES)[cast_rays(fr.t, fr.sample)[0]] == fr.names).mean() > 0.995
        assert (np.array(NAMES)[cast(fr.t, u, v, k)[0]] != fr.names).sum() > 20
        # A known point: the mover's centre projects through the lens onto the mover.
        uv, seen = lenses.project(_planes(fr.t)[1][1] - camera_in_rig(fr.t), fr.camera)
        assert seen and fr.names[int(uv[1]), int(uv[0])] == "Mover"
    assert fls[0] < fls[1] < fls[2]


def check_distortion_sampling(lr: LensRendered) -> None:
    lens_says("distortion", "sampling", "larger pinhole image render_window", "frame's own fl_x, fl_y, cx, cy",
              "one camera sample at each pixel centre", "normals and flow averaged", "anti-aliased with pixel_filter",
              "bilinearly", "from the one pinhole pixel nearest to that position, never a blend")  # fmt: skip
    win = lr.meta["render_window"]
    assert win["width"] * win["height"] > W * H  # barrel: more pinhole pixels than the frame has
    anti_aliased = 0
    for fr in lr.frames:
        # The window holds every pixel's sample ...
        cam = fr.camera
        col = cam.fl_x * fr.sample[..., 0] + cam.cx - win["left"] - 0.5
        row = -cam.fl_y * fr.sample[..., 1] + cam.cy - win["top"] - 0.5
        assert col.min() >= 0 and row.min() >= 0
        assert col.max() <= win["width"] - 1 and row.max() <= win["height"] - 1
        np.testing.assert_allclose([col, row], np.rint([col, row]), atol=1e-6)  # ... at a pinhole centre
        # Depth and ids are that sample's, on silhouettes too: never a blend.
        which, s = cast_rays(fr.t, fr.sample)
        agree = np.array(NAMES)[which] == fr.names
        assert agree.mean() > 0.999
        hit = agree & np.isfinite(s)
        np.testing.assert_allclose(fr.depth[hit], s[hit] * MPU, rtol=DEPTH_REL)
        assert np.array_equal(np.isposinf(fr.depth), fr.names == "")
        # Colours are bilinear samples of the anti-aliased pinhole image: in-between colours at the back plane's
        # edge against the sky.
        clean = lens_clean(fr)
        sky_colour = np.median(fr.linear[(fr.names == "") & clean], axis=0)
        back_colour = np.median(fr.linear[(fr.names == "Back") & clean], axis=0)
        lo, hi = np.minimum(sky_colour, back_colour), np.maximum(sky_colour, back_colour)
        inner = ((fr.linear > lo + 0.1 * (hi - lo)) & (fr.linear < hi - 0.1 * (hi - lo))).all(-1)
        anti_aliased += int((inner & ~clean).sum())
    assert anti_aliased >= 10


def check_distortion_flow(lr: LensRendered) -> None:
    lens_says("distortion", "flow", "pixels, x right, y down", "R, G = forward flow", "B, A = backward flow",
              "distort(p + f) - its centre", "nearest pinhole pixel", "other frame's lens",
              "exact flow of points at infinity", "at the pixel centre", "behind the other camera",
              "beyond the lens's valid radius",
              "first and last frame's flow uses the same camera one frame outside the sequence")  # fmt: skip
    assert check_lens_flows(lr, "distortion") > 0.3  # the background does move


def check_fisheye_intrinsics(lr: LensRendered) -> None:
    lens_says("fisheye", "intrinsics", "OPENCV_FISHEYE with k1 = k2 = k3 = k4 = 0: equidistant, r = theta",
              "FISHEYE_EQUISOLID: r = 2 sin(theta/2)", "theta = atan2(sqrt(X^2 + Y^2), -Z)",
              "u = fl_x * r * X/sqrt(X^2 + Y^2) + cx", "v = -fl_y * r * Y/sqrt(X^2 + Y^2) + cy",
              "farther than fisheye_fov / 2", "no ray", "first frame's",
              "FISHEYE_POLYNOMIAL: theta = -(k0 + k1 r + k2 r^2 + k3 r^3 + k4 r^4)", "r in millimetres on the sensor",
              "fl_x = fl_y pixels per millimetre")  # fmt: skip
    check_polynomial_sentence()  # rendered and checked against Cycles in tests/test_render_lenses.py
    meta = lr.meta
    assert meta["camera_model"] == "OPENCV_FISHEYE"
    assert [meta[k] for k in ("k1", "k2", "k3", "k4")] == [0.0] * 4
    assert meta["fisheye_fov"] == pytest.approx(math.radians(LENS_FOV))
    recorded = [meta[k] for k in ("fl_x", "fl_y", "cx", "cy")]
    np.testing.assert_allclose(recorded, fisheye_intrinsics(), rtol=1e-6)
    assert not any("fl_x" in fr.entry for fr in lr.frames)  # the zoom does not change an equidistant fisheye
    # The sentence, written out, is camsim.lenses.project (beyond 90 degrees too).
    rng = np.random.default_rng(9)
    theta, phi = rng.uniform(0, math.radians(LENS_FOV) / 2, 300), rng.uniform(-math.pi, math.pi, 300)
    pts = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), -np.cos(theta)], -1) * 2.0
    fx, fy, cx, cy = recorded  # (fl_x from Blender's float32 field of view: 1e-7 off the closed form)
    rho = np.hypot(pts[:, 0], pts[:, 1])
    angle = np.arctan2(rho, -pts[:, 2])
    sentence = np.stack([fx * angle * pts[:, 0] / rho + cx, -fy * angle * pts[:, 1] / rho + cy], -1)
    np.testing.assert_allclose(lenses.project(pts, lr.frames[0].camera)[0], sentence, atol=1e-9)
    for fr in lr.frames:
        outside = ~np.isfinite(fr.own).all(-1)
        assert outside.sum() > 20 and (fr.names[outside] == "").all()  # the frame's corners: no ray
        assert (np.array(NAMES)[cast_rays(fr.t, fr.own)[0]] == fr.names).mean() > 0.995
        uv, seen = lenses.project(_planes(fr.t)[1][1] - camera_in_rig(fr.t), fr.camera)
        assert seen and fr.names[int(uv[1]), int(uv[0])] == "Mover"


def check_polynomial_sentence() -> None:
    """FISHEYE_POLYNOMIAL's sentence, written out (theta(r) inverted by bisection), is camsim.lenses.project."""
    ks, fov, fl, cx, cy = (0.0, -0.07, -0.004, 2.5e-4, -5e-6), math.radians(200), 192 / 36.0, 92.16, 97.92
    cam = transforms.Camera(fl, fl, cx, cy, 192, 192, transforms.Lens("FISHEYE_POLYNOMIAL", ks, fov))
    rng = np.random.default_rng(10)
    theta, phi = rng.uniform(0, fov / 2, 300), rng.uniform(-math.pi, math.pi, 300)
    pts = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), -np.cos(theta)], -1) * 3.0
    lo, hi = np.zeros(300), np.full(300, 40.0)  # theta(r) grows on [0, 40] mm and passes 100 degrees there
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        grows = -(ks[0] + ks[1] * mid + ks[2] * mid**2 + ks[3] * mid**3 + ks[4] * mid**4) < theta
        lo, hi = np.where(grows, mid, lo), np.where(grows, hi, mid)
    r = 0.5 * (lo + hi)
    rho = np.hypot(pts[:, 0], pts[:, 1])
    sentence = np.stack([fl * r * pts[:, 0] / rho + cx, -fl * r * pts[:, 1] / rho + cy], -1)
    uv, ok = lenses.project(pts, cam)
    assert ok.all()
    np.testing.assert_allclose(uv, sentence, atol=1e-9)


def check_fisheye_depth(lr: LensRendered) -> None:
    lens_says("fisheye", "depth", "distance along the ray", "not planar z", "beyond 90 degrees", "metres", "float32",
              "EXR channel Y", "outside the image circle", "+inf")  # fmt: skip
    for fr in lr.frames:
        which, s = cast_rays(fr.t, fr.own)
        agree = (np.array(NAMES)[which] == fr.names) & np.isfinite(s)
        assert agree.mean() > 0.2
        np.testing.assert_allclose(fr.depth[agree], s[agree] * MPU, rtol=FISHEYE_DEPTH_REL)
        # radial, not planar: the fronto-parallel back plane's depth varies by over 3 % across it
        back = agree & (fr.names == "Back")
        assert fr.depth[back].max() / fr.depth[back].min() > 1.03
        planar = -fr.own[back][:, 2] * fr.depth[back]  # the ray's z component times its length
        np.testing.assert_allclose(planar, DEPTH * MPU, rtol=FISHEYE_DEPTH_REL)
        assert np.array_equal(np.isposinf(fr.depth), fr.names == "") and not np.isnan(fr.depth).any()


def check_fisheye_flow(lr: LensRendered) -> None:
    lens_says("fisheye", "flow", "pixels, x right, y down", "R, G = forward flow", "B, A = backward flow",
              "points at infinity (camera rotation only) through the fisheye", "0 outside the image circle",
              "first and last frame's flow uses the same camera one frame outside the sequence")  # fmt: skip
    assert check_lens_flows(lr, "fisheye") > 0.2
    for fr in lr.frames:
        outside = ~np.isfinite(fr.own).all(-1)
        assert (fr.flow[outside] == 0).all()


LENS_CHECKS: dict[tuple[str, str], Callable[[LensRendered], None]] = {
    ("distortion", "intrinsics"): check_distortion_intrinsics,
    ("distortion", "sampling"): check_distortion_sampling,
    ("distortion", "flow"): check_distortion_flow,
    ("fisheye", "intrinsics"): check_fisheye_intrinsics,
    ("fisheye", "depth"): check_fisheye_depth,
    ("fisheye", "flow"): check_fisheye_flow,
}
LENS_KEYS = [(family, key) for family, sentences in transforms.LENS_CONVENTIONS.items() for key in sentences]


def test_every_lens_convention_has_a_check():
    assert set(LENS_CHECKS) == set(LENS_KEYS)
    assert all(key in transforms.CONVENTIONS for _, key in LENS_KEYS)  # a lens replaces sentences, adds none


def test_lens_render_writes_its_conventions(lens_rendered):
    for family, lr in lens_rendered.items():
        assert lr.meta["conventions"] == transforms.conventions_for(transforms.lens_of(lr.meta))
        assert {k: lr.meta["conventions"][k] for k in transforms.LENS_CONVENTIONS[family]} == (
            transforms.LENS_CONVENTIONS[family]
        )


@pytest.mark.parametrize(("family", "key"), LENS_KEYS, ids=[f"{f}-{k}" for f, k in LENS_KEYS])
def test_lens_convention_holds_on_a_render(lens_rendered, family, key):
    LENS_CHECKS[family, key](lens_rendered[family])
