"""The cheap whole-file check that resume runs on every listed file: cut-short files fail it, whole ones pass."""

from __future__ import annotations

import numpy as np
import pytest

from camsim.encoding import CODECS, codec_available
from camsim.fileio import looks_whole, write_exr, write_image

EXR_CODECS = [c for c in CODECS if codec_available(c)]


@pytest.mark.parametrize("codec", EXR_CODECS)
def test_exr_cut_anywhere_is_not_whole(codec, tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "a.exr"
    write_exr(path, {"R": rng.random((37, 51)).astype(np.float32), "Y": np.arange(37 * 51, dtype=np.uint32).reshape(37, 51)}, codec)  # fmt: skip
    data = path.read_bytes()
    assert looks_whole(path)
    cut = tmp_path / "cut.exr"
    for n in (len(data) - 1, len(data) - 40, len(data) // 2, 300, 60, 7, 0):
        cut.write_bytes(data[:n])
        assert not looks_whole(cut), n
    cut.write_bytes(data + b"\0" * 16)  # trailing garbage: the last chunk no longer ends the file
    assert not looks_whole(cut)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_cut_images_are_not_whole(suffix, tmp_path):
    path = tmp_path / f"a{suffix}"
    write_image(path, (np.random.default_rng(2).random((20, 30, 3)) * 255).astype(np.uint8))
    data = path.read_bytes()
    assert looks_whole(path)
    for n in (len(data) - 1, len(data) // 2, 3):
        path.write_bytes(data[:n])
        assert not looks_whole(path), n


def test_npy_sizes_and_missing_files(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((3, 4, 5), np.float32))
    data = path.read_bytes()
    assert looks_whole(path)
    path.write_bytes(data[:-1])
    assert not looks_whole(path)
    assert not looks_whole(tmp_path / "missing.png")
    (tmp_path / "empty.json").write_bytes(b"")
    assert not looks_whole(tmp_path / "empty.json")
    assert not looks_whole(tmp_path)  # a folder is not a file
