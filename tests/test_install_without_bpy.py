"""camsim without bpy: a fresh Python 3.12 venv with the project pip-installed (bpy installs on 3.11 only)
reads, validates, converts, previews, interpolates, exports and emulates a dataset rendered here (bpy),
and `render-animation` there says in one line how to get a Blender, or renders with an installed one.

The venv is made anew for the module from a copy of the project's source (pyproject.toml, README, src/), as
a user's `pip install` would; pip's own cache makes a rerun take seconds to tens of seconds. Skipped, with the
reason, where no Python 3.12 exists (set CAMSIM_TEST_PYTHON312 to one, or install it with pyenv).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST

from camsim import transforms
from camsim.blender.worker import WorkerOptions
from camsim.loader import Dataset
from camsim.scenes import make_scenes
from camsim.validate import validate_dataset

pytestmark = pytest.mark.blender  # the dataset is rendered here, with bpy

ROOT = Path(__file__).resolve().parent.parent
TINY = FAST.replace(width=32, height=24, linear=True)


def _python312() -> str | None:
    """A Python 3.12 interpreter: CAMSIM_TEST_PYTHON312, python3.12 on PATH, or one installed by pyenv."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [
        os.environ.get("CAMSIM_TEST_PYTHON312"),
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.join(pyenv, "versions", "3.12*", "bin", "python3.12")), reverse=True),
    ]
    for exe in filter(None, candidates):
        try:  # a pyenv shim exists for versions that are not selected: ask the interpreter itself
            got = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                 text=True, timeout=30)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if got.returncode == 0 and got.stdout.strip() == "(3, 12)":
            return exe
    return None


