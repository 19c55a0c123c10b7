"""Real lenses rendered by Blender (issue 16, item 5): OpenCV distortion (barrel, pincushion, with tangential
terms) by resampling a larger pinhole render, and Cycles' equidistant, equisolid and polynomial fisheyes (one
polynomial that is the equidistant fisheye, one with every coefficient in play).

One analytic scene per lens family (tests/scenes/lenses.py): glowing marker spheres at known positions in
front of a black back plane, the camera translating inside a turning rig. Everything is predicted in closed
form through camsim.lenses with the intrinsics transforms.json records: each marker's image centre (the
projection of its centre; the rendered centroid of its glow lies within 0.3 px), the depth at the marker
centres (ray-sphere intersections), the id of every pixel (the nearest pinhole sample's ray for a
distortion, the pixel's own ray for a fisheye: never a blend) and the optical flow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FAST, TESTS
from lens_truth import sample_rays
from scipy.ndimage import binary_erosion
from scipy.spatial.transform import Rotation

from camsim import lenses, transforms
from camsim.consistency import check_consistency, parse_objects, reprojection_flow
from camsim.fileio import read_exr, read_image
from camsim.lenses import Camera
from camsim.loader import SequenceDataset

pytestmark = pytest.mark.blender

SCRIPT = TESTS / "scenes" / "lenses.py"
RIG_ROT, RIG_LOC = (0.3, -0.2, 0.5), (1.0, 2.0, 3.0)
SPIN, CAM_V = (0.0, 0.004, 0.01), (0.1, -0.06, 0.08)  # per frame: flows of 1-3 px
BACK_SIZE, BACK_DEPTH, BACK_OFFSET = (14.0, 10.0), 9.0, (3.5, 2.0)  # the sky shows at the frame's lower left
FRAMES = (2, 3)

# Pinhole scene: 120x90, 30 mm on a 36 mm sensor (fl = 100 px), principal point shifted.
PINHOLE_SCENE = {"width": 120, "height": 90, "lens": 30.0, "shift": (0.03, -0.02)}
PINHOLE_MARKERS = [((a * d, -b * d, -d), 0.035 * d)
                   for a, d in ((-0.45, 4.5), (-0.15, 5.0), (0.15, 5.5), (0.45, 6.0)) for b in (-0.32, 0.0, 0.32)]  # fmt: skip
DISTORTIONS = {
    "barrel": (-0.25, 0.06, -0.005, 0.0, 0.0),
    "pincushion": (0.2, 0.04, 0.0, 0.0, 0.0),
    "tangential": (-0.1, 0.01, 0.0, 0.01, -0.008),
}
# Fisheye scene: 192x192, 10 mm (the equisolid's focal length), 200 degrees: markers up to 95 degrees off axis.
FISHEYE_SCENE = {"width": 192, "height": 192, "lens": 10.0, "shift": (0.02, 0.01)}
FISHEYE_FOV = 200.0
FISHEYE_MARKERS = [(tuple(5.0 * np.array([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), -math.cos(t)])), 0.4)
                   for t, p in ((0.0, 0.0), (0.6, 0.3), (0.6, 2.5), (1.2, -0.8), (1.2, 1.9), (1.66, 0.9),
                                (1.66, -2.4))]  # fmt: skip
# Polynomial fisheyes (Cycles' FISHEYE_LENS_POLYNOMIAL: theta = -(k0 + k1 r + ... + k4 r^4), r in mm on the 36 mm
# sensor): the equidistant fisheye above written as a polynomial, and one whose every term bends the image.
POLYNOMIALS = {
    "fisheye-polynomial-equidistant": (0.0, -math.radians(FISHEYE_FOV) / 36.0, 0.0, 0.0, 0.0),
    "fisheye-polynomial": (0.0, -0.07, -0.004, 2.5e-4, -5e-6),
}
FISHEYES = ("fisheye-equidistant", "fisheye-equisolid", *POLYNOMIALS)
MODEL = {"fisheye-equidistant": "OPENCV_FISHEYE", "fisheye-equisolid": "FISHEYE_EQUISOLID",
         **dict.fromkeys(POLYNOMIALS, "FISHEYE_POLYNOMIAL")}  # fmt: skip

CENTROID_PX = 0.3
IMAGE_CENTROID_PX = 0.1
DEPTH_REL = (
    4e-4  # a UV sphere of 64 x 32 faces lies within 0.25 % of its radius (radius/distance = 0.05-0.08)
)
FLOW_EPE_MEAN, FLOW_EPE_P99 = 0.02, 0.05  # ignoring the distortion in the flow would be 0.1-0.3 px off


def config(name: str) -> Any:
    base = FAST.replace(max_samples=64, linear=True, annotations=False, debug=False)
    if name in DISTORTIONS:
        return base.replace(width=120, height=90, distortion=DISTORTIONS[name])
    if name == "pinhole":
        return base.replace(width=120, height=90)
    if name in POLYNOMIALS:
        return base.replace(width=192, height=192, lens="fisheye-polynomial", fisheye_fov=FISHEYE_FOV,
                            fisheye_polynomial=POLYNOMIALS[name])  # fmt: skip
    return base.replace(width=192, height=192, lens=name, fisheye_fov=FISHEYE_FOV)


# ------------------------------------------------------------------------------ closed-form truth


def rig_rotation(t: float) -> np.ndarray:
    return Rotation.from_euler("xyz", np.add(RIG_ROT, np.multiply(SPIN, t))).as_matrix()


def camera_in_rig(t: float) -> np.ndarray:
    return np.multiply(CAM_V, t)


def scene_time(frame: int) -> float:
    return frame - 1.0


def ray_sphere(rays: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Smallest positive s with |s r - c| = radius (rays from the origin), inf where the ray misses."""
    b = rays @ centre
    a = np.einsum("...c,...c->...", rays, rays)
    disc = b * b - a * (centre @ centre - radius * radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b - np.sqrt(disc)) / a
    return np.where((disc >= 0) & (s > 0), s, np.inf)


