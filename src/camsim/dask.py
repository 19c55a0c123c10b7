"""Run create-datasets on Dask distributed: the same sequence jobs and `run_job`, one warm Blender per Dask thread.

No scheduler of our own: `--cluster tcp://HOST:PORT` connects to a running Dask scheduler (SLURM via
dask-jobqueue, Kubernetes, hand-started `dask worker`s), `--cluster local` starts a LocalCluster on
loopback. Each Dask worker holds its Blender processes in a `BlenderPlugin` (started on first use,
reused across tasks, closed in the plugin's teardown). A task is `run_job` on one of those slots, so
retries on a fresh Blender happen inside the task; a Dask worker that dies has its task rescheduled by
Dask, and the rerun cleans the half-finished folder (atomic writes keep final paths whole).

Submit first, wait later: tasks go to the scheduler as planning yields jobs, before any worker exists, so
an adaptive cluster (dask-jobqueue's `cluster.adapt()`, minimum 0) sees work and starts workers. The
shared-folder probe is a task too (renders depend on it); a run where no worker joins within
`wait_for_workers` stops with one line. A sequence's stages (interpolation, emulators) are tasks that depend
on its render task (and a sensor on the interpolation); renders may be pinned to GPU workers with the `GPU`
resource, the stages ask for none (and then prefer workers without a GPU, which Dask's data locality would
not choose by itself). Planning's scene reads can run as tasks too (`DaskRunner.survey`), on the same warm
Blenders.

Progress: workers publish run_job's events on a Dask event topic; the client turns them, plus
completed futures, into the local pool's Event stream.

One module, over 400 lines: the client side (connect, probe the shared folder, submit, events) and the
worker side (the plugin holding warm Blenders, the tasks) must agree on every message; keeping them together
keeps that contract in one place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from camsim.blender.worker import options_from_config
from camsim.config import GPU_BACKENDS, RenderConfig
from camsim.errors import UserInputError, WorkerError
from camsim.jobs import Event, EventFn, JobOutcome, RunResult, SequenceJob, StageTasks, WorkerSlot, run_job
from camsim.manifest import SceneRecord
from camsim.sampling import SceneEntry
from camsim.stages import StageOutcome, StageTask, blocked, run_stage
from camsim.survey import Reading, SceneRead, finish_read, partition, read_scene, stat_or_none

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


def stage_key(task: StageTask) -> str:
    """Stable per stage of a sequence and its settings (a task of other settings never reuses a result)."""
    digest = hashlib.sha1(
        repr(
            (task.stage, task.key, str(Path(task.datasets_dir).absolute()), task.pipeline, task.reuse)
        ).encode()
    ).hexdigest()[:12]
    return f"camsim-{task.stage}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', task.key)}-{digest}"


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
    probes: list[dict[str, Any]] | tuple[()] = (),
) -> JobOutcome:
    """One Dask task: `run_job` on a warm Blender of this Dask worker; events go to the run's topic.

    `probes`: the answers of the run's probe tasks (a dependency: nothing renders before the workers present
    at the start have checked the shared folder); a worker that joined later checks the client's probe here."""
    from distributed import get_worker
    from distributed.comm import get_address_host

    worker = get_worker()
    if any(a["problems"] for a in probes):
        return JobOutcome(job, "failed", error="not run: --datasets-dir is not shared with every Dask worker")
    problem = _probe_problem(*probe)
    if problem:  # a worker that joined later and does not share --datasets-dir
        return JobOutcome(job, "failed", error=f"--datasets-dir is not shared with Dask worker "
                                               f"{worker.address}: {problem}")  # fmt: skip
    if not os.path.isfile(job.scene):  # scenes planned after the probe are checked here
        return JobOutcome(job, "failed", error=f"scene file not found on Dask worker {worker.address}: "
                                               f"{job.scene} (the scenes must be shared like --datasets-dir)")  # fmt: skip
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


def stage_task(
    task: StageTask, render: JobOutcome, source: StageOutcome | None, max_retries: int
) -> StageOutcome:
    """One Dask task: a stage of one sequence, after its render (and `source`, the stage it reads, when that
    is not the render). A stage whose render or source failed is not run. Never needs Blender or a GPU."""
    if render.status == "failed":
        return blocked(task, f"its render failed: {render.error}")
    if source is not None and source.status == "failed":
        return blocked(task, f"its {source.task.stage} stage failed")
    return run_stage(task, max_retries, workers=1)


