"""Every camera model camsim writes (camsim.lenses): projection against OpenCV's own (cv2.projectPoints,
cv2.fisheye.projectPoints), unprojection as its exact inverse, and the models' closed forms. No Blender."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from camsim import lenses, transforms
from camsim.errors import DatasetError
from camsim.lenses import Camera, Lens

DISTORTIONS = {
    "barrel": (-0.28, 0.07, -0.01, 0.0, 0.0),
    "pincushion": (0.22, 0.03, 0.005, 0.0, 0.0),
    "tangential": (-0.12, 0.02, 0.0, 0.004, -0.006),
}
W, H = 320, 240


def opencv_camera(params: tuple[float, ...]) -> Camera:
    return Camera(260.0, 255.0, 161.3, 118.7, W, H, Lens("OPENCV", params))


def opencv_axes(points: np.ndarray) -> np.ndarray:
    """camsim's camera frame (OpenGL: y up, looking along -z) -> OpenCV's (y down, looking along +z)."""
    return points * np.array([1.0, -1.0, -1.0])


def random_points(n: int, rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """Camera-frame points (OpenGL axes) at up to `max_angle` radians from the optical axis, 1..10 away."""
    theta = max_angle * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(-math.pi, math.pi, n)
    dist = rng.uniform(1.0, 10.0, n)
    return (
        np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), -np.cos(theta)], -1)
        * dist[:, None]
    )


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_opencv_projection_is_opencvs(name):
    cam = opencv_camera(DISTORTIONS[name])
    pts = random_points(2000, np.random.default_rng(1), math.radians(40))
    uv, valid = lenses.project(pts, cam)
    k1, k2, k3, p1, p2 = cam.lens.params
    ref, _ = cv2.projectPoints(
        opencv_axes(pts), np.zeros(3), np.zeros(3), cam.K, np.array([k1, k2, p1, p2, k3])
    )
    assert valid.all()
    assert np.abs(ref[:, 0] - uv).max() < 1e-9


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_opencv_unprojection_inverts_projection_to_1e9_px(name):
    cam = opencv_camera(DISTORTIONS[name])
    # every pixel centre of the frame and points just beyond its edges
    beyond = np.random.default_rng(2).uniform((-5, -5), (W + 5, H + 5), (500, 2))
    uv = np.concatenate([cam.pixel_centres().reshape(-1, 2), beyond])
    rays, ok = lenses.unproject(uv, cam)
    assert ok.all()
    np.testing.assert_allclose(rays[:, 2], -1.0)  # planar: a z-depth scales the ray to the point
    back, valid = lenses.project(rays * 3.7, cam)
    assert valid.all()
    assert np.abs(back - uv).max() < 1e-9
    # ... and agrees with OpenCV's iterative undistortion run to convergence
    k1, k2, k3, p1, p2 = cam.lens.params
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    ref = cv2.undistortPointsIter(uv[:, None], cam.K, np.array([k1, k2, p1, p2, k3]), None, None, criteria)[
        :, 0
    ]
    np.testing.assert_allclose(np.stack([rays[:, 0], -rays[:, 1]], -1), ref, atol=1e-7)


def test_opencv_pinhole_is_the_intrinsics_sentence():
    cam = Camera(200.0, 190.0, 100.5, 80.25, 200, 160)
    pts = random_points(100, np.random.default_rng(3), math.radians(35))
    uv, _ = lenses.project(pts, cam)
    expected = np.stack([200.0 * pts[:, 0] / -pts[:, 2] + 100.5, -190.0 * pts[:, 1] / -pts[:, 2] + 80.25], -1)
    np.testing.assert_allclose(uv, expected, atol=1e-12)
    c2w = np.eye(4)
    c2w[:3, 3] = (1.0, 2.0, 3.0)
    uv2, _ = transforms.project(pts + c2w[:3, 3], c2w, cam.K)
    np.testing.assert_allclose(uv2, uv, atol=1e-9)


def test_opencv_projection_marks_what_has_no_image():
    cam = opencv_camera((-0.4, 0.05, 0.0, 0.0, 0.0))
    radius = lenses.valid_radius(cam.lens.params)
    # d/dr [r (1 + k1 r^2 + k2 r^4)] = 1 - 1.2 s + 0.25 s^2 (s = r^2) first vanishes at s = (1.2 - sqrt(0.44)) / 0.5
    assert radius == pytest.approx(math.sqrt((1.2 - math.sqrt(0.44)) / 0.5), rel=1e-9)
    behind = np.array([[0.1, 0.2, 1.0]])
    folded = np.array([[1.1, 0.0, -1.0]])  # beyond the valid radius: the model folds back there
    inside = np.array([[1.0, 0.0, -1.0]])
    assert lenses.project(np.concatenate([behind, folded, inside]), cam)[1].tolist() == [False, False, True]
    assert lenses.valid_radius((0.1, 0.01, 0.0, 0.0, 0.0)) == math.inf
    # a pixel beyond the largest distorted radius the model reaches (r g(r) at the fold) has no ray
    top = radius * (1 - 0.4 * radius**2 + 0.05 * radius**4)
    edge = np.array([[cam.cx + 0.999 * top * cam.fl_x, cam.cy], [cam.cx + 1.001 * top * cam.fl_x, cam.cy]])
    assert lenses.unproject(edge, cam)[1].tolist() == [True, False]


@pytest.mark.parametrize("ks", [(0.0, 0.0, 0.0, 0.0), (0.05, -0.01, 0.002, -0.0003)])
def test_kannala_brandt_projection_is_opencv_fisheyes(ks):
    cam = Camera(120.0, 110.0, 160.0, 120.0, W, H, Lens("OPENCV_FISHEYE", ks, math.radians(179.0)))
    pts = random_points(2000, np.random.default_rng(4), math.radians(85))
    uv, valid = lenses.project(pts, cam)
    ref, _ = cv2.fisheye.projectPoints(opencv_axes(pts)[None], np.zeros(3), np.zeros(3), cam.K, np.array(ks))
    assert valid.all()
    assert np.abs(ref[0] - uv).max() < 1e-9


@pytest.mark.parametrize(
    ("model", "params", "fov_deg"),
    [
        ("OPENCV_FISHEYE", (0.0, 0.0, 0.0, 0.0), 220.0),
        ("OPENCV_FISHEYE", (0.02, -0.003, 0.0, 0.0), 200.0),
        ("FISHEYE_EQUISOLID", (), 300.0),
        ("FISHEYE_POLYNOMIAL", (0.0, -0.0392, 0.0, 0.0, 0.0), 200.0),  # Blender's defaults (r in mm)
        ("FISHEYE_POLYNOMIAL", (-1e-5, -0.04, 1e-5, -2e-6, 1e-8), 180.0),
    ],
)
def test_fisheye_unprojection_inverts_projection(model, params, fov_deg):
    fov = math.radians(fov_deg)
    focal = 1.0 / 0.05 if model == "FISHEYE_POLYNOMIAL" else 70.0  # polynomial: pixels per millimetre
    cam = Camera(focal, focal * 1.02, 160.0, 120.0, W, H, Lens(model, params, fov))
    pts = random_points(3000, np.random.default_rng(5), 0.5 * fov - 1e-6)
    uv, valid = lenses.project(pts, cam)
    assert valid.all()
    rays, ok = lenses.unproject(uv, cam)
    assert ok.all()
    np.testing.assert_allclose(np.linalg.norm(rays, axis=-1), 1.0)  # radial: a ray distance scales it
    dirs = pts / np.linalg.norm(pts, axis=-1, keepdims=True)
    assert np.abs(rays - dirs).max() < 1e-9
    back, _ = lenses.project(rays, cam)
    assert np.abs(back - uv).max() < 1e-9
    # beyond the field of view there is no image, and pixels outside the image circle have no ray
    outside = random_points(200, np.random.default_rng(6), math.pi)
    angles = np.arccos(np.clip(-outside[:, 2] / np.linalg.norm(outside, axis=-1), -1, 1))
    assert not lenses.project(outside[angles > 0.5 * fov + 1e-6], cam)[1].any()


def test_fisheye_closed_forms():
    theta = np.linspace(0.0, math.pi, 50)
    equidistant = Lens("OPENCV_FISHEYE", (0.0, 0.0, 0.0, 0.0), 2 * math.pi)
    np.testing.assert_allclose(lenses.fisheye_radius(theta, equidistant), theta, atol=1e-15)
    equisolid = Lens("FISHEYE_EQUISOLID", (), 2 * math.pi)
    np.testing.assert_allclose(lenses.fisheye_radius(theta, equisolid), 2 * np.sin(theta / 2), atol=1e-15)
    poly = Lens("FISHEYE_POLYNOMIAL", (0.0, -0.0392, 0.0, 0.0, 0.0), math.pi)
    np.testing.assert_allclose(lenses.fisheye_radius(theta, poly), theta / 0.0392, rtol=1e-12)
    # a point straight ahead lands on the principal point; one 90 degrees to the right at cx + fl_x * r(90)
    cam = Camera(50.0, 40.0, 60.0, 45.0, 120, 90, equisolid)
    uv, _ = lenses.project(np.array([[0.0, 0.0, -2.0], [3.0, 0.0, 0.0], [0.0, 1.0, -1.0]]), cam)
    np.testing.assert_allclose(uv[0], [60.0, 45.0])
    np.testing.assert_allclose(uv[1], [60.0 + 50.0 * 2 * math.sin(math.pi / 4), 45.0])
    np.testing.assert_allclose(uv[2], [60.0, 45.0 - 40.0 * 2 * math.sin(math.pi / 8)])  # +Y is up: v smaller


def test_equisolid_has_no_exact_kannala_brandt_form():
    _, err = lenses.equisolid_as_kannala_brandt(math.pi)
    assert 0 < err < 1e-8  # the Taylor series to theta^9 is close for 180 degrees ...
    _, wide = lenses.equisolid_as_kannala_brandt(2 * math.pi)
    assert wide > 1e-6  # ... but not exact, and worse for wider lenses


def test_lens_of_transforms_json():
    meta = {"camera_model": "OPENCV", "k1": -0.2, "k2": 0.01, "p1": 0.001, "p2": 0.0, "fl_x": 100.0, "fl_y": 100.0,
            "cx": 60.0, "cy": 45.0, "w": 120, "h": 90, "frames": [{"fl_x": 110.0}]}  # fmt: skip
    lens = transforms.lens_of(meta)
    assert lens == Lens("OPENCV", (-0.2, 0.01, 0.0, 0.001, 0.0))  # a missing k3 is 0 (nerfstudio's rule)
    assert not lens.is_pinhole and transforms.camera_of(meta, 0).fl_x == 110.0
    assert transforms.lens_of({}).is_pinhole  # no camera_model: OPENCV, all 0
    fish = {"camera_model": "OPENCV_FISHEYE", "k1": 0.0, "fisheye_fov": math.pi}
    assert transforms.lens_of(fish) == Lens("OPENCV_FISHEYE", (0.0, 0.0, 0.0, 0.0), math.pi)
    assert Lens("FISHEYE_EQUISOLID", (), 3.0).keys() == {
        "camera_model": "FISHEYE_EQUISOLID",
        "fisheye_fov": 3.0,
    }
    with pytest.raises(DatasetError, match="unknown camera_model 'PINHOLE_X'"):
        transforms.lens_of({"camera_model": "PINHOLE_X"})
    with pytest.raises(DatasetError, match="fisheye_fov"):
        transforms.lens_of({"camera_model": "FISHEYE_EQUISOLID"})
    with pytest.raises(DatasetError, match="'k1' must be a finite number"):
        transforms.lens_of({"camera_model": "OPENCV", "k1": "x"})


@pytest.mark.parametrize(
    "lens",
    [Lens("OPENCV", DISTORTIONS["tangential"]), Lens("FISHEYE_EQUISOLID", (), math.radians(200))],
    ids=["opencv", "equisolid"],
)
def test_depth_maps_unproject_in_the_lens_convention(lens):
    cam = Camera(40.0, 40.0, 32.0, 24.0, 64, 48, lens)
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    c2w[:3, 3] = (0.5, -1.0, 2.0)
    assert lenses.pixel_rays(cam)[1].all()
    dist = np.full((48, 64), 4.0)
    world = transforms.unproject_depth(dist, c2w, cam)
    uv, depth, valid = transforms.project_points(world.reshape(-1, 3), c2w, cam)
    assert valid.all()
    np.testing.assert_allclose(uv, cam.pixel_centres().reshape(-1, 2), atol=1e-8)
    np.testing.assert_allclose(depth, 4.0)  # planar z for OPENCV, the distance along the ray for a fisheye
    if lens.is_fisheye:
        assert np.linalg.norm(world - c2w[:3, 3], axis=-1) == pytest.approx(4.0)