def cast(rays: np.ndarray, t: float, markers: list) -> tuple[np.ndarray, np.ndarray]:
    """(index: 0 nothing, 1 back plane, 2 + i marker i; s along the rays) of the nearest surface. Rays in the
    camera frame at time t (the camera frame is the rig's, moved by camera_in_rig(t))."""
    offset = camera_in_rig(t)
    hits = [ray_back_from(rays, offset)] + [ray_sphere(rays, np.asarray(c) - offset, r) for c, r in markers]
    stack = np.stack(hits)
    hit = np.isfinite(stack).any(0)
    return np.where(hit, np.argmin(stack, 0) + 1, 0), stack.min(0)


def ray_back_from(rays: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """s where rays from `offset` (rig frame) meet the back plane, inf outside it."""
    with np.errstate(divide="ignore", invalid="ignore"):  # zero rays (pixels without one) hit nothing
        s = (-BACK_DEPTH - offset[2]) / rays[..., 2]
        x, y = offset[0] + s * rays[..., 0] - BACK_OFFSET[0], offset[1] + s * rays[..., 1] - BACK_OFFSET[1]
        inside = (np.abs(x) <= BACK_SIZE[0] / 2) & (np.abs(y) <= BACK_SIZE[1] / 2) & (s > 0)
    return np.where(inside, s, np.inf)


# ------------------------------------------------------------------------------------------ renders


@dataclass
class Frame:
    number: int
    t: float
    camera: Camera
    entry: dict[str, Any]
    linear: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    flow: np.ndarray
    sample_rays: np.ndarray
    """The ray each pixel's depth and id come from: the nearest pinhole pixel's (distortion) or its own."""


@dataclass
class Render:
    name: str
    out: Path
    meta: dict[str, Any]
    frames: list[Frame]
    markers: list
    names: dict[str, int]
    blend: Path


@pytest.fixture(scope="module")
def renders(worker, render, tmp_path_factory) -> dict[str, Render]:
    folder = tmp_path_factory.mktemp("lens-scenes")
    pinhole_blend, fisheye_blend = folder / "pinhole.blend", folder / "fisheye.blend"
    back = {"back_size": BACK_SIZE, "back_depth": BACK_DEPTH, "back_offset": BACK_OFFSET, "spin": SPIN,
            "camera_velocity": CAM_V, "rig_rotation": RIG_ROT, "rig_location": RIG_LOC}  # fmt: skip
    worker.build_scene(SCRIPT, pinhole_blend, markers=PINHOLE_MARKERS, **PINHOLE_SCENE, **back)
    worker.build_scene(SCRIPT, fisheye_blend, markers=FISHEYE_MARKERS, **FISHEYE_SCENE, **back)
    out = {}
    for name in ("pinhole", *DISTORTIONS, *FISHEYES):
        fisheye = name in FISHEYES
        path = render(fisheye_blend if fisheye else pinhole_blend, f"lens-{name}", config=config(name),
                      frame_start=FRAMES[0], frame_end=FRAMES[1])  # fmt: skip
        meta = transforms.read(path)
        frames = []
        for i, fr in enumerate(meta["frames"]):
            cam = transforms.camera_of(meta, i)
            frames.append(Frame(
                number=fr["frame_number"], t=scene_time(fr["frame_number"]), camera=cam, entry=fr,
                linear=read_exr(path / fr["linear_file_path"], ("R", "G", "B")).astype(np.float64).mean(-1),
                depth=read_exr(path / fr["depth_file_path"]), ids=read_exr(path / fr["segmentation_file_path"]),
                flow=read_exr(path / fr["flow_file_path"], ("R", "G", "B", "A")), sample_rays=sample_rays(meta, cam),
            ))  # fmt: skip
        names = {v: int(k) for k, v in meta["segmentation_ids"].items()}
        markers = FISHEYE_MARKERS if fisheye else PINHOLE_MARKERS
        out[name] = Render(
            name, path, meta, frames, markers, names, fisheye_blend if fisheye else pinhole_blend
        )
    return out


LENS_RENDERS = (*DISTORTIONS, *FISHEYES)


def id_of(r: Render, index: np.ndarray) -> np.ndarray:
    """Closed-form cast index -> segmentation id."""
    table = np.array([0, r.names["Back"], *(r.names[f"M{i:02d}"] for i in range(len(r.markers)))])
    return table[index]


# -------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", LENS_RENDERS)
def test_transforms_json_names_the_lens(renders, name):
    meta = renders[name].meta
    if name in DISTORTIONS:
        assert meta["camera_model"] == "OPENCV"
        assert [meta[k] for k in ("k1", "k2", "k3", "p1", "p2")] == list(DISTORTIONS[name])
        win = meta["render_window"]
        assert win["pixels_rendered_per_output_pixel"] == pytest.approx(
            win["width"] * win["height"] / (120 * 90)
        )
        assert meta["conventions"] == transforms.conventions_for(transforms.lens_of(meta))
        assert meta["conventions"]["sampling"] == transforms.LENS_CONVENTIONS["distortion"]["sampling"]
    else:
        assert meta["camera_model"] == MODEL[name]
        assert meta["fisheye_fov"] == pytest.approx(math.radians(FISHEYE_FOV))
        assert "render_window" not in meta
        assert meta["conventions"]["depth"] == transforms.LENS_CONVENTIONS["fisheye"]["depth"]
    if name == "fisheye-equidistant":
        assert [meta[k] for k in ("k1", "k2", "k3", "k4")] == [0.0] * 4
        # the image circle spans the frame: pixels per radian = size / fov
        assert meta["fl_x"] == pytest.approx(192 / math.radians(FISHEYE_FOV))
    if name in POLYNOMIALS:
        assert [meta[k] for k in ("k0", "k1", "k2", "k3", "k4")] == list(POLYNOMIALS[name])
        assert (
            meta["fl_x"] == meta["fl_y"] == pytest.approx(192 / 36.0)
        )  # pixels per millimetre of the sensor
    assert (meta["w"], meta["h"]) == ((192, 192) if name in FISHEYES else (120, 90))


def image_centroid(
    cam: Camera, centre: np.ndarray, radius: float, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Centroid (u, v) of a sphere's image through the lens: the pixel-box points (16 x 16 per pixel) whose
    ray meets it."""
    r0, r1, c0, c1 = box
    step = (np.arange(16) + 0.5) / 16
    u = (np.arange(c0, c1)[:, None] + step).ravel()
    v = (np.arange(r0, r1)[:, None] + step).ravel()
    uu, vv = np.meshgrid(u, v)
    rays, ok = lenses.unproject(np.stack([uu, vv], -1), cam)
    hit = ok & np.isfinite(ray_sphere(np.nan_to_num(rays), centre, radius))
    return np.array([uu[hit].mean(), vv[hit].mean()])


@pytest.mark.parametrize("name", ("pinhole", *LENS_RENDERS))
def test_markers_land_on_their_projections(renders, name):
    r = renders[name]
    worst = worst_image = 0.0
    for fr in r.frames:
        for i, (centre, radius) in enumerate(r.markers):
            p = np.asarray(centre) - camera_in_rig(fr.t)
            uv, ok = lenses.project(p, fr.camera)
            assert ok
            mask = fr.ids == r.names[f"M{i:02d}"]
            assert mask.sum() > 10, (name, i)
            rows, cols = np.nonzero(mask)
            box = (max(rows.min() - 3, 0), rows.max() + 4, max(cols.min() - 3, 0), cols.max() + 4)
            glow = fr.linear[box[0] : box[1], box[2] : box[3]]
            yy, xx = np.mgrid[box[0] : box[1], box[2] : box[3]]
            centroid = np.array([(glow * (xx + 0.5)).sum(), (glow * (yy + 0.5)).sum()]) / glow.sum()
            # the projection of the marker's centre: within 0.3 px of the rendered centroid of its glow ...
            err = float(np.linalg.norm(centroid - uv))
            assert err < CENTROID_PX, (name, fr.number, i, centroid, uv)
            # ... and the centroid of the sphere's whole image through the lens closer still (a sphere's image
            # centre is not its centre's projection: perspective and distortion stretch it outward)
            image_err = float(np.linalg.norm(centroid - image_centroid(fr.camera, p, radius, box)))
            assert image_err < IMAGE_CENTROID_PX, (name, fr.number, i)
            worst, worst_image = max(worst, err), max(worst_image, image_err)
    print(
        f"{name}: marker centroid vs projected centre {worst:.3f} px, vs the sphere's image {worst_image:.3f} px"
    )


@pytest.mark.parametrize("name", LENS_RENDERS)
def test_depth_at_marker_centres_is_the_closed_form(renders, name):
    r = renders[name]
    for fr in r.frames:
        for i, (centre, radius) in enumerate(r.markers):
            p = np.asarray(centre) - camera_in_rig(fr.t)
            uv, _ = lenses.project(p, fr.camera)
            col, row = int(uv[0]), int(uv[1])
            assert fr.ids[row, col] == r.names[f"M{i:02d}"]
            s = ray_sphere(fr.sample_rays[row, col], p, radius)
            # planar z for a distortion (rays with z = -1), the distance along the ray for a fisheye (unit rays)
            assert fr.depth[row, col] == pytest.approx(float(s), rel=DEPTH_REL), (name, i)
            if name in FISHEYES and i >= 5:  # beyond 90 degrees off axis: a planar z would be negative
                assert fr.sample_rays[row, col][2] > 0


@pytest.mark.parametrize("name", LENS_RENDERS)
def test_ids_are_never_blends(renders, name):
    r = renders[name]
    pinhole_ids = set()
    for fr in renders["pinhole" if name in DISTORTIONS else name].frames:
        pinhole_ids |= set(np.unique(fr.ids).tolist())
    for fr in r.frames:
        # every id of the distorted frame occurs in the undistorted render ...
        assert set(np.unique(fr.ids).tolist()) <= pinhole_ids | {0}
        # ... and each pixel's is the id of its one sample's ray (the nearest pinhole pixel's for a distortion):
        # never a mix; the rare misses sit exactly on a silhouette
        has_ray = np.isfinite(fr.sample_rays).all(-1)
        which, _ = cast(np.nan_to_num(fr.sample_rays), fr.t, r.markers)
        truth = np.where(has_ray, id_of(r, which), 0)
        assert (truth == fr.ids).mean() > 0.998, (name, (truth != fr.ids).sum())
        assert np.array_equal(fr.ids == 0, ~np.isfinite(fr.depth))  # one background for every pass


@pytest.mark.parametrize("name", LENS_RENDERS)
def test_flow_is_the_closed_form_motion(renders, name):
    r = renders[name]
    stats, sky_err = [], 0.0
    for fr in r.frames:
        cam, rays = fr.camera, fr.sample_rays
        has_ray = np.isfinite(rays).all(-1)
        which, _ = cast(np.nan_to_num(rays), fr.t, r.markers)
        # surfaces whose pixel footprint shows one surface (flow is averaged over the pixel's samples)
        own, ok = lenses.pixel_rays(cam)
        uniform = has_ray & ok & binary_erosion(which > 0, iterations=2)
        for dy in (-1.0, 0.0, 1.0):
            for dx in (-1.0, 0.0, 1.0):
                shifted, _ = lenses.unproject(np.add(cam.pixel_centres(), (dx, dy)), cam)
                uniform &= cast(np.nan_to_num(shifted), fr.t, r.markers)[0] == which
        _, s_own = cast(np.nan_to_num(own), fr.t, r.markers)
        for got, t2, other_index in ((fr.flow[..., :2], fr.t + 1, 1), (fr.flow[..., 2:], fr.t - 1, -1)):
            other = transforms.camera_of(r.meta, None)  # the lens is constant here
            # the surface point on the pixel's own ray (rig frame), seen from the camera at t2 through the lens:
            # the written flow is exact up to the nearest-sample offset (distortion)
            point = own * s_own[..., None] + camera_in_rig(fr.t)
            uv, vis = lenses.project(point - camera_in_rig(t2), other)
            truth = uv - cam.pixel_centres()
            mask = uniform & vis
            assert mask.sum() > 200
            epe = np.linalg.norm(got[mask] - truth[mask], axis=-1)
            assert epe.mean() < FLOW_EPE_MEAN and np.percentile(epe, 99) < FLOW_EPE_P99, (
                name,
                other_index,
                epe.max(),
            )
            stats.append((epe.mean(), np.percentile(epe, 99)))
            # the world background: points at infinity turned by the rig's rotation, through the lens
            sky = ~np.isfinite(fr.depth) & ok
            turn = rig_rotation(t2).T @ rig_rotation(fr.t)
            uv_sky, seen = lenses.project(own[sky] @ turn.T, other)
            truth_sky = np.where(seen[:, None], uv_sky - cam.pixel_centres()[sky], 0.0)
            assert sky.sum() > 100
            sky_err = max(sky_err, float(np.abs(got[sky] - truth_sky).max()))
            assert sky_err < 2e-3
        if name in FISHEYES:  # outside the image circle: nothing
            assert (fr.flow[~ok] == 0).all() and np.isposinf(fr.depth[~ok]).all() and (fr.ids[~ok] == 0).all()
    mean, p99 = np.max(stats, axis=0)
    print(f"{name}: surface flow EPE mean {mean:.4f} px, p99 {p99:.4f} px; sky flow error {sky_err:.2e} px")


@pytest.mark.parametrize("name", LENS_RENDERS)
def test_validate_consistency_reprojects_through_the_lens(renders, name):
    """`validate --consistency` unprojects depth and projects into the next frame through the recorded lens: the
    written flow agrees (a pinhole reprojection would not)."""
    seq = SequenceDataset(renders[name].out)
    data = json.loads((renders[name].out / "objects.json").read_text())  # the rig's objects turn in the world
    objects = parse_objects(data, [fr["frame_number"] for fr in seq.meta["frames"]])
    result = check_consistency(seq, objects)
    assert result.ok and result.checked > 1000, result.reason
    assert result.epe < 0.05, result.epe
    if name != "pincushion":  # the lens matters: the pinhole's reprojection disagrees with the flow
        meta, depth, ids, motions = (
            seq.meta,
            seq.read("depth", 0),
            seq.read("segmentation", 0),
            objects.motions(0, 1),
        )
        pinhole, _ = reprojection_flow(depth, transforms.pose(meta, 0), transforms.intrinsics(meta, 0),
                                       transforms.pose(meta, 1), transforms.intrinsics(meta, 1), ids, motions)  # fmt: skip
        lensed, _ = reprojection_flow(depth, transforms.pose(meta, 0), transforms.camera_of(meta, 0),
                                      transforms.pose(meta, 1), transforms.camera_of(meta, 1), ids, motions)  # fmt: skip
        surface = np.isfinite(depth)
        flow = seq.read("flow", 0)[..., :2]
        lensed_err = np.percentile(np.linalg.norm(flow - lensed, axis=-1)[surface], 90)
        pinhole_err = np.percentile(np.linalg.norm(flow - pinhole, axis=-1)[surface], 90)
        print(
            f"{name}: 90th percentile of |flow - reprojection| {lensed_err:.4f} px, through a pinhole {pinhole_err:.4f} px"
        )
        assert lensed_err < 0.01 and pinhole_err > 5 * lensed_err and pinhole_err > 0.05


def test_jpeg_frames_are_resampled_from_a_lossless_frame(renders, render):
    """Blender writes the larger pinhole frame losslessly; the distorted frame is encoded once (OpenCV)."""
    png = renders["barrel"]
    out = render(png.blend, "lens-barrel-jpeg", config=config("barrel").replace(file_format="JPEG"),
                 frame_start=FRAMES[0], frame_end=FRAMES[0])  # fmt: skip
    meta = transforms.read(out)
    frame = read_image(out / meta["frames"][0]["file_path"])
    assert meta["frames"][0]["file_path"].endswith(".jpg") and frame.shape == (90, 120, 3)
    reference = read_image(png.out / png.meta["frames"][0]["file_path"])
    assert np.abs(frame.astype(float) - reference).mean() < 2.0  # the same picture, JPEG's loss aside


def test_polynomial_fisheye_is_the_fisheye_it_writes_out(renders):
    """The polynomial with k1 = -fov / sensor width alone is the equidistant fisheye: Cycles renders the same
    ids, depths and flow through either, and camsim.lenses projects both alike."""
    poly, equi = renders["fisheye-polynomial-equidistant"], renders["fisheye-equidistant"]
    for a, b in zip(poly.frames, equi.frames, strict=True):
        assert (a.ids == b.ids).mean() > 0.999
        both = np.isfinite(a.depth) & np.isfinite(b.depth)
        np.testing.assert_allclose(a.depth[both], b.depth[both], rtol=DEPTH_REL)
        rays_a, ok_a = lenses.pixel_rays(a.camera)
        rays_b, ok_b = lenses.pixel_rays(b.camera)
        assert np.array_equal(ok_a, ok_b) and np.abs(rays_a[ok_a] - rays_b[ok_b]).max() < 1e-6
        same = (a.ids == b.ids) & ok_a
        assert np.percentile(np.abs(a.flow[same] - b.flow[same]), 99) < FLOW_EPE_P99
