"""Run create-datasets on Dask distributed: the same sequence jobs and `run_job`, one warm Blender per Dask thread.

No scheduler of our own: `--cluster tcp://HOST:PORT` connects to a running Dask scheduler (SLURM via
dask-jobqueue, Kubernetes, hand-started `dask worker`s), `--cluster local` starts a LocalCluster on
loopback. Each Dask worker holds its Blender processes in a `BlenderPlugin` (started on first use,
reused across tasks, closed in the plugin's teardown). A task is `run_job` on one of those slots, so
retries on a fresh Blender happen inside the task; a Dask worker that dies has its task rescheduled by
Dask, and the rerun cleans the half-finished folder (atomic writes keep final paths whole).

Progress: workers publish run_job's events on a Dask event topic; the client turns them, plus
completed futures, into the local pool's Event stream.

One module, over 400 lines: the client side (connect, probe the shared folder, submit, events) and the
worker side (the plugin holding warm Blenders, the task) must agree on every message; keeping them together
keeps that contract in one place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from camsim.blender.worker import options_from_config
from camsim.config import GPU_BACKENDS, RenderConfig
from camsim.errors import UserInputError, WorkerError
from camsim.jobs import Event, EventFn, JobOutcome, SequenceJob, WorkerSlot, run_job

log = logging.getLogger(__name__)

PLUGIN_NAME = "camsim-blender"
PROBE_PREFIX = ".camsim-probe-"
_ADDRESS = re.compile(r"^(tcp|tls|ucx)://[^\s/]+:\d+$")

try:  # the plugin must subclass WorkerPlugin; without Dask the module still imports (for --help, tests)
    from distributed.diagnostics.plugin import WorkerPlugin as _PluginBase
except ImportError:  # pragma: no cover - exercised only without the [cluster] extra
    _PluginBase = object  # type: ignore[assignment,misc]


# ----------------------------------------------------------------------------------- pure decisions


def cluster_address(value: str) -> str | None:
    """`local` -> None (start a LocalCluster); `HOST:PORT` or `tcp://HOST:PORT` -> the scheduler address."""
    v = value.strip()
    if v == "local":
        return None
    if "://" not in v:
        v = f"tcp://{v}"
    if not _ADDRESS.match(v):
        raise UserInputError(
            f"--cluster must be `local` or a scheduler address like tcp://HOST:8786, got {value!r}"
        )
    return v


def wants_gpu(config: RenderConfig, cluster_has_gpu: bool) -> bool:
    """Ask for the GPU resource for a GPU backend, and for `auto` only where some worker declares one."""
    if config.device_type in GPU_BACKENDS:
        return True
    return config.device_type == "auto" and cluster_has_gpu


def task_key(job: SequenceJob) -> str:
    """Stable per sequence (output folder + settings): resubmitting the same job reuses the same key."""
    digest = hashlib.sha1(
        json.dumps(
            [str(job.output), str(job.scene), job.frame_start, job.frame_end, job.settings.to_json()],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{job.scene_name}-{job.sequence_id}")
    return f"camsim-render-{name}-{digest}"


def threads_by_host(workers: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Dask threads per host: Blender render threads are the host's cores split among them."""
    out: dict[str, int] = {}
    for info in workers.values():
        out[info["host"]] = out.get(info["host"], 0) + int(info.get("nthreads", 1))
    return out


def for_workers(job: SequenceJob) -> SequenceJob:
    """Absolute paths, so a worker whose working folder differs finds the same files."""
    return dataclasses.replace(job, scene=job.scene.absolute(), output=job.output.absolute())


def config_for_workers(config: RenderConfig) -> RenderConfig:
    """The run's config with absolute log folder and executable (Dask workers may start elsewhere)."""
    changes: dict[str, Any] = {"log_dir": config.log_dir.absolute()}
    if config.executable is not None:
        changes["executable"] = config.executable.absolute()
    return config.replace(**changes)


# ----------------------------------------------------------------------------------- worker side


