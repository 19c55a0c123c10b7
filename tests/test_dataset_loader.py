"""The loader returns exactly what the files hold, in both layouts, and works in DataLoader workers."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import synthetic_plane

from camsim import transforms
from camsim.convert import img_to_npy
from camsim.dataset import Dataset, MultiSequenceDataset, SequenceDataset
from camsim.errors import DatasetError
from camsim.fileio import read_exr, read_image

plane_sequence = synthetic_plane.plane_sequence  # fixture


def test_dataset_item_equals_files(plane_sequence):
    root = plane_sequence()
    ds = Dataset.from_path(root)
    assert isinstance(ds, SequenceDataset)
    meta = transforms.read(root)
    assert len(ds) == len(meta["frames"]) == 5
    assert ds.ground_truth() == ["depth", "normal", "flow", "segmentation"]
    for i, fr in enumerate(meta["frames"]):
        item = ds[i]
        np.testing.assert_array_equal(item["frame"], read_image(root / fr["file_path"]))
        np.testing.assert_array_equal(item["depth"], read_exr(root / fr["depth_file_path"], ("Y",)))
        np.testing.assert_array_equal(item["flow"], read_exr(root / fr["flow_file_path"], tuple("RGBA")))
        assert item["segmentation"].dtype == np.uint32
        np.testing.assert_array_equal(item["pose"], np.array(fr["transform_matrix"]))
        np.testing.assert_array_equal(item["K"], [[20, 0, 8], [0, 20, 6], [0, 0, 1]])
        assert item["time"] == fr["time"] and item["frame_number"] == fr["frame_number"]
    assert ds[-1]["index"] == 4
    assert [it["index"] for it in ds[1:4]] == [1, 2, 3]
    with pytest.raises(IndexError):
        ds[5]


def test_dataset_opens_transforms_json_and_npy_layout_the_same(plane_sequence, tmp_path):
    root = plane_sequence()
    img = Dataset.from_path(root / "transforms.json")
    npy = Dataset.from_path(img_to_npy(root, tmp_path / "npy"))
    assert npy.is_npy and not img.is_npy
    for i in range(len(img)):
        a, b = img[i], npy[i]
        assert a.keys() == b.keys()
        for k in a.keys() - {"sequence"}:
            np.testing.assert_array_equal(a[k], b[k])


def test_dataset_npy_frame_read_touches_only_a_memory_map(plane_sequence, tmp_path):
    npy = Dataset.from_path(img_to_npy(plane_sequence(), tmp_path / "npy", bitpack=False))
    npy[2]
    assert isinstance(npy.array("frame"), np.memmap)
    # Pickling (what DataLoader workers get) drops the open maps; the copy maps the file itself.
    clone = pickle.loads(pickle.dumps(npy))
    assert clone._arrays == {}
    np.testing.assert_array_equal(clone[3]["depth"], npy[3]["depth"])


def test_dataset_folder_of_sequences_is_concatenated(plane_sequence, tmp_path):
    plane_sequence("renders/a/seq-0", n=3)
    plane_sequence("renders/b/seq-1", n=4)
    ds = Dataset.from_path(tmp_path / "renders")
    assert isinstance(ds, MultiSequenceDataset)
    assert len(ds) == 7
    assert [s.name for s in ds.sequences] == ["a/seq-0", "b/seq-1"]
    item = ds[4]
    assert item["sequence"] == "b/seq-1" and item["index"] == 1


def test_dataset_refuses_paths_escaping_the_sequence(plane_sequence):
    root = plane_sequence()
    meta = transforms.read(root)
    meta["frames"][0]["file_path"] = "../outside.png"
    (root / "transforms.json").write_text(__import__("json").dumps(meta))
    with pytest.raises(DatasetError, match="escapes"):
        Dataset.from_path(root)


def test_dataset_missing_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError):
        Dataset.from_path(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no transforms"):
        Dataset.from_path(tmp_path)


def test_dataset_module_does_not_import_torch():
    code = "import sys, camsim.dataset, camsim.convert; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
