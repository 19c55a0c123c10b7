"""What camsim does with scene features it cannot render as authored: refuse, adjust, or warn and record.

(The exactness of what it does render is proven against the ray-casting oracle in test_render_zoo.py.)
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import FAST, TESTS

from camsim import transforms
from camsim.errors import SceneError
from camsim.fileio import read_exr, read_image
from camsim.jobs import SequenceJob
from camsim.render import render_sequence
from camsim.resume import Reuse

pytestmark = pytest.mark.blender  # renders with the shared Blender worker

ZOO = TESTS / "scenes" / "zoo.py"


@pytest.fixture(scope="module")
def zoo(build_scene, tmp_path_factory):
    made: dict[str, object] = {}

    def _get(kind: str):
        if kind not in made:
            path = tmp_path_factory.mktemp(f"zoo-{kind}") / f"{kind}.blend"
            made[kind] = build_scene(kind, script=ZOO, kind=kind, path=str(path))
        return made[kind]

    return _get


def test_strict_fails_a_scene_with_warnings_and_plain_run_records_them(zoo, render, worker, tmp_path):
    blend = zoo("missing_files")
    out = render(blend, "warned", frame_start=1, frame_end=1)
    meta = transforms.read(out)
    assert any("missing library" in w for w in meta["warnings"])
    assert any("missing texture" in w for w in meta["warnings"])
    with pytest.raises(SceneError, match=r"missing .*--render-config.strict"):
        render_sequence(worker, SequenceJob(scene=blend, output=tmp_path / "strict", settings=FAST.replace(strict=True),
                                            frame_start=1, frame_end=1))  # fmt: skip
    assert not (tmp_path / "strict" / "transforms.json").exists()


def test_unbaked_simulation_with_keyframe_multiplier_is_refused(zoo, worker, tmp_path):
    job = SequenceJob(scene=zoo("rigid_body"), output=tmp_path / "m2", settings=FAST.replace(keyframe_multiplier=2.0),
                      frame_start=20, frame_end=22)  # fmt: skip
    with pytest.raises(SceneError, match=r"unbaked simulations .*multiplier"):
        render_sequence(worker, job)


def test_simulation_frames_are_identical_when_resumed(zoo, render, worker):
    """A resumed sequence steps the simulation again from its start: a re-rendered frame equals the first."""
    cfg = FAST.replace(normals=False, flows=False, debug=False)
    out = render(zoo("rigid_body"), "rb-resume", config=cfg, frame_start=20, frame_end=22)
    meta = transforms.read(out)
    assert any("stepped frame by frame from frame 1" in a for a in meta["adjustments"])
    fr = meta["frames"][1]
    before = read_exr(out / fr["depth_file_path"]).copy()
    (out / fr["depth_file_path"]).unlink()
    (out / "transforms.json").unlink()
    render_sequence(worker, SequenceJob(scene=zoo("rigid_body"), output=out, settings=cfg, reuse=Reuse(resume=True),
                                        frame_start=20, frame_end=22))  # fmt: skip
    np.testing.assert_array_equal(read_exr(out / fr["depth_file_path"]), before)


def test_depth_of_field_is_off_by_default_and_kept_only_in_rgb_on_request(zoo, render):
    blend = zoo("dof")
    cfg = FAST.replace(width=128, height=96, max_samples=16, use_denoising=True)
    plain = render(blend, "dof-off", config=cfg, frame_start=5, frame_end=5)
    kept = render(blend, "dof-on", config=cfg.replace(depth_of_field=True), frame_start=5, frame_end=5)
    m_plain, m_kept = transforms.read(plain), transforms.read(kept)
    assert any("depth of field turned off" in a for a in m_plain["adjustments"])
    assert any("depth of field kept" in a for a in m_kept["adjustments"])
    f_plain, f_kept = m_plain["frames"][0], m_kept["frames"][0]
    for key in ("depth_file_path", "segmentation_file_path"):  # ground truth: the same pinhole render
        np.testing.assert_array_equal(read_exr(plain / f_plain[key]), read_exr(kept / f_kept[key]))
    a = read_image(plain / f_plain["file_path"]).astype(float)
    b = read_image(kept / f_kept["file_path"]).astype(float)
    # Out-of-focus silhouettes are spread over several pixels: the frames differ far more on object edges
    # than inside objects (where only the sampling noise differs).
    from scipy.ndimage import maximum_filter, minimum_filter

    seg = read_exr(plain / f_plain["segmentation_file_path"])
    edges = maximum_filter(seg, 5) != minimum_filter(seg, 5)
    diff = np.abs(a - b).mean(axis=-1)
    assert diff[edges].mean() > 3 * diff[~edges].mean(), (diff[edges].mean(), diff[~edges].mean())
    shutil.rmtree(kept)


def test_burnt_in_stamp_is_turned_off_and_frames_carry_no_metadata(zoo, render, tmp_path):
    blend = zoo("stamp")
    out = render(blend, "stamp", frame_start=1, frame_end=2)
    meta = transforms.read(out)
    assert any("stamp" in a for a in meta["adjustments"])
    again = render(blend, "stamp-again", frame_start=1, frame_end=2)
    for fr in meta["frames"]:
        data = (out / fr["file_path"]).read_bytes()
        # No text chunks: nothing of the user's folders (the .blend's path) and no dates or render times,
        # so two renders of the same frames are the same bytes (and their recorded checksums agree).
        assert b"tEXt" not in data and str(blend.parent).encode() not in data
        assert data == (again / fr["file_path"]).read_bytes()
    assert meta["checksums"] == transforms.read(again)["checksums"]
    # The frames are those of the same scene without a stamp (the "dof" zoo scene, whose depth of field camsim
    # turns off: the stamp scene is that scene with depth of field off and the stamp on).
    plain = render(zoo("dof"), "no-stamp", frame_start=1, frame_end=2)
    for fr in meta["frames"]:
        np.testing.assert_array_equal(read_image(out / fr["file_path"]), read_image(plain / fr["file_path"]))