def survey_task(path: str, scene_name: str | None, config: RenderConfig, run_id: str) -> Reading:
    """One Dask task: read one scene for planning on a warm Blender of this Dask worker (kept warm for the
    renders that follow)."""
    from distributed import get_worker

    plugin = _plugin(get_worker())
    with plugin.lease(config, run_id, 1) as slot:
        reading = read_scene(slot.get, Path(path), scene_name)
        if reading.crashed:
            slot.discard()
    return reading


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
    return {"host": socket.gethostname(), "worker": _worker_address(), "file": str(path), "token": mine,
            "problems": problems}  # fmt: skip


def _worker_address() -> str:
    """This Dask worker's address ("" outside a Dask task)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


def stop_run(run_id: str, dask_worker: Any = None) -> int:
    """Run on every worker by `client.run` after Ctrl-C."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME) if dask_worker is not None else None
    return plugin.stop_run(run_id) if plugin is not None else 0


# ----------------------------------------------------------------------------------- client side


class DaskRunner:
    """The Dask counterpart of `LocalPool`: `run(jobs, on_event, stages) -> RunResult`, and `survey`.

    `with DaskRunner(...) as runner:` holds one client (and LocalCluster) for a survey and a run; `run` or
    `survey` called outside `with` connects for itself."""

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
        self.client: Any = None
        self._cluster: Any = None
        self._quiet: contextlib.ExitStack | None = None
        self._seen_worker = False

    # -- connection

    def __enter__(self) -> DaskRunner:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Connect (or start the LocalCluster) and register the Blender plugin; no worker is waited for."""
        if self.client is not None:
            return
        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(_quiet_dask())
        try:
            self.client, self._cluster = self._connect()
            self.client.register_plugin(BlenderPlugin())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client, cluster, quiet = self.client, self._cluster, self._quiet
        self.client = self._cluster = self._quiet = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        if quiet is not None:
            quiet.close()

    def _connect(self) -> tuple[Any, Any]:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserInputError("--cluster needs Dask distributed: pip install 'camsim[cluster]'") from None
        if self.address is None:
            n = max(1, self.config.jobs)
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

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Any]:
        """The held client, or one opened (and closed) for this call."""
        if self.client is not None:
            yield self.client
            return
        self.open()
        try:
            yield self.client
        finally:
            self.close()

    def workers(self) -> dict[str, dict[str, Any]]:
        """What the scheduler knows of its workers now (none while an adaptive cluster has started none)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        if workers:
            self._seen_worker = True
        return workers

    def check_workers(self, since: float, gpu: bool) -> dict[str, dict[str, Any]]:
        """The workers now; UserInputError (one line) when none has joined `wait_for_workers` seconds after
        `since` (no worker ever seen by this runner), or when `gpu` is asked and the workers declare none."""
        workers = self.workers()
        if not self._seen_worker and time.monotonic() - since > self.wait_for_workers:
            where = self.address or self.client.scheduler.address
            raise UserInputError(
                f"no Dask worker joined the scheduler at {where} within {self.wait_for_workers:.0f} s"
            )
        if gpu and workers and not any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values()):
            raise UserInputError(
                f"--render-config.device-type={self.config.device_type} asks for GPU workers but no Dask "
                "worker declares a GPU: start them with `dask worker ... --resources GPU=1`, or render "
                "with --render-config.device-type=cpu"
            )
        return workers

    # -- planning

    def survey(
        self,
        scenes: list[SceneEntry],
        config: RenderConfig,
        scene_name: str | None,
        cache: dict[str, SceneRecord] | None = None,
    ) -> Iterator[SceneRead]:
        """Read every scene for planning as Dask tasks (one per scene, on the workers' warm Blenders), like
        `survey.survey_local`: cached scenes first without a task, then the rest in completion order.
        Closing the iterator early cancels the reads still queued."""
        done, fresh = partition(scenes, cache or {}, scene_name)
        yield from done
        if not fresh:
            return
        with self._connected() as client, _quiet_dask():
            workers_config = config_for_workers(config)
            stats = [stat_or_none(s.path) for s in fresh]
            token = secrets.token_hex(4)
            finished: queue.Queue[tuple[int, Any]] = queue.Queue()
            futures = []
            for i, scene in enumerate(fresh):
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", scene.name)
                fut = client.submit(survey_task, str(scene.path.absolute()), scene_name, workers_config,
                                    self.run_id, key=f"camsim-survey-{name}-{token}", pure=False,
                                    retries=self.max_retries)  # fmt: skip
                fut.add_done_callback(lambda f, i=i: finished.put((i, f)))
                futures.append(fut)
            since = time.monotonic()
            try:
                for _ in fresh:
                    while True:
                        try:
                            i, fut = finished.get(timeout=0.5)
                            break
                        except queue.Empty:
                            self.check_workers(since, gpu=False)
                    try:
                        reading = fut.result()
                    except Exception as exc:  # KilledWorker after repeated deaths, a bug of ours
                        reading = Reading(None, f"Blender could not read the scene: {type(exc).__name__}: {exc}",
                                          crashed=True)  # fmt: skip
                    yield finish_read(fresh[i], reading, scene_name, stats[i])
            finally:
                with contextlib.suppress(Exception):
                    client.cancel([f for f in futures if not f.done()], force=True)

    # -- the run

    def run(
        self, jobs: Iterable[SequenceJob], on_event: EventFn | None = None, stages: StageTasks | None = None
    ) -> RunResult:
        """Render every job on the cluster and run its stages; outcomes in job order. Tasks are submitted as
        `jobs` yields them. Ctrl-C (or an error raised by `jobs`) cancels this run's tasks and re-raises."""
        it = iter(jobs)
        first = next(it, None)
        if first is None:
            return RunResult([])
        with self._connected(), _quiet_dask():
            return _Run(self, on_event or (lambda e: None), stages).execute(first, it)


