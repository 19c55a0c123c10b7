"""--consistency on real renders: tiny error on a static demo sequence, and a corrupted flow is caught."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from camsim.config import RenderConfig
from camsim.fileio import read_exr, write_exr
from camsim.validate import validate_dataset

STATIC = RenderConfig(
    width=32,
    height=24,
    max_samples=4,
    adaptive_threshold=0.0,
    use_denoising=False,
    threads=2,
    debug=False,
    use_animations=False,
)


@pytest.fixture(scope="module")
def static_demo(render, demo_scenes):
    return render(demo_scenes[1], "static-demo", config=STATIC, frame_start=1, frame_end=5)


@pytest.mark.blender
def test_validate_consistency_under_a_tenth_of_a_pixel_on_a_static_demo(static_demo):
    rep = validate_dataset(static_demo, consistency=True)
    assert rep.ok, rep.problems
    c = rep.sequences[0].consistency
    assert c is not None and c.pairs == 4
    assert c.epe < 0.1 and c.static_fraction > 0.9 and c.cycle_median < 0.1


@pytest.mark.blender
def test_validate_consistency_flags_corrupted_flow_of_a_render(static_demo, tmp_path):
    seq = shutil.copytree(static_demo, tmp_path / "seq")
    path = sorted((seq / "flows").iterdir())[2]
    f = read_exr(path, tuple("RGBA"))
    f[..., 0] *= 1.5  # flow 50% too long in x
    f[..., 1] += 0.8
    write_exr(path, {c: f[..., j] for j, c in enumerate("RGBA")})
    # The checksum recorded at render time catches the edit first; without it (a dataset from elsewhere, or
    # one whose transforms.json was rewritten with the edit) the geometry still gives it away.
    rep = validate_dataset(seq)
    assert [(p.kind, p.path.name, "checksum" in p.message) for p in rep.problems] == [
        ("corrupted", path.name, True)
    ]
    meta = json.loads((seq / "transforms.json").read_text())
    del meta["checksums"]
    (seq / "transforms.json").write_text(json.dumps(meta))
    rep = validate_dataset(seq, consistency=True)
    assert not rep.ok
    assert [(p.kind, p.path.name) for p in rep.problems] == [("inconsistent", path.name)]
    assert rep.sequences[0].status == "corrupted"
    assert not np.isnan(rep.sequences[0].consistency.epe)


@pytest.mark.blender
def test_validate_consistency_checks_a_low_resolution_animated_demo(render, demo_scenes):
    """At 32x24 the former 2 % depth-jump mask left nothing of this demo's steep floor ('no pixels with
    finite depth to check', reported as corruption); smooth inverse depth keeps it, and objects.json
    (when the renderer writes it) gives the animated objects' own motion."""
    seq = render(demo_scenes[2], "anim-demo", config=replace(STATIC, use_animations=True), frame_start=1,
                 frame_end=3)  # fmt: skip
    rep = validate_dataset(seq, consistency=True)
    assert rep.ok, rep.problems
    c = rep.sequences[0].consistency
    assert c is not None and not rep.sequences[0].warnings
    assert c.checked > 0.3 * 32 * 24 * 2 and c.epe < 0.1 and c.static_fraction > 0.9