@dataclass
class Venv:
    root: Path

    def python(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CAMSIM_LOG": "WARNING", "COLUMNS": "200"}
        env.pop("PYTHONPATH", None)
        return subprocess.run([str(self.root / "bin" / "python"), *args], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=self.root)  # fmt: skip

    def camsim(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.python("-m", "camsim", *args)

    def ok(self, *args: str) -> str:
        proc = self.camsim(*args)
        assert proc.returncode == 0, f"camsim {' '.join(args)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def venv312(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    python = _python312()
    if python is None:
        pytest.skip(
            "no Python 3.12 here (CAMSIM_TEST_PYTHON312, python3.12 on PATH, pyenv): nothing to install into"
        )
    root = tmp_path_factory.mktemp("py312")
    source = root / "source"  # what an sdist holds; no build files land in the working tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = Venv(root / "venv")
    subprocess.run([python, "-m", "venv", str(venv.root)], check=True, timeout=120)
    proc = venv.python("-m", "pip", "install", "-q", str(source), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def rendered(render, demo_scenes) -> Path:  # type: ignore[no-untyped-def]
    """Four tiny frames of a demo scene with every ground truth and linear light, rendered here with bpy."""
    return render(demo_scenes[0], "no-bpy-source", config=TINY, frame_start=1, frame_end=4)


LOAD = textwrap.dedent(
    """
    import sys, numpy as np
    from camsim.dataset import Dataset
    ds = Dataset.from_path(sys.argv[1])
    arrays = {f"{i}/{k}": np.asarray(v) for i, item in enumerate(ds) for k, v in item.items()
              if k not in ("sequence",)}
    np.savez(sys.argv[2], **arrays)
    """
)


def _items_here(path: Path) -> dict[str, np.ndarray]:
    ds = Dataset.from_path(path)
    return {
        f"{i}/{k}": np.asarray(v) for i, item in enumerate(ds) for k, v in item.items() if k != "sequence"
    }


def _assert_same_items(npz: Path, want: dict[str, np.ndarray]) -> None:
    with np.load(npz) as got:
        assert sorted(got.files) == sorted(want)
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_a_fresh_python_312_install_has_no_bpy_and_reads_a_rendered_dataset(venv312, rendered, tmp_path):
    assert venv312.python("-c", "import bpy").returncode != 0  # bpy installs on Python 3.11 only
    version = venv312.python("-c", "import numpy, sys; print(sys.version_info[:2], numpy.__version__)")
    assert version.stdout.startswith("(3, 12)"), version.stdout + version.stderr

    venv312.ok("validate", str(rendered))  # exit code 0: no problem found
    info = venv312.ok("info", str(rendered))
    assert "depth" in info and "flow" in info, info

    # The loader there returns what the loader here returns, item for item.
    want = _items_here(rendered)
    assert {"0/frame", "0/depth", "0/normal", "0/flow", "0/segmentation", "0/pose", "0/K"} <= set(want)
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    proc = venv312.python(str(script), str(rendered), str(tmp_path / "items.npz"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_items(tmp_path / "items.npz", want)

    # convert both ways: the arrays written there hold exactly the frames here.
    venv312.ok("convert", "img-to-npy", str(rendered), str(tmp_path / "npy"))
    np.testing.assert_array_equal(
        np.load(tmp_path / "npy" / transforms.read(tmp_path / "npy")["file_path"]),
        np.stack([want[f"{i}/frame"] for i in range(4)]),
    )
    venv312.ok("convert", "npy-to-img", str(tmp_path / "npy"), str(tmp_path / "img"))
    assert validate_dataset(tmp_path / "img").ok

    venv312.ok("preview", str(rendered), str(tmp_path / "preview"))
    assert any((tmp_path / "preview").rglob("*.mp4"))

    venv312.ok("interpolate", str(rendered), str(tmp_path / "x2"), "--factor", "2")
    assert len(transforms.read(tmp_path / "x2")["frames"]) == 7
    assert validate_dataset(tmp_path / "x2").ok  # what it wrote there is sound here

    venv312.ok("export", "nerfstudio", str(rendered), str(tmp_path / "nerfstudio"))
    assert (tmp_path / "nerfstudio" / "transforms.json").is_file()

    for sensor in ("spad", "rgb", "events", "imu"):
        venv312.ok("emulate", sensor, str(rendered), str(tmp_path / sensor))
    assert len(Dataset.from_path(tmp_path / "spad")) == 4
    assert len(Dataset.from_path(tmp_path / "rgb")) == 4


def test_render_animation_without_blender_says_how_to_get_one(venv312, demo_scenes, tmp_path):
    out = tmp_path / "out"
    proc = venv312.camsim("render-animation", str(demo_scenes[0]), str(out), "--frame-start", "1",
                          "--frame-end", "1")  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("camsim: error:"), proc.stderr
    assert "bpy" in lines[0] and "Python 3.11" in lines[0], lines[0]  # the one remedy
    assert "--render-config.executable /path/to/blender" in lines[0], lines[0]  # and the other
    assert not out.exists()  # nothing created


def test_render_animation_with_an_installed_blender_renders(venv312, tmp_path):
    blender = shutil.which("blender")
    if blender is None:
        pytest.skip(
            "no `blender` on PATH: rendering from Python 3.12 with --render-config.executable is untested"
        )
    # The scene is saved by that Blender: an older one (Debian's 3.4) cannot read files saved by bpy 5.
    options = WorkerOptions(executable=Path(blender), log_dir=tmp_path / "logs", name="installed-scene")
    scene = make_scenes(tmp_path / "scenes", 1, seed=0, options=options)[0]
    out = tmp_path / "out"
    venv312.ok("render-animation", str(scene), str(out), "--frame-start", "1", "--frame-end", "2",
               "--render-config.width", "32", "--render-config.height", "24", "--render-config.max-samples", "2",
               "--render-config.executable", blender, "--render-config.log-dir", str(tmp_path / "logs"))  # fmt: skip
    meta = json.loads((out / "transforms.json").read_text())
    assert [f["frame_number"] for f in meta["frames"]] == [1, 2]
    assert validate_dataset(out).ok
