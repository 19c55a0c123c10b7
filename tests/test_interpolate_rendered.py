"""Interpolating a real Cycles render, judged against the renderer's own frames at the new times.

A demo scene (moving camera, moving and spinning objects, sky, textured floor) is rendered at keyframe
multiplier b and at 2b over the same span; the b render is interpolated x2. The renderer numbers frame f
at multiplier 2b as 2f, like interpolation does, so every output frame has a rendered twin.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAST
from scipy.ndimage import binary_dilation

from camsim import srgb, transforms
from camsim.fileio import read_exr, read_image
from camsim.interpolate import interpolate_sequence
from camsim.interpolate.metrics import psnr

pytestmark = pytest.mark.blender  # renders with the shared Blender worker

BASE = 0.125
"""Source multiplier: about 3 px of motion per source frame at 96x72."""


@pytest.fixture(scope="module")
def rendered(demo_scenes, render, tmp_path_factory):
    config = FAST.replace(width=96, height=72, max_samples=16, use_denoising=True, bit_depth=16)
    src = render(demo_scenes[0], "interp-src", config=config.replace(keyframe_multiplier=BASE),
                 frame_start=25, frame_end=27)  # fmt: skip
    truth = render(demo_scenes[0], "interp-truth", config=config.replace(keyframe_multiplier=2 * BASE),
                   frame_start=50, frame_end=54)  # fmt: skip
    out = tmp_path_factory.mktemp("interp-out") / "x2"
    interpolate_sequence(src, out, 2, workers=1)
    return out, truth


def _frames(folder):
    meta = transforms.read(folder)
    return meta, {f["frame_number"]: f for f in meta["frames"]}


def test_every_output_frame_has_a_rendered_twin_and_kept_frames_are_untouched(rendered):
    out, truth = rendered
    meta, ours = _frames(out)
    tmeta, ref = _frames(truth)
    # The pixel filter that shaped the anti-aliased edges travels with the data (interpolation models it).
    assert tmeta["pixel_filter"] == meta["pixel_filter"] == {"type": "BLACKMAN_HARRIS", "width": 1.5}
    assert sorted(ours) == sorted(ref) == list(range(50, 55))
    for n in (50, 52, 54):
        assert not ours[n]["interpolated"]
        a = read_image(transforms.resolve_path(out, ours[n]["file_path"]))
        b = read_image(transforms.resolve_path(truth, ref[n]["file_path"]))
        assert np.array_equal(a, b)  # same frame, same seed: Cycles renders it bit for bit again


def test_new_frames_beat_a_cross_fade_by_a_wide_margin(rendered):
    out, truth = rendered
    _, ours = _frames(out)
    _, ref = _frames(truth)
    for n in (51, 53):
        img = read_image(transforms.resolve_path(out, ours[n]["file_path"]))
        true = read_image(transforms.resolve_path(truth, ref[n]["file_path"]))
        a, b = (
            srgb.decode(read_image(transforms.resolve_path(out, ours[k]["file_path"])))
            for k in (n - 1, n + 1)
        )
        fade = srgb.encode(0.5 * a + 0.5 * b, true.dtype)
        gain = psnr(img, true, 65535.0) - psnr(fade, true, 65535.0)
        assert gain > 6.5, f"frame {n}: {gain:+.2f} dB over the cross-fade"


def test_new_depth_and_segmentation_match_the_rendered_ones_off_edges(rendered):
    out, truth = rendered
    meta, ours = _frames(out)
    tmeta, ref = _frames(truth)
    assert meta["segmentation_ids"] == tmeta["segmentation_ids"]
    for n in (51, 53):
        seg = read_exr(transforms.resolve_path(out, ours[n]["segmentation_file_path"]), ("Y",))
        tseg = read_exr(transforms.resolve_path(truth, ref[n]["segmentation_file_path"]), ("Y",))
        edges = np.zeros(tseg.shape, bool)
        edges[:, 1:] |= tseg[:, 1:] != tseg[:, :-1]
        edges[1:] |= tseg[1:] != tseg[:-1]
        interior = ~binary_dilation(edges, iterations=1)
        assert (seg == tseg)[interior].mean() > 0.995
        assert (seg == tseg).mean() > 0.97
        depth = read_exr(transforms.resolve_path(out, ours[n]["depth_file_path"]), ("Y",))
        tdepth = read_exr(transforms.resolve_path(truth, ref[n]["depth_file_path"]), ("Y",))
        sky = tdepth > 1e9
        assert ((depth > 1e9) != sky)[interior].mean() < 0.002
        surf = interior & ~sky
        rel = np.abs(depth[surf] - tdepth[surf]) / tdepth[surf]
        assert np.median(rel) < 1e-3 and np.quantile(rel, 0.99) < 0.02
