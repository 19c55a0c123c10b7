"""A Blender started while create-datasets' command line is still being read.

A Blender worker takes about half a second to start (the `bpy` import), and create-datasets needs one as
soon as planning begins; parsing the command line and importing the stages take about as long again. So
the CLI starts one worker, with the options a default configuration gives, before it parses anything
(`begin`), and the first place that would start a worker takes it instead (`take`, through `start_worker`)
when its options are the ones asked for: the start overlaps the parse instead of following it.

Only where the command line alone tells how the first worker starts: its Blender and log folder are read
from it; with an option setting a timeout or script execution, a configuration file, a Dask cluster or
`--help` nothing starts early. A worker nobody took (bad input found, a different configuration) is killed
when the process exits; one that failed to start is forgotten, and the run starts its own and reports that
failure itself.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from camsim.blender.worker import BlenderWorker, WorkerOptions

VALUED = {"--render-config.executable": "executable", "--render-config.log-dir": "log_dir"}
"""Options whose value the early worker takes from the command line (as `--name=value` or `--name value`)."""
SHAPING = (
    "--render-config.timeout",
    "--render-config.autoexec",
    "--render-config.no-autoexec",
    "--config",
    "--cluster",
    "--print-config",
    "--help",
    "-h",
)
"""Options after which a worker started from the default configuration might not be the one the run wants."""

_lock = threading.Lock()
_pending: tuple[threading.Thread, WorkerOptions, list[BlenderWorker]] | None = None


def early_options(args: Sequence[str]) -> WorkerOptions | None:
    """The options of the worker create-datasets with these arguments (after the command name) will start
    first, where the command line alone tells them; None where it may not (or no Blender can start)."""
    from camsim.blender.worker import options_from_config
    from camsim.config import RenderConfig

    values: dict[str, Path] = {}
    for i, a in enumerate(args):
        name, eq, value = a.partition("=")
        name = name.replace("_", "-")
        if name in SHAPING:
            return None
        if name in VALUED:
            if not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("-"):
                    return None
                value = args[i + 1]
            values[VALUED[name]] = Path(value)
    if values.get("executable") is None and importlib.util.find_spec("bpy") is None:
        return None
    return options_from_config(dataclasses.replace(RenderConfig(), **values), "worker-1")


def begin(args: Sequence[str]) -> None:
    """Start create-datasets' first worker in the background, where `early_options(args)` can tell it."""
    global _pending
    options = early_options(args)
    if options is None:
        return
    box: list[BlenderWorker] = []

    def run() -> None:
        w = BlenderWorker(options)
        try:
            w.start()
        except BaseException:  # the run starts its own worker and reports the failure there
            w.kill()
            return
        box.append(w)

    thread = threading.Thread(target=run, name="camsim-prestart", daemon=True)
    with _lock:
        if _pending is not None:
            return
        _pending = (thread, options, box)
    if threading.current_thread() is threading.main_thread():
        # From now on a Blender exists: SIGTERM ends the process like Ctrl-C (exit handlers run, and kill it)
        # already while the command line is parsed (create-datasets keeps this for its whole run).
        signal.signal(signal.SIGTERM, _interrupt)
    thread.start()
    atexit.register(_discard)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _claim(timeout: float | None = None) -> tuple[WorkerOptions, BlenderWorker] | None:
    """The early worker and its options, once (later calls get None); waits for a start still under way."""
    global _pending
    with _lock:
        pending, _pending = _pending, None
    if pending is None:
        return None
    thread, started_with, box = pending
    thread.join(timeout)
    return (started_with, box[0]) if box else None


def take(options: WorkerOptions) -> BlenderWorker | None:
    """The early worker when it started with `options` (its name aside), else None (one with other options
    is killed). Waits for a start still under way; only the first call can return a worker."""
    claimed = _claim()
    if claimed is None:
        return None
    started_with, w = claimed
    if dataclasses.replace(started_with, name=options.name) != options or not w.alive:
        w.kill()
        return None
    return w


def start_worker(options: WorkerOptions) -> BlenderWorker:
    """A started worker with `options`: the early one when it fits, else a new one."""
    return take(options) or BlenderWorker(options).start()


def _discard() -> None:
    """At exit: kill an early worker nobody took."""
    claimed = _claim(timeout=30)
    if claimed is not None:
        claimed[1].kill()
