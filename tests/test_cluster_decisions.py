"""The Dask executor's pure decisions: addresses, GPU resources, task keys, the shared-folder probe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from camsim.config import RenderConfig
from camsim.dask import (
    cluster_address,
    config_for_workers,
    for_workers,
    probe_worker,
    task_key,
    threads_by_host,
    wants_gpu,
)
from camsim.errors import UserInputError
from camsim.jobs import SequenceJob


def test_cluster_address_accepts_local_and_scheduler_addresses() -> None:
    assert cluster_address("local") is None
    assert cluster_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert cluster_address("node17:8786") == "tcp://node17:8786"
    for bad in ("", "http://x:1", "tcp://host", "tcp://host:port", "loc al"):
        with pytest.raises(UserInputError, match="--cluster must be"):
            cluster_address(bad)


def test_gpu_resource_only_for_gpu_configs() -> None:
    assert not wants_gpu(RenderConfig(device_type="cpu"), cluster_has_gpu=True)
    assert wants_gpu(RenderConfig(device_type="optix"), cluster_has_gpu=False)
    assert wants_gpu(RenderConfig(device_type="auto"), cluster_has_gpu=True)
    assert not wants_gpu(RenderConfig(device_type="auto"), cluster_has_gpu=False)


def test_task_key_is_stable_per_sequence_and_distinct_between_them(tmp_path: Path) -> None:
    job = SequenceJob(
        tmp_path / "a.blend", tmp_path / "out/a/1", RenderConfig(), 1, 5, "a", "000001-000005-x1"
    )
    assert task_key(job) == task_key(SequenceJob(**job.__dict__))
    other = SequenceJob(
        tmp_path / "a.blend", tmp_path / "out/a/2", RenderConfig(), 6, 9, "a", "000006-000009-x1"
    )
    assert task_key(job) != task_key(other)
    assert task_key(job) != task_key(SequenceJob(**{**job.__dict__, "settings": RenderConfig(max_samples=3)}))
    # How the run executes is not part of the key: the same sequence through 4 workers is the same task.
    assert task_key(job) == task_key(
        SequenceJob(**{**job.__dict__, "settings": RenderConfig(jobs=4, threads=1)})
    )


def test_jobs_sent_to_workers_carry_absolute_paths() -> None:
    config = RenderConfig(log_dir=Path("logs"), executable=None)
    job = SequenceJob(Path("s/a.blend"), Path("ds/renders/a/1"), config, 1, 2)
    sent = for_workers(job)
    assert sent.scene.is_absolute() and sent.output.is_absolute() and sent.settings == job.settings
    workers = config_for_workers(config)
    assert workers.log_dir.is_absolute() and workers.replace(log_dir=Path("logs")) == config


def test_threads_by_host_sums_dask_threads_per_machine() -> None:
    workers = {"tcp://a:1": {"host": "a", "nthreads": 2}, "tcp://a:2": {"host": "a", "nthreads": 1},
               "tcp://b:1": {"host": "b", "nthreads": 4}}  # fmt: skip
    assert threads_by_host(workers) == {"a": 3, "b": 4}


def test_probe_reports_missing_client_probe_and_scenes(tmp_path: Path) -> None:
    answer = probe_worker(str(tmp_path), "feed", [str(tmp_path / "missing.blend")], str(tmp_path / "logs"))
    assert any("cannot read" in p for p in answer["problems"])
    assert any("scene file(s) not found" in p for p in answer["problems"])
    (tmp_path / ".camsim-probe-feed-client").write_text("feed")
    scene = tmp_path / "x.blend"
    scene.write_bytes(b"BLENDER")
    answer = probe_worker(str(tmp_path), "feed", [str(scene)], str(tmp_path / "logs"))
    assert answer["problems"] == []
    assert Path(answer["file"]).read_text() == answer["token"]


def test_bad_cluster_flag_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "a.blend").write_bytes(b"BLENDER-v500")
    cmd = [sys.executable, "-m", "camsim", "create-datasets", "--scenes-dir", str(scenes), "--datasets-dir",
           str(tmp_path / "ds"), "--anim-start", "1", "--anim-end", "4", "--cluster", "http://nowhere"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("camsim: error: --cluster must be")
