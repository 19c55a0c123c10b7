"""What a sequence folder holds decides what a run may do: refuse, resume the same render, or overwrite."""

from __future__ import annotations

import json

import pytest

from camsim.config import RenderConfig
from camsim.errors import UserInputError
from camsim.resume import (
    RECORD_FILE,
    RenderRecord,
    Reuse,
    check_folder,
    clear_outputs,
    difference,
    settings_hash,
)


def record(**changes) -> RenderRecord:
    return RenderRecord("a.blend", 1, 10, json.loads(json.dumps(RenderConfig(**changes).render_settings())))


def test_the_hash_covers_what_changes_pixels_and_not_how_the_run_executes():
    base = record()
    assert settings_hash(base.render) == settings_hash(record(jobs=4, threads=3, timeout=5.0).render)
    assert settings_hash(base.render) == settings_hash(record(device_type="optix", strict=True).render)
    for change in ({"width": 64}, {"max_samples": 3}, {"normals": False}, {"keyframe_multiplier": 2.0},
                   {"exr_codec": "piz"}, {"linear": True}):  # fmt: skip
        assert settings_hash(record(**change).render) != settings_hash(base.render), change


def test_the_difference_names_the_setting_in_flag_form():
    assert difference(record(width=64), record(width=64)) is None
    assert difference(record(width=64), record(width=128)) == "--render-config.width=64 (this run: 128)"
    two = difference(record(width=64, max_samples=4), record(width=128, max_samples=8))
    assert two is not None and two.endswith("and 1 more setting")
    assert (
        difference(record(), RenderRecord("a.blend", 1, 5, record().render))
        == "frames 1..10 (this run: 1..5)"
    )
    assert "scene file" in (difference(record(), RenderRecord("b.blend", 1, 10, record().render)) or "")
    older = RenderRecord(
        "a.blend", 1, 10, {k: v for k, v in record().render.items() if k != "depth_of_field"}
    )
    assert difference(older, record()) is None  # an older camsim did not record it: not compared


def test_check_folder_refuses_resumes_and_overwrites(tmp_path):
    seq = tmp_path / "seq"
    check_folder(seq, record(), Reuse())  # nothing there: fine
    (seq / "frames").mkdir(parents=True)
    (seq / "frames" / "frame_000001.png").write_bytes(b"x")
    with pytest.raises(UserInputError, match="without a record"):
        check_folder(seq, record(), Reuse(resume=True))
    (seq / RECORD_FILE).write_text(json.dumps(record(width=64).to_json()))
    with pytest.raises(
        UserInputError, match=r"already holds a render of a\.blend frames 1\.\.10; pass --allow-skips"
    ):
        check_folder(seq, record(width=64), Reuse())
    with pytest.raises(UserInputError, match=r"--render-config.width=64 \(this run: 128\)"):
        check_folder(seq, record(width=128), Reuse(resume=True))
    check_folder(seq, record(width=64), Reuse(resume=True))
    check_folder(seq, record(width=128), Reuse(overwrite=True))
    (seq / "notes.txt").write_text("mine")
    clear_outputs(seq)
    assert sorted(p.name for p in seq.iterdir()) == ["notes.txt"]  # only what a render writes is removed
