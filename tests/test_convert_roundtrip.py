"""IMG -> NPY -> IMG is lossless, with and without bit-packing."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic_plane

from camsim.convert import convert_tree, img_to_npy, npy_to_img
from camsim.errors import UserInputError
from camsim.fileio import read_exr, read_image
from camsim.loader import Dataset

plane_sequence = synthetic_plane.plane_sequence  # fixture


def _assert_same_files(a_root, b_root, frame_scale=1):
    """Same files, names and values; `frame_scale`: b's frames are a's times this (binary 0/1 -> 0/255)."""
    a, b = Dataset.from_path(a_root), Dataset.from_path(b_root)
    assert len(a) == len(b)
    for i in range(len(a)):
        for name in a.modalities():
            fa, fb = a.file_for(name, i), b.file_for(name, i)
            assert fa.name == fb.name
            if fa.suffix == ".png":
                x, y = read_image(fa), read_image(fb)
            else:
                x, y = read_exr(fa), read_exr(fb)
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x * (frame_scale if name == "frame" else 1), y)
        np.testing.assert_array_equal(a[i]["pose"], b[i]["pose"])
        assert a[i]["time"] == b[i]["time"]


def test_convert_img_npy_img_is_lossless(plane_sequence, tmp_path):
    src = plane_sequence()
    npy = img_to_npy(src, tmp_path / "npy")
    assert np.load(npy / "frames.npy").shape == (5, 12, 16, 3)
    assert np.load(npy / "depths.npy").shape == (5, 12, 16, 1)
    assert np.load(npy / "segmentations.npy").dtype == np.uint32
    back = npy_to_img(npy, tmp_path / "img")
    _assert_same_files(src, back)


@pytest.mark.parametrize("dim", [0, 1, 2, 3])
def test_convert_bitpacked_round_trip_is_lossless(plane_sequence, tmp_path, dim):
    src = plane_sequence(binary=True, n=11)
    npy = img_to_npy(src, tmp_path / "npy", bitpack=True, bitpack_dim=dim)
    packed = np.load(npy / "frames.npy")
    assert packed.dtype == np.uint8
    if dim != 3:  # packing the single channel axis saves nothing
        assert packed.size < 11 * 12 * 16 / 4  # about 8x smaller than one byte per pixel
    ds = Dataset.from_path(npy)
    for i in range(len(ds)):
        np.testing.assert_array_equal(
            ds[i]["frame"][..., 0], read_image(src / f"frames/frame_{10 + i:06d}.png")
        )
    back = npy_to_img(npy, tmp_path / "img")
    _assert_same_files(src, back, frame_scale=255)  # binary PNGs come back as 0/255
    again = img_to_npy(back, tmp_path / "npy2", bitpack=True, bitpack_dim=dim)
    assert (again / "frames.npy").read_bytes() == (npy / "frames.npy").read_bytes()


def test_convert_npy_to_img_writes_spad_binary_frames_as_0_and_255(tmp_path):
    """A SPAD dataset's bit-packed detections become PNGs of 0 and 255 (visible), one per detection bit."""
    from synthetic_sensors import constant_frames, write_sequence

    from camsim.emulate import SpadConfig, emulate_spad, unpack_frames

    seq = write_sequence(tmp_path / "seq", constant_frames(0.4, 6, 11, 3), np.arange(3) / 30.0)
    spad = emulate_spad(seq, tmp_path / "spad", SpadConfig(frames_per_input=4, seed=1))
    bits = unpack_frames(spad)
    assert 0.2 < bits.mean() < 0.8  # both values present
    img = npy_to_img(spad, tmp_path / "img")
    ds = Dataset.from_path(img)
    assert len(ds) == len(bits) == 12
    for i in range(len(ds)):
        png = read_image(ds.file_for("frame", i))
        assert png.dtype == np.uint8 and set(np.unique(png)) <= {0, 255}
        np.testing.assert_array_equal(png, bits[i, ..., 0] * 255)
    back = img_to_npy(img, tmp_path / "npy", bitpack=True)
    np.testing.assert_array_equal(unpack_frames(back), bits)


def test_convert_bitpack_refuses_non_binary_frames(plane_sequence, tmp_path):
    with pytest.raises(UserInputError, match="binary"):
        img_to_npy(plane_sequence(), tmp_path / "npy", bitpack=True)


def test_convert_tree_mirrors_a_folder_of_sequences(plane_sequence, tmp_path):
    plane_sequence("ds/s/a", n=2)
    plane_sequence("ds/s/b", n=3)
    out = convert_tree(tmp_path / "ds", tmp_path / "npy", img_to_npy)
    assert [p.relative_to(tmp_path / "npy").as_posix() for p in out] == ["s/a", "s/b"]
    assert len(Dataset.from_path(tmp_path / "npy")) == 5


def test_convert_refuses_wrong_direction_and_existing_output(plane_sequence, tmp_path):
    src = plane_sequence()
    with pytest.raises(UserInputError, match="not an NPY"):
        npy_to_img(src, tmp_path / "x")
    npy = img_to_npy(src, tmp_path / "npy")
    with pytest.raises(UserInputError, match="already"):
        img_to_npy(npy, tmp_path / "y")
    with pytest.raises(UserInputError, match="overwrite"):
        img_to_npy(src, npy)


def test_convert_carries_objects_json_and_result_validates(plane_sequence, tmp_path):
    """objects.json (rigid objects' matrices) describes the same frames after a lossless conversion."""
    import json

    from camsim import transforms
    from camsim.validate import validate_dataset

    src = plane_sequence()
    meta = transforms.read(src)
    record = {"format": "camsim-objects/1", "objects": {},
              "frames": [{"frame_number": f.get("frame_number", i), "matrix_world": {}} for i, f in enumerate(meta["frames"])]}  # fmt: skip
    (src / "objects.json").write_text(json.dumps(record))
    transforms.write(src / "transforms.json", {**meta, "objects_file_path": "objects.json"})
    npy = img_to_npy(src, tmp_path / "npy")
    back = npy_to_img(npy, tmp_path / "img")
    for root in (npy, back):
        assert json.loads((root / "objects.json").read_text()) == record
        assert validate_dataset(root).ok
