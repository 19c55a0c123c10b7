"""The loader returns exactly what the files hold, in both layouts, and works in DataLoader workers; it
decodes only the modalities asked for, opens folders of images and .npy files, and answers bad requests
with DatasetErrors."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import synthetic_plane

from camsim import transforms
from camsim.convert import img_to_npy
from camsim.errors import DatasetError
from camsim.fileio import read_exr, read_image, write_exr, write_image
from camsim.loader import Dataset, DatasetIndexError, MultiSequenceDataset, SequenceDataset

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
    with pytest.raises(DatasetIndexError, match="out of range"):
        ds[5]
    with pytest.raises(IndexError):  # still an IndexError for code that catches one
        ds[-6]


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
    code = "import sys, camsim.loader, camsim.convert; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------------------- chosen modalities


def test_dataset_modalities_decode_only_those_asked_for(plane_sequence):
    root = plane_sequence()
    full = Dataset.from_path(root)
    want = [(it["frame"], it["depth"]) for it in full]
    for sub in ("normals", "flows", "segmentations"):  # nothing may open these any more
        shutil.rmtree(root / sub)
    with pytest.raises(DatasetError):
        Dataset.from_path(root)[0]  # all modalities: the deleted files are missed
    ds = Dataset.from_path(root, modalities=("rgb", "depth"))  # "rgb" is another name for "frame"
    assert ds.modalities() == ["frame", "depth"] and ds.available_modalities()[:2] == ["frame", "depth"]
    for i, item in enumerate(ds):
        assert {"frame", "depth"} <= item.keys() and not item.keys() & {"normal", "flow", "segmentation"}
        np.testing.assert_array_equal(item["frame"], want[i][0])
        np.testing.assert_array_equal(item["depth"], want[i][1])
        assert item["pose"].shape == (4, 4) and item["K"].shape == (3, 3)
    only_depth = Dataset.from_path(root / "transforms.json", modalities="depth")
    assert "frame" not in only_depth[2] and only_depth[2]["depth"].shape == (12, 16)


def test_dataset_modalities_never_open_other_npy_arrays(plane_sequence, tmp_path):
    npy = img_to_npy(plane_sequence(), tmp_path / "npy")
    want = Dataset.from_path(npy)[3]["depth"]
    for name in ("normals.npy", "flows.npy", "frames.npy"):
        (npy / name).write_bytes(b"\x93NUMPY corrupted")
    with pytest.raises(DatasetError, match="cannot read"):
        Dataset.from_path(npy)  # the corruption is real: opening them fails
    ds = Dataset.from_path(npy, modalities=["depth", "segmentation"])
    np.testing.assert_array_equal(ds[3]["depth"], want)
    assert set(ds[0]) == {"index", "frame_number", "time", "pose", "sequence", "K", "depth", "segmentation"}


def test_dataset_unknown_or_absent_modality_is_a_dataset_error(plane_sequence, tmp_path):
    root = plane_sequence()
    with pytest.raises(DatasetError, match=r"unknown modality 'rgbd'.*frame \(or rgb\), depth, normal"):
        Dataset.from_path(root, modalities=("rgbd",))
    with pytest.raises(DatasetError, match="no linear"):
        Dataset.from_path(root, modalities=("frame", "linear"))
    with pytest.raises(DatasetError, match="modalities must be"):
        Dataset.from_path(root, modalities=5)
    with pytest.raises(DatasetError, match="unknown modality"):
        Dataset.from_path(root, modalities=[None])
    ds = Dataset.from_path(root)
    with pytest.raises(DatasetError, match="unknown modality"):
        ds.read("colour", 0)
    with pytest.raises(DatasetError, match="unknown modality"):
        ds.file_for("colour", 0)
    plane_sequence("multi/a", n=2)
    plane_sequence("multi/b", n=2)
    (tmp_path / "multi/b/transforms.json").write_text(
        (tmp_path / "multi/b/transforms.json").read_text().replace('"depth_file_path"', '"x_depth"')
    )
    with pytest.raises(DatasetError, match="multi/b: no depth"):
        Dataset.from_path(tmp_path / "multi", modalities=("depth",))
    assert len(Dataset.from_path(tmp_path / "multi", modalities=("frame",))) == 4


BAD_INDICES = {
    "string": "1",
    "float": 1.5,
    "none": None,
    "bool": True,
    "dict": {"a": 1},
    "list-of-strings": [0, "x"],
    "list-of-floats": [0.0, 1.0],
    "nested-list": [[0, 1]],
    "ragged-list": [0, [1, 2]],
    "row-string": (0, "rows"),
    "column-float": (0, slice(None), 2.5),
    "too-many-axes": (0, slice(None), slice(None), 0),
    "empty-tuple": (),
    "zero-step": slice(None, None, 0),
    "float-slice": slice(0.5, 3),
    "row-zero-step": (0, slice(None, None, 0)),
    "ellipsis": (0, Ellipsis),
}
OUT_OF_RANGE = {
    "past-end": 5,
    "before-start": -6,
    "in-a-list": [0, 7],
    "bool-mask-length": [True, False],
    "row": (0, 12),
    "column": (0, slice(None), -17),
}


@pytest.mark.parametrize("name", [*BAD_INDICES, *OUT_OF_RANGE])
def test_dataset_bad_index_is_a_dataset_error(plane_sequence, name):
    ds = Dataset.from_path(plane_sequence())
    key = BAD_INDICES.get(name, OUT_OF_RANGE.get(name))
    with pytest.raises(DatasetError) as exc:
        ds[key]
    assert isinstance(exc.value, DatasetIndexError) == (name in OUT_OF_RANGE)
    assert not isinstance(exc.value, KeyError | TypeError)
    assert "\n" not in str(exc.value)


# ------------------------------------------------------------------------ folders of images, .npy


def test_dataset_folder_of_images_in_natural_order(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for k in (10, 2, 1, 33):
        write_image(folder / f"img_{k}.png", np.full((6, 8, 3), k, np.uint8))
    write_image(folder / ".hidden_0.png", np.zeros((6, 8, 3), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    ds = Dataset.from_path(folder)
    assert isinstance(ds, SequenceDataset) and len(ds) == 4 and ds.name == "shots"
    assert [int(it["frame"][0, 0, 0]) for it in ds] == [1, 2, 10, 33]
    item = ds[2]
    assert item["frame"].shape == (6, 8, 3) and item["index"] == 2 and item["frame_number"] == 2
    assert not item.keys() & {"pose", "K", "time", "depth"}
    assert ds[1:3, 2:4, 1:2][1]["frame"].shape == (2, 1, 3)
    with pytest.raises(DatasetError, match="no depth"):
        Dataset.from_path(folder, modalities=("depth",))
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[3]["frame"], item["frame"] * 0 + 33)


def test_dataset_folder_of_exr_images_and_a_sequence_frames_folder(plane_sequence, tmp_path):
    exrs = tmp_path / "exrs"
    exrs.mkdir()
    for k in (1, 2):
        write_exr(exrs / f"d{k}.exr", {"Y": np.full((4, 5), k / 2, np.float32)})
    ds = Dataset.from_path(exrs)
    assert ds[1]["frame"].shape == (4, 5, 1) and ds[1]["frame"].dtype == np.float32
    assert float(ds[1]["frame"][0, 0, 0]) == 1.0
    write_image(exrs / "d3.png", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(DatasetError, match="mixes EXR and PNG"):
        Dataset.from_path(exrs)
    root = plane_sequence()
    frames = Dataset.from_path(root / "frames")  # the frames of a sequence, without its transforms.json
    seq = Dataset.from_path(root)
    assert len(frames) == 5
    for i in range(5):
        np.testing.assert_array_equal(frames[i]["frame"], seq[i]["frame"])


def test_dataset_empty_or_unknown_paths_are_dataset_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no transforms\.json and no images"):
        Dataset.from_path(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a transforms"):
        Dataset.from_path(tmp_path / "notes.txt")


def test_dataset_single_npy_file_is_a_sequence_of_frames(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (4, 6, 8, 3), dtype=np.uint8)
    grey = rng.random((3, 6, 8)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    np.save(tmp_path / "grey.npy", grey)
    ds = Dataset.from_path(tmp_path / "rgb.npy")
    assert len(ds) == 4 and ds.name == "rgb" and isinstance(ds.array("frame"), np.memmap)
    for i in range(4):
        np.testing.assert_array_equal(ds[i]["frame"], rgb[i])
    np.testing.assert_array_equal(ds[-1, 1:5, ::2]["frame"], rgb[3, 1:5, ::2])
    assert [it["index"] for it in ds[[3, 0]]] == [3, 0]
    g = Dataset.from_path(tmp_path / "grey.npy", modalities=("rgb",))
    np.testing.assert_array_equal(g[2]["frame"], grey[2][..., None])
    clone = pickle.loads(pickle.dumps(g))
    assert clone._arrays == {}
    np.testing.assert_array_equal(clone[1]["frame"][..., 0], grey[1])
    for name, arr in (
        ("flat", np.zeros((4, 5))),
        ("five", np.zeros((1, 2, 3, 4, 5))),
        ("words", np.array([["a"]])),
    ):
        np.save(tmp_path / f"{name}.npy", arr)
        with pytest.raises(DatasetError, match=r"a \.npy dataset must be"):
            Dataset.from_path(tmp_path / f"{name}.npy")
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="cannot read"):
        Dataset.from_path(tmp_path / "objects.npy")
    with pytest.raises(DatasetError, match="no depth"):
        Dataset.from_path(tmp_path / "rgb.npy", modalities=("depth",))
