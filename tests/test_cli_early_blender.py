"""create-datasets starts its first Blender while it reads the command line (camsim.prestart): the run takes
that Blender (one in all for jobs=1), and a run that never needs it (bad input) leaves none behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from camsim import prestart
from camsim.blender.worker import SERVICE_SCRIPT, WorkerOptions, options_from_config
from camsim.config import RenderConfig


@pytest.fixture
def bpy_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prestart.importlib.util, "find_spec", lambda name: object())


def test_early_options_are_read_from_the_command_line(bpy_present: None) -> None:
    default = options_from_config(RenderConfig(), "worker-1")
    assert prestart.early_options(["--scenes-dir=s", "--datasets-dir=d"]) == default
    for args in (["--render-config.log-dir=/x/logs"], ["--render-config.log-dir", "/x/logs"],
                 ["--render-config.log_dir", "/x/logs"]):  # fmt: skip
        assert prestart.early_options(args) == replace(default, log_dir=Path("/x/logs"))
    got = prestart.early_options(["--render-config.executable=/opt/blender/blender"])
    assert got is not None and got.executable == Path("/opt/blender/blender")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["--config", "run.yaml"],
        ["--config=run.yaml"],
        ["--cluster=local"],
        ["--print-config"],
        ["--render-config.timeout=5"],
        ["--render-config.autoexec"],
        ["--render-config.log-dir"],  # no value: tyro will refuse it
    ],
)
def test_nothing_starts_early_where_the_command_line_does_not_tell_the_worker(
    bpy_present: None, args: list[str]
) -> None:
    assert prestart.early_options(["--scenes-dir=s", *args]) is None


def test_nothing_starts_early_without_a_blender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prestart.importlib.util, "find_spec", lambda name: None)
    assert prestart.early_options(["--scenes-dir=s"]) is None
    assert prestart.early_options(["--render-config.executable=/opt/blender/blender"]) is not None


def test_a_worker_with_other_options_is_not_taken() -> None:
    assert prestart.take(WorkerOptions(name="worker-1")) is None  # nothing was started in this process


def _services() -> set[int]:
    """PIDs of running camsim Blender services."""
    found = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(SERVICE_SCRIPT).encode() in (d / "cmdline").read_bytes():
                    found.add(int(d.name))
            except OSError:
                continue
    return found


def _create_datasets(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAMSIM_LOG": "WARNING"}
    cmd = [
        sys.executable,
        "-m",
        "camsim",
        "create-datasets",
        f"--render-config.log-dir={tmp_path / 'logs'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


@pytest.mark.blender
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to list processes")
def test_create_datasets_renders_on_the_blender_it_started_first(build_scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy2(build_scene("early_a", kind="point", frames=(1, 4)), scenes / "early_a.blend")
    before = _services()
    done = _create_datasets(tmp_path, f"--scenes-dir={scenes}", f"--datasets-dir={tmp_path / 'out'}",
                            "--sequences-per-scene=1", "--num-frames=2", "--render-config.width=32",
                            "--render-config.height=24", "--render-config.max-samples=1",
                            "--render-config.device-type=cpu", "--render-config.jobs=1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").rglob("transforms.json"))) == 1
    logs = sorted(p.name for p in (tmp_path / "logs").glob("*.log"))
    assert len(logs) == 1 and logs[0].startswith("worker-1-"), logs  # one Blender in all
    assert _services() <= before


@pytest.mark.blender
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to list processes")
def test_bad_input_leaves_no_blender_behind(tmp_path: Path) -> None:
    before = _services()
    done = _create_datasets(
        tmp_path, f"--scenes-dir={tmp_path / 'missing'}", f"--datasets-dir={tmp_path / 'out'}"
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    deadline = time.monotonic() + 10
    while _services() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _services() - before
    assert [p.name for p in (tmp_path / "logs").glob("worker-1-*.log")]  # it had started one early
