"""Scripts embedded in a .blend file do not run unless --render-config.autoexec is given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from camsim.blender.worker import BlenderWorker

TESTS = Path(__file__).parent
pytestmark = pytest.mark.blender

TINY = ["--render-config.width", "16", "--render-config.height", "12", "--render-config.max-samples", "1",
        "--render-config.device-type", "cpu", "--render-config.no-debug"]  # fmt: skip


@pytest.fixture(scope="module")
def autorun_scene(worker: BlenderWorker, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("autorun")
    marker = folder / "MARKER"
    scene = folder / "scenes" / "autorun.blend"
    scene.parent.mkdir()
    worker.build_scene(TESTS / "scenes" / "autorun.py", scene, marker=str(marker))
    assert not marker.exists()
    return scene, marker


def _camsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAMSIM_LOG": "WARNING"}
    return subprocess.run([sys.executable, "-m", "camsim", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)  # fmt: skip


def test_embedded_script_does_not_run_by_default(autorun_scene: tuple[Path, Path], tmp_path: Path) -> None:
    scene, marker = autorun_scene
    done = _camsim("render-animation", str(scene), str(tmp_path / "out"), *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = _camsim("create-datasets", "--scenes-dir", str(scene.parent), "--datasets-dir", str(tmp_path / "ds"),
                   *TINY, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "transforms.json").is_file()
    assert not marker.exists(), "a script embedded in the .blend ran without --render-config.autoexec"


def test_embedded_script_runs_with_autoexec(autorun_scene: tuple[Path, Path], tmp_path: Path) -> None:
    scene, marker = autorun_scene
    try:
        done = _camsim("render-animation", str(scene), str(tmp_path / "out"), *TINY, "--render-config.autoexec",
                       cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert marker.read_text() == "ran"
    finally:
        marker.unlink(missing_ok=True)
