"""Shared fixtures: one warm Blender worker per test session, and helpers to build and render scenes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.jobs import SequenceJob
from camsim.render import render_sequence

TESTS = Path(__file__).parent
ANALYTIC = TESTS / "scenes" / "analytic.py"
SHARED_CUBE = TESTS.parent.parent / "shared" / "scenes" / "cube.blend"

# Tiny, fast, deterministic renders for tests.
FAST = RenderConfig(
    width=64, height=48, max_samples=4, adaptive_threshold=0.0, use_denoising=False, threads=2
)


# CAMSIM_TEST_BLENDER=/path/to/blender runs the shared worker on an installed Blender instead of bpy.
EXTERNAL_BLENDER = Path(os.environ["CAMSIM_TEST_BLENDER"]) if os.environ.get("CAMSIM_TEST_BLENDER") else None


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlenderWorker]:
    logs = tmp_path_factory.mktemp("worker-logs")
    with BlenderWorker(
        WorkerOptions(executable=EXTERNAL_BLENDER, log_dir=logs, timeout=300, name="tests")
    ) as w:
        yield w


@pytest.fixture(scope="session")
def build_scene(worker: BlenderWorker, tmp_path_factory: pytest.TempPathFactory):
    """build_scene(name, **kwargs) -> path of a .blend made by tests/scenes/analytic.py:build(**kwargs)."""
    folder = tmp_path_factory.mktemp("scenes")

    def _build(name: str, script: Path = ANALYTIC, **kwargs: Any) -> Path:
        path = folder / f"{name}.blend"
        worker.build_scene(script, path, **kwargs)
        return path

    return _build


@pytest.fixture(scope="session")
def render(worker: BlenderWorker, tmp_path_factory: pytest.TempPathFactory):
    """render(blend, name, config=FAST, **job) -> output folder of a rendered sequence."""

    def _render(blend: Path, name: str, config: RenderConfig = FAST, **job: Any) -> Path:
        out = tmp_path_factory.mktemp(name)
        render_sequence(worker, SequenceJob(scene=blend, output=out, settings=config.validate(), **job))
        return out

    return _render


@pytest.fixture(scope="session")
def demo_scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three real demo scenes built by `make_scenes` (shared by the tests that need them)."""
    from camsim.scenes import make_scenes

    out = tmp_path_factory.mktemp("demo-scenes")
    return make_scenes(out, 3, seed=0, options=WorkerOptions(log_dir=out / "logs", name="demo-scenes"))


@pytest.fixture
def torch_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the emulators' `--device cuda` and `auto` to PyTorch's CPU device, as they go to the GPU on a
    machine with one: the GPU path's code runs here, only the device differs (skips without PyTorch)."""
    torch = pytest.importorskip("torch")
    from camsim.emulate import gpu

    monkeypatch.setattr(
        gpu, "choose", lambda requested: (None if requested == "cpu" else torch.device("cpu"), "")
    )


BLENDER_FIXTURES = frozenset({"worker", "build_scene", "render", "demo_scenes"})
"""Fixtures that start Blender: a test using one, directly or through another fixture, is a `blender` test."""


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("CAMSIM_LOG", "WARNING")
    # Property tests check results, not speed: no per-example deadline (a loaded 2-core machine missed the
    # default 200 ms once, a failure that said nothing about the code).
    from hypothesis import settings

    settings.register_profile("camsim", deadline=None)
    settings.load_profile("camsim")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that starts Blender through a fixture without the `blender` marker: the fast tier
    (`pytest -m "not blender"`, which needs no Blender) would start Blender for it. Tests that start
    Blender in a subprocess carry the marker by hand (`pytest -m "not blender"` where bpy is missing shows
    one that does not: it fails with camsim's "needs Blender" error)."""
    unmarked = [
        item.nodeid
        for item in items
        if BLENDER_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("blender") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests start Blender (fixtures " + ", ".join(sorted(BLENDER_FIXTURES)) + ") but lack "
            "@pytest.mark.blender: " + ", ".join(unmarked)
        )
