"""End to end: plant damage in a dataset from `create-datasets`, find it, purge it, resume, pass again."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from filestate import stamp

from camsim.validate import validate_dataset

CREATE = [
    "--sequences-per-scene", "3", "--num-frames", "3", "--anim-start", "1", "--anim-end", "30",
    "--render-config.width", "32", "--render-config.height", "24", "--render-config.max-samples", "4",
    "--render-config.no-debug", "--render-config.threads", "2",
]  # fmt: skip


def camsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camsim", *args], capture_output=True, text=True, timeout=600
    )


def _snapshot(root):
    return {p: (stamp(p), p.read_bytes()) for p in root.rglob("*") if p.is_file() and p.suffix != ".json"}


@pytest.mark.blender
def test_validate_repair_purge_then_allow_skips_rerenders_exactly_the_damage(demo_scenes, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(demo_scenes[0], scenes)
    data = tmp_path / "data"
    r = camsim("create-datasets", "--scenes-dir", str(scenes), "--datasets-dir", str(data), *CREATE)
    assert r.returncode == 0, r.stderr
    renders = data / "renders"
    first = validate_dataset(renders)
    assert first.ok and len(first.sequences) == 3, first.problems
    a, b, c = (s.path for s in first.sequences)

    truncated = sorted((a / "depths").iterdir())[1]
    truncated.write_bytes(truncated.read_bytes()[:200])
    missing = sorted((b / "frames").iterdir())[2]
    missing.unlink()
    (c / "transforms.json").write_text('{"frames": "not a list"}')
    before = _snapshot(renders)

    r = camsim("validate", str(renders))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any(line.startswith("CORRUPTED") and truncated.name in line for line in lines), r.stdout
    assert any(line.startswith("MISSING") and missing.name in line for line in lines), r.stdout
    assert any(line.startswith("SCHEMA") and str(c / "transforms.json") in line for line in lines), r.stdout

    r = camsim("validate", str(renders), "--purge")
    assert r.returncode == 1 and not truncated.exists()
    assert not any((s / "transforms.json").exists() for s in (a, b, c))

    r = camsim(
        "create-datasets", "--scenes-dir", str(scenes), "--datasets-dir", str(data), "--allow-skips", *CREATE
    )
    assert r.returncode == 0, r.stderr
    after = _snapshot(renders)
    assert truncated in after and missing in after
    number = lambda p: p.stem.split("_")[-1]  # noqa: E731
    # Only the damaged frame of each damaged sequence may be rendered again (all its passes).
    redone = {(a, number(truncated)), (b, number(missing))}
    for path, (written, content) in before.items():
        if (path.parent.parent, number(path)) not in redone:
            assert after[path] == (written, content), f"{path} was rewritten"

    r = camsim("validate", str(renders), "--consistency")
    assert r.returncode == 0, r.stdout + r.stderr
