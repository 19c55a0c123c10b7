"""create-datasets on a real Dask cluster (a `dask scheduler` and two `dask worker`s on loopback).

Proves: the cluster's dataset is file-for-file and pixel-for-pixel the local pool's; a Dask worker
SIGKILLed while it renders (after a frame-progress event of its task) still leaves a complete, valid dataset;
nothing is left running. Tasks are submitted before any worker exists (an adaptive cluster scales up on them;
no worker at all is one clear error); a sequence's stages are tasks after its render, with the local pool's
files, and run off the GPU workers that renders are pinned to; planning's scene reads as tasks read what the
local readers read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from camsim import transforms
from camsim.config import RenderConfig
from camsim.emulate.imu import ImuConfig
from camsim.errors import UserInputError
from camsim.fileio import TMP_MARK, read_exr_parts, read_image
from camsim.jobs import Event, RunResult, SequenceJob
from camsim.passes import KEYS
from camsim.resume import Reuse
from camsim.sampling import sequence_id
from camsim.stages import Pipeline, StageTask, tasks_for

pytestmark = pytest.mark.blender

pytest.importorskip("distributed")

DASK = Path(sys.executable).with_name("dask")
# Tiny deterministic renders: fixed samples, no adaptive sampling, no denoising, one thread everywhere.
RENDER = [
    "--render-config.width=48", "--render-config.height=32", "--render-config.max-samples=4",
    "--render-config.adaptive-threshold=0", "--render-config.no-use-denoising", "--render-config.threads=1",
    "--render-config.device-type=cpu",
]  # fmt: skip


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    nannies: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def processes(self) -> list[psutil.Process]:
        """Every process we started and all their descendants (Dask workers, Blenders)."""
        out = []
        for p in [self.scheduler, *self.nannies]:
            try:
                proc = psutil.Process(p.pid)
                out += [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return out

    def blenders(self) -> list[psutil.Process]:
        return [p for p in self.processes() if _is_blender(p)]


def _is_blender(p: psutil.Process) -> bool:
    try:
        return any("service.py" in part for part in p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A real scheduler and two single-thread workers, each in a working folder of its own."""
    from distributed import Client

    root = tmp_path_factory.mktemp("dask")
    logs = open(root / "dask.log", "ab")  # noqa: SIM115 - lives as long as the cluster
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    cluster = DaskCluster(address, subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=logs, stderr=subprocess.STDOUT, cwd=root,
    ))  # fmt: skip
    try:
        for i in range(2):
            cwd = root / f"worker{i}"
            cwd.mkdir()
            cluster.nannies.append(subprocess.Popen(
                [str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--name", f"w{i}", "--local-directory", str(cwd)],
                stdout=logs, stderr=subprocess.STDOUT, cwd=cwd,
            ))  # fmt: skip
        with Client(address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield cluster
    finally:
        started = cluster.processes()
        for p in [*cluster.nannies, cluster.scheduler]:
            p.send_signal(signal.SIGTERM)
        for p in [*cluster.nannies, cluster.scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        logs.close()
        _, alive = psutil.wait_procs(started, timeout=15)
        for p in alive:
            p.kill()
        assert not alive, f"left running after teardown: {[(p.pid, p.name()) for p in alive]}"


def _create(scenes: Path, out: Path, *extra: str, cwd: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "camsim", "create-datasets", "--scenes-dir", str(scenes), "--datasets-dir",
           str(out), "--sequences-per-scene", "2", *RENDER, "--render-config.log-dir", str(cwd / "logs"), *extra]  # fmt: skip
    env = {**os.environ, "CAMSIM_LOG": "WARNING"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 180) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _assert_valid_dataset(root: Path, sequences: int) -> None:
    """Every transforms.json valid, every file it names decodes, nothing temporary left anywhere."""
    leftovers = [p for p in root.rglob("*") if TMP_MARK in p.name or ".camsim-probe" in p.name]
    assert not leftovers, leftovers
    metas = sorted(root.glob("renders/*/*/transforms.json"))
    assert len(metas) == sequences
    for path in metas:
        meta = transforms.read(path)
        assert [f["frame_number"] for f in meta["frames"]] == list(
            range(meta["frame_start"], meta["frame_end"] + 1)
        )
        for frame in meta["frames"]:
            for key in KEYS:
                if key in frame:
                    file = transforms.resolve_path(path.parent, frame[key])
                    decoded = read_exr_parts(file) if file.suffix == ".exr" else {"rgb": read_image(file)}
                    assert all(a.size for a in decoded.values()), file


def test_cluster_output_matches_local_pool(
    dask_cluster: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    scenes = demo_scenes[0].parent
    local = _create(
        scenes, tmp_path / "local", "--num-frames", "2", "--render-config.jobs", "2", cwd=tmp_path
    )
    _finish(local)
    # Relative --datasets-dir on purpose: the workers run in other folders and must get absolute paths.
    remote = _create(scenes, Path("dask"), "--num-frames", "2", "--render-config.jobs", "2", "--cluster",
                     dask_cluster.address, cwd=tmp_path)  # fmt: skip
    _finish(remote)

    a, b = tmp_path / "local", tmp_path / "dask"
    assert _files(a) == _files(b)
    assert len(list(b.glob("renders/*/*/transforms.json"))) == 6
    for rel in _files(a):
        if rel.suffix == ".png":
            x, y = read_image(a / rel), read_image(b / rel)
            assert x.shape == y.shape and np.array_equal(x, y), rel
        elif rel.suffix == ".exr":
            x, y = read_exr_parts(a / rel), read_exr_parts(b / rel)
            assert x.keys() == y.keys(), rel
            for k in x:
                assert x[k].shape == y[k].shape and np.array_equal(x[k], y[k], equal_nan=True), (rel, k)
        elif rel.name == "transforms.json":
            assert json.loads((a / rel).read_text()) == json.loads((b / rel).read_text()), rel
    _assert_valid_dataset(b, 6)
    # Both Dask workers rendered, each with its own warm Blender reused across its tasks.
    assert len(dask_cluster.blenders()) == 2


def _camsim_events(client) -> list[tuple[float, dict]]:  # type: ignore[no-untyped-def]
    """Every progress event camsim's tasks have logged on the scheduler (topics camsim-RUN), oldest first."""
    topics = client.get_events()
    events = [e for topic, log in topics.items() if topic.startswith("camsim-") for e in log]
    return sorted(events, key=lambda e: e[0])


def test_cluster_survives_sigkilled_worker(
    dask_cluster: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    """A Dask worker killed while it renders: right after one of its tasks reported a rendered frame, before
    that sequence finished. The task runs again elsewhere and the dataset is complete and valid."""
    from distributed import Client

    scenes = demo_scenes[0].parent
    out = tmp_path / "ds"
    nanny_pids = {p.pid for p in dask_cluster.nannies}
    with Client(dask_cluster.address, timeout="30s", set_as_default=False) as client:
        already = len(_camsim_events(client))  # the previous test's run
        # 12 frames a sequence: a kill after a task's first frame lands well before its last (~10 frames/s).
        run = _create(scenes, out, "--num-frames", "12", "--cluster", dask_cluster.address, cwd=tmp_path)
        victim = key = None
        deadline = time.monotonic() + 120
        while victim is None and run.poll() is None and time.monotonic() < deadline:
            for _, msg in _camsim_events(client)[already:]:
                if msg["kind"] == "frames" and msg["value"] > 0:  # a frame of this task is rendered
                    pid = client.run(os.getpid, workers=[msg["worker"]]).get(msg["worker"])
                    if pid is not None:
                        victim, key = psutil.Process(pid), msg["key"]
                    break
            time.sleep(0.02)
        assert victim is not None, "the run ended before a worker reported a rendered frame"
        assert victim.pid not in nanny_pids  # the Dask worker process itself, not its nanny, not Blender
        blenders = [c for c in victim.children(recursive=True) if _is_blender(c)]
        unfinished = [p.parent for p in out.glob(f"renders/*/*/.scratch*{TMP_MARK}")]
        killed_at = time.time()
        victim.send_signal(signal.SIGKILL)

        text = _finish(run)
        # Nothing skipped: the killed task had not finished (a finished one is found complete and skipped),
        # and it started again after the kill, on a live worker.
        assert "6 done, 0 skipped, 0 failed" in text, text
        again = [m for t, m in _camsim_events(client)[already:] if m["key"] == key and m["kind"] == "start"
                 and t > killed_at]  # fmt: skip
        assert again, f"task {key} was not run again after its worker was killed"
    _assert_valid_dataset(out, 6)
    assert unfinished and all((p / "transforms.json").is_file() for p in unfinished)
    # The killed worker's Blender noticed its host was gone and exited.
    assert blenders
    _, alive = psutil.wait_procs(blenders, timeout=15)
    assert not alive, alive


def _worker_names(client: Any) -> list[str]:
    return [w.get("name") for w in client.scheduler_info(n_workers=-1)["workers"].values()]


def test_cluster_rejects_datasets_dir_a_worker_cannot_see(
    dask_cluster: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    """A third worker whose view of the output folder is a private tmpfs: one clear error, exit code 2."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -m` (a private mount namespace) to hide a folder from one worker")
    from distributed import Client

    cwd = tmp_path / "worker-elsewhere"
    cwd.mkdir()
    script = f'mount -t tmpfs none "{tmp_path}" && exec "$@"'
    dask_cluster.nannies.append(subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script, "sh", str(DASK), "worker", dask_cluster.address, "--nworkers", "1",
         "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--name", "elsewhere"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
    ))  # fmt: skip
    with Client(dask_cluster.address, timeout="30s", set_as_default=False) as client:
        deadline = time.monotonic() + 60
        while "elsewhere" not in _worker_names(client):
            assert time.monotonic() < deadline, "the worker in its own mount namespace did not join"
            time.sleep(0.1)
    run = _create(demo_scenes[0].parent, tmp_path / "ds", "--num-frames", "2", "--cluster",
                  dask_cluster.address, cwd=tmp_path)  # fmt: skip
    out, _ = run.communicate(timeout=120)
    text = " ".join(out.decode(errors="replace").split())
    assert run.returncode == 2, text
    assert "camsim: error: --datasets-dir" in text and "every Dask worker sees at the same path" in text, text
    assert "cannot read" in text and "the client cannot see its probe file" in text, text
    assert not list((tmp_path / "ds").rglob("*.png"))
    assert not list((tmp_path / "ds").glob(".camsim-probe*"))


# ------------------------------------------------------------------ submit first; stages as dependent tasks

TINY = RenderConfig(width=48, height=32, max_samples=4, adaptive_threshold=0.0, use_denoising=False, threads=1,
                    device_type="cpu")  # fmt: skip


def _jobs(scenes: list[Path], datasets: Path, frames: tuple[int, int] = (1, 2)) -> list[SequenceJob]:
    seq = sequence_id(*frames, 1)
    return [
        SequenceJob(s, datasets / "renders" / s.stem / seq, TINY, *frames, s.stem, seq, Reuse(resume=True))
        for s in scenes
    ]


def _scheduler_tasks(address: str) -> int:
    from distributed import Client

    with Client(address, timeout="30s", set_as_default=False) as client:
        return int(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))


@pytest.fixture
def bare_scheduler(tmp_path: Path) -> Iterator[DaskCluster]:
    """A real scheduler with no worker yet (the test starts them); everything stopped afterwards."""
    port = _free_port()
    logs = open(tmp_path / "dask.log", "ab")  # noqa: SIM115 - lives as long as the cluster
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=logs, stderr=subprocess.STDOUT, cwd=tmp_path,
    ))  # fmt: skip
    try:
        yield cluster
    finally:
        started = cluster.processes()
        for p in [*cluster.nannies, cluster.scheduler]:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        logs.close()
        _, alive = psutil.wait_procs(started, timeout=15)
        for p in alive:
            p.kill()
        assert not alive, f"left running after teardown: {[(p.pid, p.name()) for p in alive]}"


def _probe_restrictions(client: Any) -> dict[str, tuple[list[str], bool]]:
    """The scheduler's probe tasks: (the workers each may run on, whether it may run elsewhere too)."""

    def read(dask_scheduler: Any) -> dict[str, tuple[list[str], bool]]:
        return {k: (sorted(ts.worker_restrictions or ()), bool(ts.loose_restrictions))
                for k, ts in dask_scheduler.tasks.items() if str(k).startswith("camsim-probe-")}  # fmt: skip

    return client.run_on_scheduler(read)


def test_probe_waits_for_its_busy_worker_and_its_departure_stops_the_run(
    bare_scheduler: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    """Each worker's probe is pinned to it: with that worker busy and another idle, Dask's work stealing must
    not run it on the idle one (that worker would render unchecked). If the busy worker then leaves, its
    probe can never run: the run stops with one line and nothing rendered, instead of waiting forever."""
    from distributed import Client

    from camsim.dask import DaskRunner
    from camsim.errors import WorkerError

    workers = {}
    for name in ("busy", "idle"):
        workers[name] = subprocess.Popen(
            [str(DASK), "worker", bare_scheduler.address, "--no-nanny", "--nthreads", "1", "--host", "127.0.0.1",
             "--no-dashboard", "--name", name, "--local-directory", str(tmp_path / name)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        bare_scheduler.nannies.append(workers[name])
    datasets = tmp_path / "ds"
    results: list[RunResult | BaseException] = []
    with Client(bare_scheduler.address, timeout="30s", set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        busy = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "busy")
        blocker = client.submit(time.sleep, 120, workers=[busy], allow_other_workers=False, pure=False)

        def run() -> None:
            try:
                with DaskRunner(bare_scheduler.address, TINY.replace(log_dir=tmp_path / "logs"),
                                datasets_dir=datasets) as r:  # fmt: skip
                    results.append(r.run(iter(_jobs(demo_scenes[:2], datasets))))
            except BaseException as exc:
                results.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while len(probes := _probe_restrictions(client)) < 2 and not results and time.monotonic() < deadline:
            time.sleep(0.1)
        # Pinned: Dask may not steal them (stealing moves loosely restricted tasks to idle workers).
        everyone = sorted(client.scheduler_info()["workers"])
        assert sorted(probes.values()) == [([a], False) for a in everyone], (probes, everyone, results)
        time.sleep(2)
        assert not results, results
        workers["busy"].kill()
        thread.join(timeout=60)
        blocker.cancel()
    assert results and isinstance(results[0], WorkerError), results
    assert f"Dask worker {busy} left before it checked --datasets-dir" in str(results[0])
    assert not list(datasets.rglob("*.png")) and not list(datasets.rglob("*.exr"))


def test_run_submits_before_any_worker_joins(
    bare_scheduler: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    """The client submits its tasks to a scheduler without workers (what an adaptive cluster scales on), and
    the run completes once a worker joins."""
    from camsim.dask import DaskRunner

    datasets = tmp_path / "ds"
    jobs = _jobs(demo_scenes[:2], datasets)
    config = TINY.replace(log_dir=tmp_path / "logs")
    results: list[RunResult | BaseException] = []

    def run() -> None:
        try:
            with DaskRunner(bare_scheduler.address, config, datasets_dir=datasets, wait_for_workers=300) as r:
                results.append(r.run(iter(jobs)))
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while _scheduler_tasks(bare_scheduler.address) < 1 + len(jobs) and time.monotonic() < deadline:
        time.sleep(0.1)  # the probe and both renders, with no worker to run them
    assert _scheduler_tasks(bare_scheduler.address) >= 1 + len(jobs) and not results
    bare_scheduler.nannies.append(subprocess.Popen(
        [str(DASK), "worker", bare_scheduler.address, "--nworkers", "1", "--nthreads", "1", "--host",
         "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp_path / "w")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    ))  # fmt: skip
    thread.join(timeout=180)
    assert results and isinstance(results[0], RunResult), results
    assert [o.status for o in results[0].outcomes] == ["done", "done"], results[0].outcomes
    _assert_valid_dataset(datasets, 2)


def test_adaptive_cluster_from_zero_workers_scales_up(demo_scenes: list[Path], tmp_path: Path) -> None:
    """dask-jobqueue's `cluster.adapt()` (minimum 0) on a LocalCluster: the submitted tasks start a worker."""
    from distributed import LocalCluster

    from camsim.dask import DaskRunner

    datasets = tmp_path / "ds"
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:  # fmt: skip
        cluster.adapt(minimum=0, maximum=1, interval="200ms")
        runner = DaskRunner(cluster.scheduler_address, TINY.replace(log_dir=tmp_path / "logs"),
                            datasets_dir=datasets, wait_for_workers=120)  # fmt: skip
        result = runner.run(_jobs(demo_scenes[:1], datasets))
    assert [o.status for o in result.outcomes] == ["done"], result.outcomes
    _assert_valid_dataset(datasets, 1)


def test_no_worker_joining_is_one_line_error(tmp_path: Path) -> None:
    from distributed import LocalCluster

    from camsim.dask import DaskRunner

    datasets = tmp_path / "ds"
    job = _jobs([tmp_path / "a.blend"], datasets)
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster:
        runner = DaskRunner(cluster.scheduler_address, TINY, datasets_dir=datasets, wait_for_workers=1.5)
        t0 = time.monotonic()
        with pytest.raises(
            UserInputError, match=r"^no Dask worker joined the scheduler at tcp://\S+ within 2 s$"
        ):
            runner.run(job)
        assert time.monotonic() - t0 < 30
    assert not list(datasets.glob(".camsim-probe*"))


def _tree(root: Path, datasets: Path) -> dict[str, bytes]:
    """Every file's bytes, the dataset's own path (params.json names its source) replaced."""
    here = str(datasets).encode()
    return {str(p.relative_to(root)): p.read_bytes().replace(here, b"DATASETS") for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_stage_tasks_follow_their_renders_like_the_local_pool(
    demo_scenes: list[Path], tmp_path: Path
) -> None:
    """IMU emulation as a stage task after each render on a 2-worker LocalCluster: the same files as the local
    pool's stage pool; a sequence whose render fails has its stage reported failed, not run."""
    from camsim.dask import DaskRunner
    from camsim.local import LocalPool

    pipeline = Pipeline(emulate=("imu",), sensors=(("imu", ImuConfig()),))
    config = TINY.replace(jobs=2, log_dir=tmp_path / "logs")
    out: dict[str, RunResult] = {}
    events: dict[str, list[tuple[str, str]]] = {}
    threads: set[int] = set()
    for name in ("local", "dask"):
        datasets = tmp_path / name
        jobs = _jobs(demo_scenes, datasets, (1, 6))
        jobs.append(dataclasses.replace(jobs[0], scene=tmp_path / "missing.blend", scene_name="missing",
                                        output=datasets / "renders" / "missing" / jobs[0].sequence_id))  # fmt: skip
        seen = events.setdefault(name, [])

        def on_event(e: Event, seen: list[tuple[str, str]] = seen) -> None:
            if e.kind in ("finished", "stage") and e.job is not None:
                seen.append((e.kind, e.job.scene_name))
                threads.add(threading.get_ident())

        def stages(job: SequenceJob, datasets: Path = datasets) -> list[StageTask]:
            return tasks_for(f"{job.scene_name}/{job.sequence_id}", datasets, pipeline, Reuse())

        if name == "local":
            out[name] = LocalPool(config, 2, stage_workers=1).run(iter(jobs), on_event, stages)
        else:
            with DaskRunner("local", config, datasets_dir=datasets) as runner:
                out[name] = runner.run(iter(jobs), on_event, stages)

    local, dask = out["local"], out["dask"]
    assert [o.status for o in dask.outcomes] == ["done"] * 3 + ["failed"]
    assert [(s.task.key.split("/")[0], s.task.stage, s.status) for s in dask.stages] == [
        (p.stem, "imu", "done") for p in demo_scenes
    ] + [("missing", "imu", "failed")]
    assert dask.stages[-1].error.startswith("its render failed: ")
    assert all(s.task.datasets_dir == tmp_path / "dask" for s in dask.stages)  # the client's tasks
    assert sorted((s.task.key, s.status) for s in local.stages) == sorted(
        (s.task.key, s.status) for s in dask.stages
    )
    # Each stage event comes after its render's, on the thread that called run (as the local pool's).
    for name in ("local", "dask"):
        for scene in [p.stem for p in demo_scenes] + ["missing"]:
            order = [k for k, s in events[name] if s == scene]
            assert order == ["finished", "stage"], (name, scene, order)
    assert threads == {threading.get_ident()}
    a, b = (
        _tree(tmp_path / "local" / "imu", tmp_path / "local"),
        _tree(tmp_path / "dask" / "imu", tmp_path / "dask"),
    )
    assert a.keys() == b.keys() and len(a) >= 3
    assert a == b


def test_survey_on_dask_reads_what_the_local_survey_reads(
    dask_cluster: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    """Planning's scene reads as Dask tasks: the same ranges and errors as survey_local, cached the same way."""
    import queue

    from camsim.dask import DaskRunner
    from camsim.sampling import find_scenes
    from camsim.survey import survey_local

    folder = tmp_path / "scenes"
    folder.mkdir()
    for s in demo_scenes:
        (folder / s.name).write_bytes(s.read_bytes())
    (folder / "corrupt.blend").write_bytes(b"BLENDER-v500" + bytes(range(256)) * 8)
    (folder / "text.blend").write_text("not a blend file")
    scenes = find_scenes(folder)
    config = TINY.replace(log_dir=tmp_path / "logs")
    spare: queue.Queue = queue.Queue()
    try:
        local = {r.scene.name: r for r in survey_local(scenes, config, 1, {}, None, spare)}
    finally:
        while not spare.empty():
            spare.get_nowait().close()
    with DaskRunner(dask_cluster.address, config, datasets_dir=tmp_path / "ds") as runner:
        remote = {r.scene.name: r for r in runner.survey(scenes, config, None)}
        cache = {n: r.record for n, r in remote.items() if r.record is not None}
        again = list(runner.survey(scenes, config, None, cache))
    assert {n: (r.range, r.error) for n, r in remote.items()} == {
        n: (r.range, r.error) for n, r in local.items()
    }
    assert {n: r.record for n, r in remote.items()} == {n: r.record for n, r in local.items()}
    assert remote["corrupt"].error and remote["corrupt"].range is None
    assert len(again) == len(scenes) and all(r.cached for r in again)


def test_renders_pinned_to_gpu_workers_stages_run_anywhere(
    bare_scheduler: DaskCluster, demo_scenes: list[Path], tmp_path: Path
) -> None:
    """Two workers, one declaring the GPU resource: with device-type auto every render runs on it (Blender
    falls back to its CPU here), while stage tasks, which ask for no resource, also run on the other."""
    from distributed import Client

    from camsim.dask import DaskRunner

    for name, extra in (("gpu", ["--resources", "GPU=1"]), ("cpu", [])):
        bare_scheduler.nannies.append(subprocess.Popen(
            [str(DASK), "worker", bare_scheduler.address, "--nworkers", "1", "--nthreads", "1", "--host",
             "127.0.0.1", "--no-dashboard", "--name", name, "--local-directory", str(tmp_path / name), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        ))  # fmt: skip
    datasets = tmp_path / "ds"
    pipeline = Pipeline(emulate=("imu",), sensors=(("imu", ImuConfig()),))
    with Client(bare_scheduler.address, timeout="30s", set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        client.get_task_stream()  # starts recording on the scheduler
        t0 = time.time()
        config = TINY.replace(device_type="auto", log_dir=tmp_path / "logs")
        with DaskRunner(bare_scheduler.address, config, datasets_dir=datasets) as runner:
            result = runner.run(_jobs(demo_scenes, datasets, (1, 6)), None,
                                lambda job: tasks_for(f"{job.scene_name}/{job.sequence_id}", datasets, pipeline,
                                                      Reuse()))  # fmt: skip
        stream = client.get_task_stream(start=t0)
    assert [o.status for o in result.outcomes] == ["done"] * 3 and [s.status for s in result.stages] == [
        "done"
    ] * 3
    ran = {
        (t["key"].split("-")[1], names[t["worker"]]) for t in stream if str(t["key"]).startswith("camsim-")
    }
    assert {w for kind, w in ran if kind == "render"} == {"gpu"}
    assert "cpu" in {w for kind, w in ran if kind == "imu"}, ran