class BlenderPlugin(_PluginBase):  # type: ignore[misc,valid-type]
    """Warm Blender workers of one Dask worker process: one per concurrently running task."""

    name = PLUGIN_NAME
    idempotent = True  # a second run on the same cluster keeps the warm workers

    def setup(self, worker: Any) -> None:
        self._lock = threading.Lock()
        self._free: list[WorkerSlot] = []
        self._busy: dict[int, tuple[WorkerSlot, str]] = {}
        self._stopped: set[str] = set()
        self._count = 0

    def teardown(self, worker: Any) -> None:
        with self._lock:
            slots = self._free + [s for s, _ in self._busy.values()]
            self._free = []
        for slot in slots:
            slot.close()

    @contextlib.contextmanager
    def lease(self, config: RenderConfig, run_id: str, host_threads: int) -> Iterator[WorkerSlot]:
        """A slot for one task; a warm Blender started with the same options is reused."""
        wanted = dataclasses.replace(options_from_config(config), name="")
        stale: WorkerSlot | None = None
        with self._lock:
            match = [
                s for s in self._free if dataclasses.replace(options_from_config(s.config), name="") == wanted
            ]
            if match:
                slot = match[0]
                self._free.remove(slot)
            elif self._free:
                stale = slot = self._free.pop(0)
            else:
                slot = WorkerSlot(config, index=self._count)
                self._count += 1
            self._busy[id(slot)] = (slot, run_id)
        if stale is not None:
            stale.close()  # other Blender options (executable, timeout, ...): start afresh
        slot.config = config
        slot.jobs = max(1, host_threads)
        try:
            yield slot
        finally:
            with self._lock:
                self._busy.pop(id(slot), None)
                self._free.append(slot)

    def stop_run(self, run_id: str) -> int:
        """Ctrl-C on the client: kill the Blenders rendering for that run (atomic outputs stay whole)."""
        with self._lock:
            self._stopped.add(run_id)
            slots = [s for s, r in self._busy.values() if r == run_id]
        for slot in slots:
            slot.discard()
        return len(slots)

    def stopped(self, run_id: str) -> bool:
        return run_id in self._stopped


_plugin_lock = threading.Lock()


def _plugin(worker: Any) -> BlenderPlugin:
    """The worker's plugin; installed here when the worker joined without it (registration raced)."""
    with _plugin_lock:
        plugin = worker.plugins.get(PLUGIN_NAME)
        if plugin is None:
            plugin = BlenderPlugin()
            plugin.setup(worker)
            worker.plugins[PLUGIN_NAME] = plugin
        return plugin


def _probe_problem(datasets_dir: str, token: str) -> str:
    """Empty when the client's probe file is readable here with the right content."""
    path = Path(datasets_dir) / f"{PROBE_PREFIX}{token}-client"
    try:
        return "" if path.read_text() == token else f"{path} has other content"
    except OSError as exc:
        return f"cannot read {path} ({exc.strerror})"


def render_task(
    job: SequenceJob,
    config: RenderConfig,
    max_retries: int,
    run_id: str,
    key: str,
    probe: tuple[str, str],
    host_threads: dict[str, int],
) -> JobOutcome:
    """One Dask task: `run_job` on a warm Blender of this Dask worker; events go to the run's topic."""
    from distributed import get_worker
    from distributed.comm import get_address_host

    worker = get_worker()
    problem = _probe_problem(*probe)
    if problem:  # a worker that joined later and does not share --datasets-dir
        return JobOutcome(job, "failed", error=f"--datasets-dir is not shared with Dask worker "
                                               f"{worker.address}: {problem}")  # fmt: skip
    plugin = _plugin(worker)
    threads = host_threads.get(get_address_host(worker.address), worker.state.nthreads)
    topic = f"camsim-{run_id}"

    def emit(e: Event) -> None:
        worker.log_event(topic, {"kind": e.kind, "key": key, "worker": worker.address, "slot": e.slot,
                                 "value": int(e.value), "message": e.message})  # fmt: skip

    with plugin.lease(config, run_id, threads) as slot:
        outcome = run_job(slot, job, max_retries, emit, lambda: plugin.stopped(run_id))
    outcome.worker = f"{worker.address} {outcome.worker}".strip()
    return outcome


def probe_worker(datasets_dir: str, token: str, scenes: list[str], log_dir: str) -> dict[str, Any]:
    """Run on every worker at start: read the client's probe, write our own, look for scenes and logs."""
    mine = secrets.token_hex(8)
    problems = []
    problem = _probe_problem(datasets_dir, token)
    if problem:
        problems.append(problem)
    path = Path(datasets_dir) / f"{PROBE_PREFIX}{token}-{mine}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(mine)
    except OSError as exc:
        problems.append(f"cannot write {path} ({exc.strerror})")
    missing = [s for s in scenes if not os.path.isfile(s)]
    if missing:
        problems.append(f"{len(missing)} scene file(s) not found, e.g. {missing[0]}")
    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        problems.append(
            f"cannot create the log folder {log_dir} ({exc.strerror}); set --render-config.log-dir"
        )
    return {"host": socket.gethostname(), "file": str(path), "token": mine, "problems": problems}


