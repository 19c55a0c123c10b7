"""Output files get the usual permissions (0666 less the umask) without camsim touching the process umask,
which another thread creating a file at the same moment would inherit (issue 14, item 8)."""

from __future__ import annotations

import importlib
import os
import stat

import numpy as np
import pytest

import camsim.fileio


def test_files_get_0666_less_the_umask_and_the_umask_is_never_set(tmp_path, monkeypatch):
    previous = os.umask(0o027)
    try:

        def refuse(mask: int) -> int:
            raise AssertionError("camsim.fileio changed the process umask")

        monkeypatch.setattr(os, "umask", refuse)
        fileio = importlib.reload(camsim.fileio)  # importing it must not set the umask either
        fileio.write_json_atomic(tmp_path / "a.json", {"x": 1})
        fileio.write_exr(tmp_path / "b.exr", {"Y": np.zeros((4, 4), np.float32)})
        fileio.write_image(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        monkeypatch.undo()
        os.umask(previous)
        importlib.reload(camsim.fileio)
    for name in ("a.json", "b.exr", "c.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_a_failed_write_leaves_no_temporary(tmp_path):
    with pytest.raises(ZeroDivisionError), camsim.fileio.atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert list(tmp_path.iterdir()) == []