class _Run:
    """One run on the cluster (client side). The calling thread submits tasks as jobs arrive and, between
    jobs and after the last, turns finished tasks into outcomes and "finished"/"stage" events (the thread
    that called `run`, as on the local pool); a fetcher thread collects finished futures' results and watches
    for workers meanwhile."""

    def __init__(self, runner: DaskRunner, emit: EventFn, stages: StageTasks | None) -> None:
        self.runner = runner
        self.client = runner.client
        self.emit = emit
        self.stages = stages
        self.config = config_for_workers(runner.config)
        self.token = secrets.token_hex(8)
        self.lock = threading.Lock()
        self.jobs: list[SequenceJob] = []
        self.by_key: dict[str, SequenceJob] = {}
        self.render_errors: set[int] = set()
        """Jobs whose render task raised (its stage tasks raise the same)."""
        self.outcomes: dict[int, JobOutcome] = {}
        self.tasks: list[tuple[int, StageTask]] = []
        self.stage_outcomes: dict[int, StageOutcome] = {}
        self.live: dict[str, Any] = {}
        """Futures not yet handled, by key (a handled one is released: its result leaves the cluster)."""
        self.pending = 0
        self.finished: set[str] = set()
        self.done: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        """Futures that finished (filled by Dask's callback thread)."""
        self.ready: queue.Queue[tuple[str, int, Any, Any]] = queue.Queue()
        """(kind, index, future, result or exception), fetched by the fetcher thread for the calling one."""
        self.closing = threading.Event()
        self.fatal: BaseException | None = None
        self.resources: dict[str, int] | None = None
        self.hosts: dict[str, int] = {}
        self.cpu_workers: list[str] = []
        """Workers without the GPU resource: where stages go when renders are pinned to GPU workers."""
        self.probes: list[Any] = []
        self.probe_for: dict[int, str] = {}
        """The worker each probe task is pinned to (none for the probe of a cluster that has no worker yet)."""
        self.since = time.monotonic()

    # -- the calling thread

    def execute(self, first: SequenceJob, rest: Iterator[SequenceJob]) -> RunResult:
        probe_file = self._write_probe()
        fetcher = threading.Thread(target=self._fetch, name="camsim-dask-fetch", daemon=True)
        try:
            self._start(first)
            fetcher.start()
            for job in itertools.chain([first], rest):
                self._drain(0.0)
                self._submit(job)
            while self.pending:
                self._drain(0.2)
            return self._result()
        except BaseException:
            self._abort()
            raise
        finally:
            self.closing.set()
            if fetcher.is_alive():
                fetcher.join(timeout=30)
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(f"camsim-{self.runner.run_id}")
            with contextlib.suppress(OSError):
                probe_file.unlink()
            # A probe task Dask ran again (its worker died holding the answer) wrote a file nobody read.
            for leftover in self.runner.datasets_dir.glob(f"{PROBE_PREFIX}{self.token}-*"):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    def _write_probe(self) -> Path:
        folder = self.runner.datasets_dir
        mine = folder / f"{PROBE_PREFIX}{self.token}-client"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            mine.write_text(self.token)
        except OSError as exc:
            raise UserInputError(f"cannot write to --datasets-dir {folder}: {exc.strerror}") from None
        return mine

    def _start(self, first: SequenceJob) -> None:
        """Probe tasks (one per worker present, or one for the first to join), GPU resources, events."""
        workers = self.runner.workers()
        has_gpu = any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values())
        self.resources = {"GPU": 1} if wants_gpu(self.runner.config, has_gpu) else None
        self._learn(workers)
        args = (str(self.runner.datasets_dir), self.token, [str(first.scene.absolute())],
                str(self.config.log_dir))  # fmt: skip
        # Pinned, not loosely restricted: Dask's work stealing moves a loose task to an idle worker, and the
        # worker it was meant for would go unchecked (`_watch` stops the run if a pinned one's worker leaves).
        for i, address in enumerate(sorted(workers) or [None]):
            where = {"workers": [address], "allow_other_workers": False} if address else {}
            if address:
                self.probe_for[i] = address
            fut = self.client.submit(probe_worker, *args, key=f"camsim-probe-{self.token}-{i}", pure=False,
                                     retries=self.runner.max_retries, **where)  # fmt: skip
            self.probes.append(fut)
            self._track("probe", i, fut)
        self._begin_events()

    def _submit(self, job: SequenceJob) -> None:
        remote = for_workers(job)
        key = task_key(remote)
        with self.lock:
            i = len(self.jobs)
            self.jobs.append(job)
            self.by_key[key] = job
        fut = self.client.submit(render_task, remote, self.config, self.runner.max_retries, self.runner.run_id,
                                 key, (str(self.runner.datasets_dir), self.token), dict(self.hosts), self.probes,
                                 key=key, pure=False, retries=self.runner.max_retries, resources=self.resources,
                                 priority=1 if self.resources else 0)  # fmt: skip
        self._track("render", i, fut)
        if self.stages is None:
            return
        # Dask runs a task where its inputs are: a stage would follow its render onto the GPU worker. With renders
        # pinned there, stages prefer the workers without a GPU (any worker when there are none).
        cpu = self.cpu_workers
        where = {"workers": cpu, "allow_other_workers": True} if self.resources and cpu else {}
        by_stage: dict[tuple[str, str], Any] = {}  # (key, stage): a rig's cameras each have their stages
        for task in self.stages(job):
            sent = dataclasses.replace(task, datasets_dir=Path(task.datasets_dir).absolute())
            source = by_stage.get((task.key, task.pipeline.depends_on(task.stage)))
            sfut = self.client.submit(stage_task, sent, fut, source, self.runner.max_retries, key=stage_key(task),
                                      pure=False, retries=self.runner.max_retries, **where)  # fmt: skip
            by_stage[(task.key, task.stage)] = sfut
            self.tasks.append((i, task))
            self._track("stage", len(self.tasks) - 1, sfut)

    def _track(self, kind: str, index: int, fut: Any) -> None:
        self.pending += 1
        with self.lock:
            self.live[fut.key] = fut
        fut.add_done_callback(lambda f: self.done.put((kind, index, f)))

    def _drain(self, timeout: float) -> None:
        """Handle every fetched result (waiting up to `timeout` for the first); raise what the fetcher found."""
        while True:
            if self.fatal is not None:
                raise self.fatal
            try:
                kind, index, fut, result = (
                    self.ready.get(timeout=timeout) if timeout else self.ready.get_nowait()
                )
            except queue.Empty:
                return
            timeout = 0.0
            self.pending -= 1
            with self.lock:
                self.live.pop(fut.key, None)
            self._complete(kind, index, fut, result)

    def _complete(self, kind: str, index: int, fut: Any, result: Any) -> None:
        if kind == "probe":
            self._check_probe(result)
        elif kind == "render":
            job = self.jobs[index]
            if isinstance(result, BaseException):  # KilledWorker after repeated deaths, a bug of ours
                self.render_errors.add(index)
                outcome = JobOutcome(job, "failed", error=f"{type(result).__name__}: {result}", attempts=1)
            else:
                outcome = result
                outcome.job = job
            with self.lock:
                self.finished.add(fut.key)
            self.outcomes[index] = outcome
            self.emit(Event("finished", -1, job, outcome=outcome))
        else:
            i, task = self.tasks[index]
            if isinstance(result, BaseException):
                why = f"{type(result).__name__}: {result}"
                failed_render = i in self.render_errors
                stage = (
                    blocked(task, f"its render failed: {why}")
                    if failed_render
                    else StageOutcome(task, "failed", error=why)
                )
            else:
                stage = result
                stage.task = task
            self.stage_outcomes[index] = stage
            self.emit(Event("stage", -1, self.jobs[i], message=task.stage, stage=stage))

    def _check_probe(self, answer: Any) -> None:
        """Prove --datasets-dir is one shared folder (written and read both ways) and the scenes are seen."""
        if isinstance(answer, BaseException):
            raise WorkerError(
                f"the shared-folder probe failed on the cluster: {type(answer).__name__}: {answer}"
            )
        found = list(answer["problems"])
        theirs = Path(answer["file"])
        try:
            if theirs.read_text() != answer["token"]:
                found.append(f"its probe file {theirs} reads back with other content here")
        except OSError:
            if not any(p.startswith("cannot write") for p in found):
                found.append(f"the client cannot see its probe file {theirs}")
        with contextlib.suppress(OSError):
            theirs.unlink()
        if found:
            where = f"{answer.get('worker') or 'a worker'} ({answer['host']})"
            raise UserInputError(
                f"--datasets-dir {self.runner.datasets_dir} (and the scenes) must be one shared folder that every "
                "Dask worker sees at the same path: " + "; ".join(f"{where}: {p}" for p in found)
            )

    def _result(self) -> RunResult:
        outcomes = [
            self.outcomes.get(i, JobOutcome(j, "failed", error="not run")) for i, j in enumerate(self.jobs)
        ]
        stages = [self.stage_outcomes.get(j, blocked(t, "not run")) for j, (_, t) in enumerate(self.tasks)]
        return RunResult(outcomes, stages)

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(list(self.live.values()), force=True)
        with contextlib.suppress(Exception):
            self.client.run(stop_run, self.runner.run_id)

    # -- the fetcher thread

    def _fetch(self) -> None:
        """Fetch finished futures' results (a network round trip each) and watch for workers."""
        last_watch = 0.0
        while not self.closing.is_set():
            try:
                kind, index, fut = self.done.get(timeout=0.5)
                try:
                    result = fut.result()
                except BaseException as exc:  # the task failed; cancelled after Ctrl-C
                    result = exc
                self.ready.put((kind, index, fut, result))
            except queue.Empty:
                pass
            if time.monotonic() - last_watch > 1.0:
                last_watch = time.monotonic()
                try:
                    self._watch()
                except BaseException as exc:  # no worker joined, none declares the GPU asked for
                    self.fatal = exc

    def _watch(self) -> None:
        with self.lock:
            waiting = any(not f.done() for f in self.live.values())
        if waiting:
            workers = self.runner.check_workers(self.since, gpu=self.resources is not None)
            if workers:
                self._learn(workers)
            gone = [a for i, a in self.probe_for.items() if a not in workers and not self.probes[i].done()]
            if gone:  # its pinned probe can never run, and every render waits for it
                raise WorkerError(
                    f"Dask worker {gone[0]} left before it checked --datasets-dir, so nothing was rendered; "
                    "run the command again"
                )

    def _learn(self, workers: dict[str, dict[str, Any]]) -> None:
        self.hosts = threads_by_host(workers)
        self.cpu_workers = sorted(a for a, w in workers.items() if not w.get("resources", {}).get("GPU", 0))

    # -- events from workers -> the local pool's Event stream

    def _begin_events(self) -> None:
        slots: dict[tuple[str, int], int] = {}

        def handle(event: tuple[float, dict[str, Any]]) -> None:
            msg = event[1]
            key, kind = msg["key"], msg["kind"]
            with self.lock:
                job = self.by_key.get(key)
                if job is None or key in self.finished:
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
            self.emit(Event(kind, slot, job, value=value, message=message))

        self.client.subscribe_topic(f"camsim-{self.runner.run_id}", handle)


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
