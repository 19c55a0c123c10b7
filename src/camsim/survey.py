"""Planning at scale: read every scene's frame range, camera cuts and camera check in parallel, cached.

Planning needs, of each scene, what only Blender can read (`scene_range`). `survey_local` reads them with
`workers` threads, each driving one warm Blender, and yields each scene as it is read, so planning (and
rendering) starts with the first; what was read goes to the manifest (`scene_record`), and a rerun reuses
it for every file whose size, mtime and chosen scene are unchanged, without starting Blender.
`dask.DaskRunner.survey` does the same reading as Dask tasks. A scene's error texts are planning's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from camsim import prestart
from camsim.blender.worker import BlenderWorker, options_from_config
from camsim.config import RenderConfig
from camsim.errors import CamsimError, WorkerError
from camsim.manifest import SceneRecord, scene_cache_valid
from camsim.planning import SceneRange
from camsim.render import check_blend_file
from camsim.sampling import SceneEntry
from camsim.spares import Spares

log = logging.getLogger(__name__)

READ_RETRIES = 1
"""A scene whose read crashed or hung Blender is read once more on a fresh Blender before it fails."""
JOIN_TIMEOUT = 15.0
"""Seconds an abandoned survey waits for each reader thread after killing its Blender."""


@dataclass(frozen=True)
class SceneRead:
    """What planning knows of one scene: its range (None when it could not be read) or why it fails."""

    scene: SceneEntry
    range: SceneRange | None
    error: str | None = None
    """Why the scene cannot be planned (unreadable, no camera, a camera camsim refuses), else None."""
    cached: bool = False
    """Taken from the manifest's cache: no Blender opened the file."""
    record: SceneRecord | None = None
    """What the manifest caches for the scene; None when the read should not be cached (Blender crashed
    or hung on it, the file vanished)."""


@dataclass(frozen=True)
class Reading:
    """The result of reading one file (what a reader thread or a Dask task hands back)."""

    range: SceneRange | None
    error: str | None = None
    crashed: bool = False
    """Blender died or hung on the file: its worker must be replaced, and the error is not cached."""


def read_scene(get_worker: Callable[[], BlenderWorker], path: Path, scene_name: str | None) -> Reading:
    """Read one scene with a warm Blender (started by `get_worker` only when the file looks like a .blend).

    The errors are planning's texts: check_blend_file's, "scene has no camera", "Blender could not read
    the scene: ...", or the camera problem (then the range is known as well)."""
    try:
        check_blend_file(path)
        worker = get_worker()
    except CamsimError as exc:
        return Reading(None, str(exc), crashed=isinstance(exc, WorkerError))
    try:
        info = worker.scene_range(path.resolve(), scene_name)
    except WorkerError as exc:
        return Reading(None, f"Blender could not read the scene: {exc}", crashed=True)
    except CamsimError as exc:
        return Reading(None, str(exc))
    if not info.has_camera:
        return Reading(None, "scene has no camera")
    found = SceneRange(info.frame_start, info.frame_end, tuple(info.cuts), info.camera_problem)
    return Reading(found, info.camera_problem)


def scene_record(
    scene: SceneEntry,
    range_or_error: SceneRange | str,
    scene_name: str | None,
    stat: os.stat_result | None = None,
) -> SceneRecord | None:
    """The manifest's cache entry for a scene read as `range_or_error`, stamped with the file's size and
    mtime (`stat`: taken before the read, so a file changed while it was read is read again next time).
    None when the file cannot be stat'ed (nothing to validate the cache against)."""
    if stat is None:
        try:
            stat = os.stat(scene.path)
        except OSError:
            return None
    record = SceneRecord(str(scene.path.resolve()), stat.st_size, stat.st_mtime_ns, scene_name)
    if isinstance(range_or_error, str):
        record.error = range_or_error
    else:
        record.start, record.end = range_or_error.start, range_or_error.end
        record.cuts = list(range_or_error.cuts)
        record.camera_problem = range_or_error.camera_problem
    return record


def from_record(scene: SceneEntry, record: SceneRecord) -> SceneRead:
    """A cached scene as planning sees it."""
    found = None
    if record.start is not None and record.end is not None and not record.error:
        found = SceneRange(record.start, record.end, tuple(record.cuts), record.camera_problem)
    return SceneRead(scene, found, record.error or record.camera_problem, cached=True, record=record)


def finish_read(
    scene: SceneEntry, reading: Reading, scene_name: str | None, stat: os.stat_result | None
) -> SceneRead:
    """A fresh read as planning sees it, with its cache entry (none for a crash or an un-stat'able file)."""
    record = None
    if not reading.crashed and stat is not None:
        record = scene_record(
            scene, reading.range if reading.range else reading.error or "", scene_name, stat
        )
    return SceneRead(scene, reading.range, reading.error, cached=False, record=record)


def partition(
    scenes: list[SceneEntry], cache: dict[str, SceneRecord], scene_name: str | None
) -> tuple[list[SceneRead], list[SceneEntry]]:
    """(the scenes the cache answers, the scenes Blender must read), each in the given order."""
    cached, fresh = [], []
    for scene in scenes:
        record = cache.get(scene.name)
        if record is not None and scene_cache_valid(record, scene.path, scene_name):
            cached.append(from_record(scene, record))
        else:
            fresh.append(scene)
    return cached, fresh


def stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def survey_local(
    scenes: list[SceneEntry],
    config: RenderConfig,
    workers: int,
    cache: dict[str, SceneRecord],
    scene_name: str | None,
    spare: queue.Queue[BlenderWorker],
) -> Iterator[SceneRead]:
    """Every scene's SceneRead: the cached ones first (no Blender), then the rest in completion order, read
    by up to `workers` threads, each driving one warm Blender (`worker-1`, `worker-2`, ...).

    A reader with no scene left puts its Blender, still warm, into `spare` for the render pool (the caller
    closes what it does not take). A Blender that dies or hangs on a scene fails that scene and is replaced.
    Closing the iterator early (or Ctrl-C while it waits) kills every Blender it started and still holds.
    """
    done, fresh = partition(scenes, cache, scene_name)
    yield from done
    if not fresh:
        return
    todo: queue.Queue[SceneEntry] = queue.Queue()
    for scene in fresh:
        todo.put(scene)
    results: queue.Queue[SceneRead | BaseException] = queue.Queue()
    stop = threading.Event()
    lock = threading.Lock()
    held: list[BlenderWorker] = []  # started and not handed to `spare`
    handed: list[BlenderWorker] = []

    def reader(index: int) -> None:
        current: list[BlenderWorker] = []
        starts = 0
        expecting = False

        def get_worker() -> BlenderWorker:
            nonlocal starts
            if current and current[0].alive:
                return current[0]
            if current:
                current.pop().kill()
            starts += 1
            name = f"worker-{index + 1}" + (f"-r{starts - 1}" if starts > 1 else "")
            options = options_from_config(config, name)
            early = prestart.take(options)  # the Blender the CLI started while it read the command line
            w = early or BlenderWorker(options)
            with lock:
                if stop.is_set():
                    w.kill()
                    raise WorkerError("the survey was stopped")
                held.append(w)
            current.append(w)
            if early is None:
                w.start()
            if stop.is_set():  # stopped while it started: the abort may have missed it
                w.kill()
                raise WorkerError("the survey was stopped")
            return w

        try:
            while not stop.is_set():
                try:
                    scene = todo.get_nowait()
                except queue.Empty:
                    break
                if todo.empty() and isinstance(spare, Spares) and not expecting:
                    spare.expect()  # the last scene: this reader's Blender is coming to the render slots
                    expecting = True
                stat = stat_or_none(scene.path)
                for attempt in range(1 + READ_RETRIES):
                    reading = read_scene(get_worker, scene.path, scene_name)
                    if reading.crashed and current:
                        current.pop().kill()
                    if stop.is_set() or not reading.crashed:
                        break
                    if attempt < READ_RETRIES:
                        log.warning("%s: %s; reading it again on a fresh Blender", scene.name, reading.error)
                if stop.is_set():
                    break
                results.put(finish_read(scene, reading, scene_name, stat))
            if current and current[0].alive and not stop.is_set():
                with lock:
                    if not stop.is_set():
                        held.remove(current[0])
                        handed.append(current[0])
                        spare.put(current.pop())
        except BaseException as exc:  # a bug of ours: the consumer re-raises it
            results.put(exc)
        finally:
            for w in current:
                w.kill()
            if expecting:
                spare.settle()  # type: ignore[attr-defined]

    threads = [
        threading.Thread(target=reader, args=(i,), name=f"camsim-survey-{i}", daemon=True)
        for i in range(max(1, min(workers, len(fresh))))
    ]
    for t in threads:
        t.start()
    completed = False
    try:
        for _ in range(len(fresh)):
            item = _next_result(results, threads)
            if isinstance(item, BaseException):
                raise item
            yield item
        completed = True
    finally:
        if completed:  # every scene read: the readers hand their Blenders over and end by themselves
            for t in threads:
                t.join(timeout=JOIN_TIMEOUT)
        else:
            _abandon(stop, lock, held, handed, spare, threads)


def _next_result(
    results: queue.Queue[SceneRead | BaseException], threads: list[threading.Thread]
) -> SceneRead | BaseException:
    while True:
        try:
            return results.get(timeout=0.2)
        except queue.Empty:
            if not any(t.is_alive() for t in threads) and results.empty():
                return RuntimeError("the scene readers ended before reading every scene")


def _abandon(
    stop: threading.Event,
    lock: threading.Lock,
    held: list[BlenderWorker],
    handed: list[BlenderWorker],
    spare: queue.Queue[BlenderWorker],
    threads: list[threading.Thread],
) -> None:
    """The survey was closed early (or failed): kill every Blender it started that nobody took yet, the ones
    still reading and the ones waiting in `spare`."""
    with lock:
        stop.set()
        victims = list(held)
    for w in victims:
        w.kill()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    others = []
    with contextlib.suppress(queue.Empty):
        while True:
            w = spare.get_nowait()
            if any(w is h for h in handed):
                w.kill()
            else:
                others.append(w)
    for w in others:
        spare.put(w)