def stop_run(run_id: str, dask_worker: Any = None) -> int:
    """Run on every worker by `client.run` after Ctrl-C."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME) if dask_worker is not None else None
    return plugin.stop_run(run_id) if plugin is not None else 0


# ----------------------------------------------------------------------------------- client side


class DaskRunner:
    """The Dask counterpart of `LocalPool`: `run(jobs, on_event) -> outcomes in job order`."""

    def __init__(
        self,
        cluster: str,
        config: RenderConfig,
        max_retries: int = 2,
        datasets_dir: Path = Path("datasets"),
        wait_for_workers: float = 120.0,
    ) -> None:
        self.address = cluster_address(cluster)
        self.config = config
        self.max_retries = max_retries
        self.datasets_dir = datasets_dir.absolute()
        self.wait_for_workers = wait_for_workers
        self.run_id = secrets.token_hex(6)
        self._lock = threading.Lock()

    # -- connection

    def _connect(self, njobs: int) -> tuple[Any, Any]:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserInputError("--cluster needs Dask distributed: pip install 'camsim[cluster]'") from None
        if self.address is None:
            n = max(1, min(self.config.jobs, njobs))
            gpu = {"GPU": 1} if self.config.device_type in GPU_BACKENDS else None
            try:
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, resources=gpu, silence_logs=logging.WARNING)  # fmt: skip
            except Exception as exc:
                raise WorkerError(f"could not start a local Dask cluster: {exc}") from exc
            log.info("local Dask cluster of %d workers at %s", n, cluster.scheduler_address)
            return Client(cluster, set_as_default=False), cluster
        try:
            client = Client(self.address, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UserInputError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        return client, None

    def _workers(self, client: Any) -> dict[str, dict[str, Any]]:
        """Wait for at least one worker; return what the scheduler knows of them all."""
        try:
            client.wait_for_workers(1, timeout=self.wait_for_workers)
        except TimeoutError:
            raise UserInputError(
                f"no Dask worker joined the scheduler at {self.address} within {self.wait_for_workers:.0f} s"
            ) from None
        return client.scheduler_info(n_workers=-1)["workers"]

    def _probe(self, client: Any, jobs: list[SequenceJob], token: str) -> None:
        """Prove --datasets-dir is one shared folder (written and read both ways) and the scenes are seen."""
        mine = self.datasets_dir / f"{PROBE_PREFIX}{token}-client"
        try:
            self.datasets_dir.mkdir(parents=True, exist_ok=True)
            mine.write_text(token)
        except OSError as exc:
            raise UserInputError(
                f"cannot write to --datasets-dir {self.datasets_dir}: {exc.strerror}"
            ) from None
        scenes = sorted({str(j.scene) for j in jobs})
        answers = client.run(
            probe_worker, str(self.datasets_dir), token, scenes, str(self.config.log_dir.absolute())
        )
        problems = []
        for address, a in sorted(answers.items()):
            found = list(a["problems"])
            theirs = Path(a["file"])
            try:
                if theirs.read_text() != a["token"]:
                    found.append(f"its probe file {theirs} reads back with other content here")
            except OSError:
                if not any(p.startswith("cannot write") for p in found):
                    found.append(f"the client cannot see its probe file {theirs}")
            with contextlib.suppress(OSError):
                theirs.unlink()
            problems += [f"{address} ({a['host']}): {p}" for p in found]
        if problems:
            raise UserInputError(
                f"--datasets-dir {self.datasets_dir} (and the scenes) must be one shared folder that every Dask "
                "worker sees at the same path: " + "; ".join(problems)
            )

    # -- the run

    def run(self, jobs: list[SequenceJob], on_event: EventFn | None = None) -> list[JobOutcome]:
        """Render every job on the cluster; return outcomes in job order. Ctrl-C stops this run's tasks."""
        if not jobs:
            return []
        with _quiet_dask():
            return self._run(jobs, on_event or (lambda e: None))

    def _run(self, jobs: list[SequenceJob], emit: EventFn) -> list[JobOutcome]:
        remote = [for_workers(j) for j in jobs]
        workers_config = config_for_workers(self.config)
        client, cluster = self._connect(len(jobs))
        token = secrets.token_hex(8)
        futures: list[Any] = []
        try:
            workers = self._workers(client)
            self._probe(client, remote, token)
            has_gpu = any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values())
            resources = {"GPU": 1} if wants_gpu(self.config, has_gpu) else None
            if resources and not has_gpu:
                raise UserInputError(
                    f"--render-config.device-type={self.config.device_type} asks for GPU workers but no Dask "
                    "worker declares a GPU: start them with `dask worker ... --resources GPU=1`, or render "
                    "with --render-config.device-type=cpu"
                )
            client.register_plugin(BlenderPlugin())
            keys = [task_key(j) for j in remote]
            self._begin_events(client, dict(zip(keys, jobs, strict=True)), emit)
            probe = (str(self.datasets_dir), token)
            hosts = threads_by_host(workers)
            futures = [
                client.submit(
                    render_task,
                    job,
                    workers_config,
                    self.max_retries,
                    self.run_id,
                    key,
                    probe,
                    hosts,
                    key=key,
                    pure=False,
                    retries=self.max_retries,
                    resources=resources,
                )
                for job, key in zip(remote, keys, strict=True)
            ]
            return self._collect(client, futures, jobs, keys, emit)
        except BaseException:
            if futures:
                self._abort(client, futures)
            raise
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(f"camsim-{self.run_id}")
            with contextlib.suppress(OSError):
                (self.datasets_dir / f"{PROBE_PREFIX}{token}-client").unlink()
            with contextlib.suppress(Exception):
                client.close()
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()

    def _collect(
        self, client: Any, futures: list[Any], jobs: list[SequenceJob], keys: list[str], emit: EventFn
    ) -> list[JobOutcome]:
        from distributed import as_completed

        index = {k: i for i, k in enumerate(keys)}
        outcomes: dict[int, JobOutcome] = {}
        for fut in as_completed(futures, loop=client.loop):
            i = index[fut.key]
            try:
                outcome = fut.result()
                outcome.job = jobs[i]
            except Exception as exc:  # the task itself failed: KilledWorker after repeated deaths, a bug
                outcome = JobOutcome(jobs[i], "failed", error=f"{type(exc).__name__}: {exc}", attempts=1)
            with self._lock:
                self._finished.add(keys[i])
                outcomes[i] = outcome
            emit(Event("finished", -1, jobs[i], outcome=outcome))
        return [outcomes.get(i, JobOutcome(j, "failed", error="not run")) for i, j in enumerate(jobs)]

    def _abort(self, client: Any, futures: list[Any]) -> None:
        with contextlib.suppress(Exception):
            client.cancel(futures, force=True)
        with contextlib.suppress(Exception):
            client.run(stop_run, self.run_id)

    # -- events from workers -> the local pool's Event stream

    def _begin_events(self, client: Any, jobs: dict[str, SequenceJob], emit: EventFn) -> None:
        self._finished: set[str] = set()
        slots: dict[tuple[str, int], int] = {}

        def handle(event: tuple[float, dict[str, Any]]) -> None:
            msg = event[1]
            key, kind = msg["key"], msg["kind"]
            with self._lock:
                job = jobs.get(key)
                if job is None or key in self._finished:
                    return
                where = (msg["worker"], msg["slot"])
                if where not in slots:
                    if kind != "start":
                        return
                    slots[where] = len(slots)
                slot = slots[where]
                value = msg["value"]  # a rerun's repeated frames are clamped by the view (progress.RunView)
            message = (
                f"{_short(msg['worker'])} {msg['message']}".strip() if kind == "start" else msg["message"]
            )
            emit(Event(kind, slot, job, value=value, message=message))

        client.subscribe_topic(f"camsim-{self.run_id}", handle)


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's INFO lines (a LocalCluster's scheduler lives in this process) would drown the progress bar."""
    dask_log = logging.getLogger("distributed")
    old = dask_log.level
    if not log.isEnabledFor(logging.DEBUG):
        dask_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        dask_log.setLevel(old)


def _short(address: str) -> str:
    return address.split("://", 1)[-1]
