"""VisionSim-style indexing: `ds[i, rows, cols]` crops every modality (K and flow follow the crop), and
slices, lists, arrays and boolean masks of frame indices give lists of items."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic_plane

from camsim import transforms
from camsim.convert import img_to_npy
from camsim.loader import Dataset

plane_sequence = synthetic_plane.plane_sequence  # fixture

PIXEL_ARRAYS = ("frame", "depth", "normal", "flow", "segmentation")


@pytest.mark.parametrize("layout", ["IMG", "NPY", "NPY-bitpacked"])
def test_dataset_crop_equals_the_cropped_full_frame_for_every_modality(plane_sequence, tmp_path, layout):
    root = plane_sequence(binary=layout == "NPY-bitpacked")
    if layout != "IMG":
        root = img_to_npy(root, tmp_path / "npy", bitpack=layout == "NPY-bitpacked")
    ds = Dataset.from_path(root)
    for i, rows, cols in (
        (0, slice(2, 9), slice(3, 15)),
        (4, slice(None), slice(-5, None)),
        (-2, 1, slice(4, 6)),
    ):
        full, crop = ds[i], ds[i, rows, cols]
        assert crop["index"] == full["index"] and crop["frame_number"] == full["frame_number"]
        np.testing.assert_array_equal(crop["pose"], full["pose"])
        for name in PIXEL_ARRAYS:
            np.testing.assert_array_equal(crop[name], full[name][rows, cols], err_msg=name)
            assert crop[name].dtype == full[name].dtype
    only_rows = ds[1, 3:5]
    assert only_rows["frame"].shape[:2] == (2, 16) and only_rows["depth"].shape == (2, 16)


def test_dataset_crop_moves_K_and_flow_with_the_pixels(plane_sequence):
    """Unprojecting the cropped depth with the cropped K gives the same world points as the full frame at
    the kept pixels, and projecting them into the next frame gives the cropped forward flow."""
    ds = Dataset.from_path(plane_sequence())
    for rows, cols in (
        (slice(2, 10), slice(3, 15)),
        (slice(1, None, 2), slice(None, None, 3)),
        (5, slice(12, 2, -2)),
    ):
        i = 1
        full, crop = ds[i], ds[i, rows, cols]
        K = crop["K"]
        depth = crop["depth"].reshape(np.atleast_2d(crop["depth"]).shape)
        points = transforms.unproject(depth, crop["pose"], K)
        want = transforms.unproject(full["depth"], full["pose"], full["K"])[rows, cols]
        np.testing.assert_allclose(points.reshape(want.shape), want, atol=1e-9)
        nxt = ds[i + 1]
        uv, _ = transforms.project(points.reshape(-1, 3), nxt["pose"], K)
        h, w = depth.shape
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        expect = uv.reshape(h, w, 2) - np.stack([u, v], axis=-1)
        flow = crop["flow"].reshape(h, w, 4)
        np.testing.assert_allclose(flow[..., :2], expect, atol=1e-4)
    np.testing.assert_array_equal(ds[0, 2:10, 3:15]["K"], [[20, 0, 8 - 3], [0, 20, 6 - 2], [0, 0, 1]])
    np.testing.assert_array_equal(ds[0, 2:10, 3:15]["flow"], ds[0]["flow"][2:10, 3:15])  # unit stride: as is


def test_dataset_lists_arrays_masks_and_slices_of_frames(plane_sequence, tmp_path):
    ds = Dataset.from_path(plane_sequence())
    assert [it["index"] for it in ds[[0, 3, 4]]] == [0, 3, 4]
    assert [it["index"] for it in ds[np.array([4, -5])]] == [4, 0]
    assert [it["index"] for it in ds[np.array([True, False, True, False, False])]] == [0, 2]
    assert [it["index"] for it in ds[::-2]] == [4, 2, 0]
    assert ds[[]] == [] and ds[7:9] == []
    assert ds[np.int64(3)]["index"] == 3
    items = ds[[1, 2], 0:4, 0:5]
    assert [it["frame"].shape for it in items] == [(4, 5, 3), (4, 5, 3)]
    np.testing.assert_array_equal(items[1]["depth"], ds[2]["depth"][0:4, 0:5])
    plane_sequence("many/a", n=3)
    plane_sequence("many/b", n=4)
    multi = Dataset.from_path(tmp_path / "many")
    picked = multi[[0, 4, -1], 1:3]
    assert [(it["sequence"], it["index"]) for it in picked] == [("a", 0), ("b", 1), ("b", 3)]
    assert picked[1]["frame"].shape == (2, 16, 3)
