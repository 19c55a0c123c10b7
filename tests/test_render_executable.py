"""`--render-config.executable`: workers started through Blender's command line run the same service.

This test needs no Blender binary: the executable is a small launcher that takes Blender's own
command line (`--background --factory-startup --python SCRIPT -- ...`) and runs SCRIPT with the `bpy`
module, exactly as `blender` would run it. What is under test is camsim's side: the command line it
builds, the argument hand-over after `--`, and that the service needs nothing from camsim. With a real
Blender on PATH, `make test` also runs the analytic ground-truth tests on it (CAMSIM_TEST_BLENDER).
"""

from __future__ import annotations

import stat
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
