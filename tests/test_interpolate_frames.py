"""Interpolated frames match analytic truth: translating texture, occluder depth order, camera rotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import synthetic_scenes as S
from scipy.ndimage import binary_dilation

from camsim import srgb
from camsim.fileio import read_exr, read_image
from camsim.interpolate import interpolate_sequence

PLANE = S.Layer(depth=5.0, velocity=(4.0, 0.0))
OCCLUDER = S.Layer(depth=2.0, velocity=(-4.0, 4.0), rect=(10, 8, 26, 20), seg_id=2, tint=(1.0, 0.3, 0.2))


def _interpolated(tmp_path: Path, scene: S.Scene, factor: int, n_frames: int = 3, **kw):
    S.write_sequence(tmp_path / "in", scene, n_frames, **kw)
    meta = interpolate_sequence(tmp_path / "in", tmp_path / "out", factor, workers=1)
    for fr in meta["frames"]:
        if fr["interpolated"]:
            truth = S.render(scene, fr["time"] * scene.fps)
            yield fr, truth


def _read(tmp_path: Path, fr: dict, key: str, channels=None) -> np.ndarray:
    p = tmp_path / "out" / fr[key]
    return read_image(p) if p.suffix == ".png" else read_exr(p, channels)


def test_translating_plane_is_within_one_grey_level_inside(tmp_path):
    scene = S.Scene(layers=(PLANE,))
    for fr, truth in _interpolated(tmp_path, scene, 4):
        img = _read(tmp_path, fr, "file_path").astype(int)
        expect = srgb.encode(truth["rgb"], np.uint8).astype(int)
        err = np.abs(img - expect)[:, 4:-4]  # columns entering at the borders come from the other frame
        assert err.max() <= 1, fr
        assert fr["hole_fraction"] == 0.0


def test_subpixel_translation_stays_sharp(tmp_path):
    # Motion that is no whole number of pixels: splatting colours would blur, backward sampling must not.
    scene = S.Scene(layers=(S.Layer(depth=5.0, velocity=(2.3, 0.7)),))
    for fr, truth in _interpolated(tmp_path, scene, 4):
        img = _read(tmp_path, fr, "file_path").astype(int)
        expect = srgb.encode(truth["rgb"], np.uint8).astype(int)
        assert np.abs(img - expect)[4:-4, 4:-4].max() <= 1, fr


def test_translating_plane_keeps_sixteen_bit_depth(tmp_path):
    scene = S.Scene(layers=(PLANE,))
    for fr, truth in _interpolated(tmp_path, scene, 2, n_frames=2, bit_depth=16):
        img = _read(tmp_path, fr, "file_path")
        assert img.dtype == np.uint16
        expect = srgb.encode(truth["rgb"], np.uint16).astype(int)
        assert np.abs(img.astype(int) - expect)[:, 4:-4].max() <= 257


def test_occluder_in_front_keeps_its_edges_and_ids(tmp_path):
    scene = S.Scene(layers=(PLANE, OCCLUDER))
    for fr, truth in _interpolated(tmp_path, scene, 4):
        hole = _read(tmp_path, fr, "hole_mask_file_path") > 0
        seg = _read(tmp_path, fr, "segmentation_file_path", ("Y",))
        depth = _read(tmp_path, fr, "depth_file_path", ("Y",))
        img = _read(tmp_path, fr, "file_path").astype(int)
        known = ~binary_dilation(hole, iterations=1)
        # Nearest surface wins: ids and depths are exact, never blended, wherever a neighbour saw the pixel.
        assert np.array_equal(seg[known], truth["seg"][known]), fr
        assert np.allclose(depth[known], truth["depth"][known]), fr
        assert set(np.unique(seg)) <= {1, 2}
        # The occluder's colour edge is where the truth has it (no ghost of the plane inside, no smear outside).
        expect = srgb.encode(truth["rgb"], np.uint8).astype(int)
        err = np.abs(img - expect).max(-1)
        assert err[known & (truth["seg"] == 2)].max() <= 1
        assert err[known & (truth["seg"] == 1)][4:].max() <= 1


def test_disocclusion_no_frame_sees_is_marked_as_hole(tmp_path):
    scene = S.Scene(layers=(PLANE, OCCLUDER))
    frames = list(_interpolated(tmp_path, scene, 4))
    fr = next(f for f, _ in frames if f["time"] * scene.fps == pytest.approx(1.5))
    hole = _read(tmp_path, fr, "hole_mask_file_path") > 0
    # At t=1.5 the left-border plane strip (x < 2) entered after frame 1 and is behind the occluder in frame 2.
    assert hole[16:28, 0].all() and hole.sum() == fr["hole_fraction"] * hole.size
    assert not hole[:, 4:].any()


def test_world_background_follows_camera_rotation(tmp_path):
    scene = S.Scene(yaw_rate=0.1)  # about 5 px per frame of pure rotation, zero flow in the files
    for fr, truth in _interpolated(tmp_path, scene, 4):
        img = _read(tmp_path, fr, "file_path").astype(int)
        expect = srgb.encode(truth["rgb"], np.uint8).astype(int)
        assert np.abs(img - expect)[2:-2, 2:-2].max() <= 1, fr
    # A cross-fade is far off: the rotation really is being used.
    a = read_image(tmp_path / "in" / "frames" / "frame_000001.png").astype(int)
    b = read_image(tmp_path / "in" / "frames" / "frame_000002.png").astype(int)
    assert np.abs((a + b) / 2 - srgb.encode(S.render(scene, 0.5)["rgb"], np.uint8)).max() > 5


def test_normals_and_linear_exr_are_warped_and_unit(tmp_path):
    scene = S.Scene(layers=(PLANE, OCCLUDER))
    for fr, truth in _interpolated(tmp_path, scene, 2, linear=True):
        normals = _read(tmp_path, fr, "normal_file_path", ("R", "G", "B"))
        assert np.allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-5)
        lin = _read(tmp_path, fr, "linear_file_path", ("R", "G", "B"))
        hole = binary_dilation(_read(tmp_path, fr, "hole_mask_file_path") > 0)
        assert np.abs(lin - truth["rgb"])[~hole][4:].max() < 1e-3


def _step_frame(offset: float, angle: float, velocity: tuple[float, float], sigma: float, size: int = 40):
    """A plane showing a straight two-colour step anti-aliased by a Gaussian pixel filter (exact Phi profile)."""
    from scipy.special import ndtr

    from camsim.interpolate.warp import FrameData

    v, u = np.mgrid[0:size, 0:size] + 0.5
    nx, ny = np.cos(angle), np.sin(angle)
    dist = (u - size / 2) * nx + (v - size / 2) * ny - offset
    a = ndtr(dist / sigma)[..., None]
    rgb = (1 - a) * np.array([0.05, 0.3, 0.1]) + a * np.array([0.8, 0.75, 0.7])
    flow = np.broadcast_to(np.array([*velocity, -velocity[0], -velocity[1]]), (size, size, 4)).copy()
    K = np.array([[60.0, 0, size / 2], [0, 60.0, size / 2], [0, 0, 1]])
    return FrameData(rgb=rgb, depth=np.full((size, size), 5.0), flow=flow, c2w=np.eye(4), K=K)


@pytest.mark.parametrize("angle", [0.0, 0.35, 0.8])
def test_antialiased_step_moves_without_blur(angle):
    """A moving anti-aliased edge is re-drawn at its new sub-pixel place, not blurred by resampling."""
    from camsim.interpolate import reverse
    from camsim.interpolate.warp import PairWarper

    sigma = reverse.filter_sigma({"type": "BLACKMAN_HARRIS", "width": 1.5})
    velocity = (2.3, 0.9)
    along = velocity[0] * np.cos(angle) + velocity[1] * np.sin(angle)
    a = _step_frame(0.0, angle, velocity, sigma)
    b = _step_frame(along, angle, velocity, sigma)
    for s in (0.25, 0.5, 0.75):
        truth = _step_frame(s * along, angle, velocity, sigma).rgb
        got = PairWarper(a, b, edge_sigma=sigma).frame(s, np.eye(4), a.K, 4).rgb
        err = np.abs(got - truth)[4:-4, 4:-4].max()
        assert err < 0.02, (s, err)  # contrast 0.75; cubic B-spline resampling is off by up to 0.054


def test_far_layer_is_sampled_only_where_it_covers_the_pixel():
    """`sample` of only the far layer's covered points gives what it gives there, and a weightless nothing
    elsewhere."""
    from camsim.interpolate import reverse

    rng = np.random.default_rng(4)
    h, w, n = 12, 16, 120
    image = rng.uniform(0.0, 1.0, (h, w, 3))
    depth = np.where(np.arange(w)[None] < 7, 2.0, 5.0) * np.ones((h, w))
    slope = np.zeros((h, w))
    coverage = np.where(rng.uniform(size=n) < 0.4, 0.0, rng.uniform(0.1, 1.0, n))
    layer = reverse.Layer(
        coverage=coverage, sx=rng.uniform(-1, w + 1, n), sy=rng.uniform(-1, h + 1, n),
        depth=np.full(n, 5.0), src_depth=rng.choice([2.0, 5.0], n), slope=np.zeros(n), background=np.zeros(n, bool),
    )  # fmt: skip
    args = (reverse.prefilter(image), image, depth, slope, reverse.window_stats(depth, slope), layer)
    there = coverage > reverse.FAR_MIN_COVERAGE
    full, part = reverse.sample(*args), reverse.sample(*args, only=there)
    assert 0 < there.sum() < n
    for a, b in zip(full, part, strict=True):
        np.testing.assert_array_equal(b[there], a[there])
        assert not b[~there].any()
