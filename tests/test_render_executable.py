"""`--render-config.executable`: workers started through Blender's command line run the same service.

This test needs no Blender binary: the executable is a small launcher that takes Blender's own
command line (`--background --factory-startup --python SCRIPT -- ...`) and runs SCRIPT with the `bpy`
module, exactly as `blender` would run it. What is under test is camsim's side: the command line it
builds, the argument hand-over after `--`, and that the service needs nothing from camsim. With a real
Blender on PATH, `make test` also runs the analytic ground-truth tests on it (CAMSIM_TEST_BLENDER).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FAST

import camsim
from camsim import transforms
from camsim.blender.worker import BlenderWorker, options_from_config
from camsim.jobs import SequenceJob
from camsim.render import render_sequence

pytestmark = pytest.mark.blender

LAUNCHER = textwrap.dedent(
    """
    import runpy, sys
    args = sys.argv[1:]
    assert args[:2] == ["--background", "--factory-startup"], args
    assert args[2] in ("--enable-autoexec", "--disable-autoexec"), args
    assert args[3] == "--python", args
    script = args[4]
    sys.argv = ["blender", *args]           # Blender leaves its own arguments in sys.argv
    sys.path = [p for p in sys.path if p not in ("", SRC)]  # camsim's source folder is not on the path
    sys.modules["camsim"] = None  # and `import camsim` fails, as in a real Blender (editable installs use hooks)
    runpy.run_path(script, run_name="__main__")
    """
)


def test_installed_blender_command_line_runs_the_service(build_scene, tmp_path):
    launcher = tmp_path / "launcher.py"
    src = str(Path(camsim.__file__).resolve().parents[1])  # the folder holding the camsim package
    launcher.write_text(LAUNCHER.replace("SRC)", f"{src!r})"))
    exe = tmp_path / "blender"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -I {launcher} "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    config = FAST.replace(executable=exe, log_dir=tmp_path / "logs").validate()
    blend = build_scene("exe", kind="point")
    with BlenderWorker(options_from_config(config, "exe")) as worker:
        assert worker.blender_version.startswith("5.")
        render_sequence(worker, SequenceJob(blend, tmp_path / "out", config, 1, 2))
    meta = transforms.read(tmp_path / "out")
    assert [f["frame_number"] for f in meta["frames"]] == [1, 2]


def _installed_blender() -> tuple[str, tuple[int, int]] | None:
    """`blender` on PATH and its (major, minor), from `blender --version`."""
    exe = shutil.which("blender")
    if exe is None:
        return None
    got = re.search(
        r"Blender (\d+)\.(\d+)", subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    )
    return (exe, (int(got[1]), int(got[2]))) if got else None


def test_a_file_saved_by_a_newer_blender_is_refused_in_one_line_naming_both(demo_scenes, tmp_path):
    installed = _installed_blender()
    # bpy saved the demo scenes
    saved = tuple(int(v) for v in importlib.metadata.version("bpy").split(".")[:2])
    if installed is None or installed[1] >= saved:
        pytest.skip(
            "needs an installed Blender older than bpy on PATH (Debian's blender 3.4: apt install blender)"
        )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "camsim", "render-animation", str(demo_scenes[0]), str(out), "--frame-start", "1",
           "--frame-end", "1", "--render-config.width", "32", "--render-config.height", "24",
           "--render-config.executable", installed[0], "--render-config.log-dir", str(tmp_path / "logs")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("camsim: error:"), proc.stderr
    # Blender itself says only "not a blend file"
    assert f"saved by Blender {saved[0]}.{saved[1]}," in lines[0], lines[0]
    assert f"this Blender {installed[1][0]}.{installed[1][1]}" in lines[0], lines[0]
    assert not (out / "transforms.json").exists()
