"""Hole masks of interpolated sequences are a registered kind: the loader reads them, `convert` carries them
both ways (never a path to a file it did not write), `validate` checks they exist and decode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic_scenes as S

from camsim import transforms
from camsim.convert import img_to_npy, npy_to_img
from camsim.fileio import read_image, write_image
from camsim.interpolate import interpolate_sequence
from camsim.loader import Dataset
from camsim.passes import HOLE_MASK
from camsim.validate import validate_dataset

SCENE = S.TWO_LAYERS


@pytest.fixture
def interpolated(tmp_path):
    """An interpolated sequence (x2 of 3 frames) whose first mask has a known hole."""
    S.write_sequence(tmp_path / "src", SCENE, 3, first_number=4)
    meta = interpolate_sequence(tmp_path / "src", tmp_path / "x2", 2, workers=1)
    first = next(fr for fr in meta["frames"] if fr["interpolated"])
    mask = np.zeros((SCENE.h, SCENE.w), np.uint8)
    mask[5:9, 3:17] = 255
    write_image(tmp_path / "x2" / first[HOLE_MASK.key], mask)
    return tmp_path / "x2"


def _masks(root):
    """{frame_number: mask PNG bytes} of every frame that lists a hole mask file."""
    meta = transforms.read(root)
    return {
        fr["frame_number"]: transforms.resolve_path(root, fr[HOLE_MASK.key]).read_bytes()
        for fr in meta["frames"]
        if HOLE_MASK.key in fr
    }


def test_the_loader_reads_hole_masks_and_source_frames_have_none(interpolated):
    ds = Dataset.from_path(interpolated)
    assert "hole_mask" in ds.modalities()
    meta = ds.meta
    for i, fr in enumerate(meta["frames"]):
        mask = ds[i]["hole_mask"]
        assert mask.dtype == np.bool_ and mask.shape == (SCENE.h, SCENE.w)
        if not fr["interpolated"]:
            assert not mask.any()  # a source frame: nothing is missing
        else:
            png = read_image(interpolated / fr[HOLE_MASK.key])
            np.testing.assert_array_equal(mask, png > 127)
    assert ds[1]["hole_mask"][5:9, 3:17].all()


def test_convert_img_to_npy_and_back_keeps_valid_hole_masks(interpolated, tmp_path):
    npy = img_to_npy(interpolated, tmp_path / "npy")
    meta = json.loads((npy / "transforms.json").read_text())
    assert meta[HOLE_MASK.key] == "masks.npy"
    assert not any(HOLE_MASK.key in fr for fr in meta["frames"])  # no path to a file it did not write
    assert validate_dataset(npy).ok
    a, b = Dataset.from_path(interpolated), Dataset.from_path(npy)
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i]["hole_mask"], b[i]["hole_mask"])

    img = npy_to_img(npy, tmp_path / "img")
    assert validate_dataset(img).ok
    assert _masks(img) == _masks(interpolated)  # the same frames hold masks, byte for byte
    back = transforms.read(img)["frames"]
    assert [HOLE_MASK.key in fr for fr in back] == [fr["interpolated"] for fr in back]


def test_validate_flags_a_missing_or_unlisted_hole_mask(interpolated):
    assert validate_dataset(interpolated).ok
    meta = transforms.read(interpolated)
    first = next(fr for fr in meta["frames"] if fr["interpolated"])
    path = transforms.resolve_path(interpolated, first[HOLE_MASK.key])
    path.unlink()
    rep = validate_dataset(interpolated)
    assert not rep.ok
    assert [(p.path, p.kind) for p in rep.problems] == [(path, "missing")]

    write_image(path, np.zeros((SCENE.h, SCENE.w), np.uint8))
    del first[HOLE_MASK.key]  # an interpolated frame that lists no mask, its file left behind
    transforms.write(interpolated / "transforms.json", meta)
    kinds = sorted(p.kind for p in validate_dataset(interpolated).problems)
    assert kinds == ["schema", "unlisted"]


def test_validate_flags_a_hole_mask_of_the_wrong_size(interpolated):
    meta = transforms.read(interpolated)
    first = next(fr for fr in meta["frames"] if fr["interpolated"])
    write_image(interpolated / first[HOLE_MASK.key], np.zeros((SCENE.h, SCENE.w + 2), np.uint8))
    problems = validate_dataset(interpolated).problems
    assert [p.kind for p in problems] == ["corrupted"] and "hole_mask is" in problems[0].message


def test_validate_flags_hole_masks_an_npy_sequence_lists_but_does_not_hold(interpolated, tmp_path):
    """What `convert img-to-npy` wrote before hole masks were a registered kind: per-frame paths to masks it
    never copied."""
    npy = img_to_npy(interpolated, tmp_path / "npy")
    meta = transforms.read(npy)
    del meta[HOLE_MASK.key]
    source = transforms.read(interpolated)["frames"]
    for fr, src in zip(meta["frames"], source, strict=True):
        if HOLE_MASK.key in src:
            fr[HOLE_MASK.key] = src[HOLE_MASK.key]
    transforms.write(npy / "transforms.json", meta)
    (npy / "masks.npy").unlink()
    rep = validate_dataset(npy)
    missing = {p.path.name for p in rep.problems if p.kind == "missing"}
    assert missing == {
        transforms.resolve_path(npy, s[HOLE_MASK.key]).name for s in source if HOLE_MASK.key in s
    }
