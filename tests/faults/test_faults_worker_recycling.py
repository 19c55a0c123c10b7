"""Worker recycling: `max_sequences_per_worker=1` starts a fresh Blender per sequence; outputs are unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camsim.config import RenderConfig
from camsim.fileio import read_exr_parts, read_image
from camsim.jobs import Event
from camsim.local import LocalPool
from camsim.planning import PlanOptions, plan_datasets
from camsim.sampling import find_scenes

pytestmark = pytest.mark.blender

CONFIG = RenderConfig(width=32, height=24, max_samples=2, adaptive_threshold=0.0, use_denoising=False,
                      device_type="cpu", threads=1, jobs=2)  # fmt: skip


def _render(scenes_dir: Path, out: Path, config: RenderConfig) -> list[int]:
    """Render 2 sequences of 3 frames per demo scene on a local pool; return the Blender pid per sequence."""
    config = config.replace(log_dir=out / "logs").validate()
    plan = plan_datasets(find_scenes(scenes_dir), out / "ds", config, PlanOptions(2, 3, 1, 600, "even", 0),
                         lambda scene: (1, 600))  # fmt: skip
    pool = LocalPool(config, jobs=2)
    pids: list[int] = []

    def on_event(e: Event) -> None:
        if e.kind == "start":
            worker = pool.slots[e.slot].worker
            assert worker is not None and worker.pid is not None
            pids.append(worker.pid)

    outcomes = pool.run(plan.jobs, on_event).outcomes
    assert [o.status for o in outcomes] == ["done"] * len(plan.jobs), [o.error for o in outcomes]
    return pids


def _decode(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    return read_exr_parts(path) if path.suffix == ".exr" else read_image(path)


@pytest.fixture(scope="module")
def warm_run(scenes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("warm")
    warm = _render(scenes_dir, out, CONFIG)
    assert len(set(warm)) == 2  # without recycling two warm workers render all six sequences
    return out / "ds"


@pytest.mark.parametrize(
    "limit", [{"max_sequences_per_worker": 1}, {"max_worker_memory": 0.001}], ids=["sequences", "memory"]
)
def test_recycling_gives_a_new_blender_per_sequence_and_the_same_outputs(
    limit: dict[str, float], scenes_dir: Path, warm_run: Path, tmp_path: Path
) -> None:
    recycled = _render(scenes_dir, tmp_path, CONFIG.replace(**limit))
    assert len(recycled) == 6 and len(set(recycled)) == 6  # a new Blender process for every sequence

    a, b = tmp_path / "ds", warm_run
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix in (".png", ".exr"))
    assert files == sorted(
        p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.suffix in (".png", ".exr")
    )
    for rel in files:
        x, y = _decode(a / rel), _decode(b / rel)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), rel
            for k in x:
                np.testing.assert_array_equal(x[k], y[k], err_msg=str(rel))
        else:
            np.testing.assert_array_equal(x, y, err_msg=str(rel))
