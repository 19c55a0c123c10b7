"""Paths written in transforms.json cannot make a reader open files outside the dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from camsim import transforms
from camsim.errors import DatasetError
from camsim.loader import Dataset

EYE = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
ESCAPES = ["../secret.png", "frames/../../secret.png", "/etc/passwd", "//server/share/x.png", "C:/x.png",
           "..\\secret.png", "frames\\..\\..\\secret.png", "a/./../../secret.png"]  # fmt: skip


def _sequence(root: Path, frame: dict[str, object], top: dict[str, object] | None = None) -> Path:
    seq = root / "dataset" / "seq"
    seq.mkdir(parents=True)
    meta = {"fl_x": 10.0, "fl_y": 10.0, "cx": 4.0, "cy": 3.0, "w": 8, "h": 6,
            "frames": [{"transform_matrix": EYE, **frame}], **(top or {})}  # fmt: skip
    (seq / "transforms.json").write_text(json.dumps(meta))
    # Something worth stealing right outside the dataset.
    (root / "secret.png").write_bytes(b"not yours")
    return seq


@pytest.mark.parametrize("rel", ESCAPES)
@pytest.mark.parametrize("key", ["file_path", "depth_file_path", "flow_file_path"])
def test_escaping_frame_paths_are_rejected_by_reader_and_loader(rel: str, key: str, tmp_path: Path) -> None:
    seq = _sequence(tmp_path, {"file_path": "frames/frame_000001.png", key: rel})
    with pytest.raises(DatasetError, match="escapes the dataset folder"):
        transforms.read(seq)
    with pytest.raises(DatasetError, match="escapes the dataset folder"):
        Dataset.from_path(seq)
    with pytest.raises(DatasetError, match="escapes the dataset folder"):
        Dataset.from_path(tmp_path / "dataset")  # a folder of sequences


@pytest.mark.parametrize("rel", ESCAPES)
def test_escaping_npy_paths_are_rejected(rel: str, tmp_path: Path) -> None:
    np.save(tmp_path / "frames.npy", np.zeros((1, 6, 8, 3), np.uint8))
    seq = _sequence(tmp_path, {}, {"file_path": rel})
    with pytest.raises(DatasetError, match="escapes the dataset folder"):
        Dataset.from_path(seq)


@pytest.mark.parametrize("rel", ESCAPES)
def test_resolve_path_refuses_escapes(rel: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        transforms.resolve_path(tmp_path, rel)


def test_paths_inside_the_folder_resolve(tmp_path: Path) -> None:
    assert (
        transforms.resolve_path(tmp_path, "frames/frame_000001.png")
        == tmp_path / "frames" / "frame_000001.png"
    )
    assert transforms.resolve_path(tmp_path, "./a/b.exr") == tmp_path / "a" / "b.exr"


def test_symbolic_link_out_of_the_dataset_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    root = tmp_path / "dataset"
    root.mkdir()
    (root / "frames").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DatasetError, match="outside"):
        transforms.resolve_path(root, "frames/secret.png")
