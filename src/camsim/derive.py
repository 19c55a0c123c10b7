"""Derived datasets (interpolation, sensor emulation) over one sequence or a whole dataset folder.

INPUT is a sequence folder (written to OUTPUT itself) or any folder holding sequences below it (each
written to the same relative path below OUTPUT). Every derived output records how it was made: what it
is (`kind`), the settings that change what it holds, a hash of the two (`settings_hash`) and the SHA-256
of the source's transforms.json. A rerun never mixes two makings in one folder: a complete output made the
same way is skipped with --allow-skips, one made otherwise is refused (one line, exit 2) unless
--overwrite, which first removes everything a camsim sequence folder can hold there.

Planning (`plan`) reads and checks everything before it creates the output folders, so a bad input fails
before anything is written or a progress bar is drawn; `execute` then runs the jobs, in a process pool
when there are several, with progress funnelled back.

One module, over 400 lines: planning, records and the process pool of derived outputs are one decision path
(keep, redo or refuse each sequence, then run the rest).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import queue as queue_module
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from camsim import transforms
from camsim.errors import ConfigError, DatasetError, UserInputError
from camsim.fileio import make_output_dir
from camsim.loader import find_sequences
from camsim.resume import Reuse, clear_outputs, digest, holds_output

log = logging.getLogger(__name__)

Progress = Callable[[int], None] | None

UNCOMPARED = frozenset({"batch_size", "workers"})
"""Settings that never change what is written (memory and parallelism)."""


@dataclass(frozen=True)
class Record:
    """How a derived output is made: its kind, the settings that change it, and its source's identity."""

    kind: str
    """`interpolate`, or the sensor: `spad`, `rgb`, `events`, `imu` (`other`: a folder camsim did not derive)."""
    settings: dict[str, Any] = field(default_factory=dict)
    source_sha256: str | None = None
    """SHA-256 of the source's transforms.json (None when an older camsim did not record it)."""
    complete: bool = True
    recorded: bool = True
    """The output recorded its settings_hash (an older camsim did not: what it used cannot be compared)."""

    @property
    def settings_hash(self) -> str:
        return settings_hash(self.kind, self.settings)


def compared(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in UNCOMPARED}


def settings_hash(kind: str, settings: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the kind and the compared settings (canonical JSON)."""
    return digest({"kind": kind, "settings": compared(settings)})


def source_sha256(folder: str | os.PathLike[str]) -> str:
    """SHA-256 of a sequence's transforms.json: changes when the source is re-rendered or edited."""
    return hashlib.sha256((Path(folder) / "transforms.json").read_bytes()).hexdigest()


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_record(folder: str | os.PathLike[str]) -> Record | None:
    """How the output in `folder` was made; None when it holds no output at all.

    Emulators write params.json then (spad, rgb, events) transforms.json last; the IMU writes params.json
    last; interpolation writes transforms.json (with its `interpolation` block) last.
    """
    folder = Path(folder)
    if not holds_output(folder):
        return None
    params = _json(folder / "params.json")
    meta = _json(folder / "transforms.json")
    if params is not None and isinstance(params.get("sensor"), str):
        sensor = params["sensor"]
        config = params.get("config") if isinstance(params.get("config"), dict) else {}
        complete = sensor == "imu" or (meta is not None and _valid(folder))
        sha = params.get("source_transforms_sha256")
        return Record(sensor, dict(config), sha, complete, "settings_hash" in params)
    if meta is not None and isinstance(meta.get("interpolation"), dict):
        block = meta["interpolation"]
        settings = block.get("settings") or {k: block[k] for k in ("factor", "beta") if k in block}
        sha = block.get("source_transforms_sha256")
        return Record("interpolate", dict(settings), sha, _valid(folder), "settings_hash" in block)
    if meta is not None or _json(folder / "settings.json") is not None:
        return Record("other")  # a render (finished, or started: it records its settings first)
    return Record("unknown", complete=False)


def _valid(folder: Path) -> bool:
    try:
        transforms.read(folder)
    except DatasetError:
        return False
    return True


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def difference(old: Record, new: Record) -> str | None:
    """The first way `old` was made differently from `new`, naming the setting; None when they match."""
    if old.kind != new.kind:
        return f"camsim {_what(old.kind)} (this run: {_what(new.kind)})"
    if not old.recorded:
        return "an older camsim that did not record its settings"
    was, now = compared(old.settings), compared(new.settings)
    changed = [k for k in sorted({*was, *now}) if json.dumps(was.get(k)) != json.dumps(now.get(k))]
    if changed:
        k = changed[0]
        more = (
            f" and {len(changed) - 1} more setting{'s' if len(changed) > 2 else ''}"
            if len(changed) > 1
            else ""
        )
        return f"{_flag(k)}={json.dumps(was.get(k))} (this run: {json.dumps(now.get(k))}){more}"
    if old.source_sha256 and new.source_sha256 and old.source_sha256 != new.source_sha256:
        return "another version of its source (the source's transforms.json changed since)"
    return None


def _what(kind: str) -> str:
    return "interpolate" if kind == "interpolate" else f"emulate {kind}"


Action = Literal["run", "clear", "skip"]


def decide(folder: Path, wanted: Record, reuse: Reuse) -> Action:
    """What to do with an output folder: write it (`run`), empty it then write it (`clear`) or keep it (`skip`).

    Raises UserInputError (one line) when the folder holds something this run may not keep or replace."""
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"output path exists and is not a folder: {folder}")
    old = read_record(folder)
    if old is None:
        return "run"
    if reuse.overwrite:
        return "clear"
    if old.kind == "other":
        raise UserInputError(
            f"{folder} already holds a sequence camsim did not derive (a render?); pass --overwrite to replace it"
        )
    if not reuse.resume:
        what = "files of an unfinished run" if old.kind == "unknown" else f"camsim {_what(old.kind)} output"
        if old.kind != "unknown" and not old.complete:
            what = "unfinished " + what
        raise UserInputError(
            f"{folder} already holds {what}; pass --allow-skips to keep it (skipped when complete and made "
            "with the same settings, redone when unfinished) or --overwrite to replace it"
        )
    if old.kind == "unknown":
        return "clear"  # an unfinished run that left no record: redone from scratch, nothing is kept
    diff = difference(old, wanted)
    if diff:
        raise UserInputError(
            f"{folder} holds output made with {diff}; pass --overwrite to replace it, or rerun with the "
            "settings it was made with"
        )
    return "skip" if old.complete and looks_complete(folder, old.kind) else "clear"


IMU_FILES = (
    "imu0/data.csv",
    "imu0/data_noiseless.csv",
    "imu0/sensor.yaml",
    "state_groundtruth_estimate0/data.csv",
)


def looks_complete(folder: Path, kind: str) -> bool:
    """Every file a complete output lists is there and not cut short (fileio.looks_whole: cheap, no decoding).
    A damaged output is redone whole by --allow-skips (its streams cannot restart in the middle)."""
    from camsim.fileio import looks_whole

    try:
        if kind == "imu":
            names: list[str] = list(IMU_FILES)
        else:
            meta = transforms.read(folder)
            names = [v for k, v in meta.items() if k.endswith("file_path") and isinstance(v, str)]
            names += [v for fr in meta["frames"] for k, v in fr.items() if k.endswith("file_path")]
            names += [v for v in meta.get("event_previews") or [] if isinstance(v, str)]
        return all(looks_whole(transforms.resolve_path(folder, n)) for n in names)
    except (DatasetError, TypeError):
        return False


def prepare_folder(folder: str | os.PathLike[str], overwrite: bool) -> Path:
    """The output folder of one sequence, ready to be written: refused when it holds output (unless
    `overwrite`, which empties it first), created otherwise."""
    folder = Path(folder)
    if holds_output(folder):
        if not overwrite:
            old = read_record(folder)
            what = (
                f"camsim {_what(old.kind)} output"
                if old and old.kind not in ("other", "unknown")
                else "a dataset"
            )
            raise UserInputError(f"{folder} already holds {what}; pass --overwrite to replace it")
        clear_outputs(folder)
    return make_output_dir(folder)


# ------------------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class Job:
    """One sequence to derive: where from, where to, how much progress it reports, and what to do."""

    source: Path
    output: Path
    name: str
    """Its path below INPUT (the sequence folder's name for a single sequence)."""
    total: int
    action: Action
    record: Record


@dataclass
class Plan:
    jobs: list[Job]
    tree: bool = False
    """INPUT is a folder of sequences (errors then name the sequence)."""

    @property
    def total(self) -> int:
        """Progress units of the jobs that run: exactly what `execute` advances."""
        return sum(j.total for j in self.jobs if j.action != "skip")

    @property
    def skipped(self) -> list[Job]:
        return [j for j in self.jobs if j.action == "skip"]

    @property
    def to_run(self) -> list[Job]:
        return [j for j in self.jobs if j.action != "skip"]


def mirror(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> list[tuple[Path, Path, str]]:
    """(source, output, name) of every sequence of `src`: itself when it is one, else each one below it
    (outputs at the same relative path below `dst`; sequences inside `dst` are outputs, not sources)."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise DatasetError(f"no transforms.json at {src} (no such file or folder)")
    if src.is_file():
        if src.name != "transforms.json":
            raise DatasetError(
                f"{src} is a file, not a sequence folder (with transforms.json) or a folder of them"
            )
        src = src.parent
    if (src / "transforms.json").exists():
        if dst.resolve() == src.resolve():
            raise UserInputError("the output folder must differ from the input folder")
        return [(src, dst, src.name)]
    if dst.resolve() == src.resolve():
        raise UserInputError("the output folder must differ from the input folder")
    dst_real = dst.resolve()
    inside = dst_real.is_relative_to(src.resolve())  # OUTPUT below INPUT: what is below OUTPUT is output
    seqs = [s for s in find_sequences(src) if not (inside and s.resolve().is_relative_to(dst_real))]
    if not seqs:
        raise DatasetError(f"no transforms.json under {src}")
    out = [(s, dst / s.relative_to(src), s.relative_to(src).as_posix()) for s in seqs]
    sources = {s.resolve() for s in seqs}
    for _, target, name in out:
        if target.resolve() in sources:
            raise UserInputError(
                f"{name}: its output {target} would be a source sequence; choose another OUTPUT"
            )
    return out


def plan(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    prepare: Callable[[Path], tuple[Record, int]],
    reuse: Reuse | None = None,
) -> Plan:
    """Read every source (`prepare(source)` validates it, returns the record its output will carry and its
    progress total) and check every output folder. Raises UserInputError on the first problem, prefixed with
    the sequence's name when INPUT is a folder of sequences, having written nothing; when all is well, the
    output folders of the jobs that run are created (the last check: can they be written?)."""
    reuse = reuse or Reuse()
    pairs = mirror(src, dst)
    tree = pairs[0][1] != Path(dst)
    jobs = []
    for source, output, name in pairs:
        try:
            record, total = prepare(source)
        except UserInputError as exc:
            if not tree:
                raise
            raise type(exc)(f"{name}: {exc}") from None
        action = decide(output, record, reuse)  # its errors name the output folder
        jobs.append(Job(source, output, name, total, action, record))
    result = Plan(jobs, tree)
    make_folders(result)
    return result


def make_folders(p: Plan) -> None:
    """Create the output folders of the jobs that run (the last check before any work: writable?)."""
    for job in p.to_run:
        make_output_dir(job.output)


# ------------------------------------------------------------------------------------------ running


def cpu_workers(workers: int) -> int:
    """--workers: 0 means one per CPU this process may use (camsim.cpus.available_cpus)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"--workers must be >= 0 (0: one per CPU core), got {workers!r}")
    from camsim.cpus import available_cpus

    return workers or available_cpus()


_QUEUE: Any = None


def _init_worker(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def _in_worker(fn: Callable[[Job, int, Progress], Any], job: Job, inner: int) -> int:
    """Run one job in a pool process; progress goes to the parent through the queue. Returns its count."""
    count = 0

    def report(n: int) -> None:
        nonlocal count
        count += n
        _QUEUE.put(n)

    fn(job, inner, report)
    return count


def execute(
    p: Plan, fn: Callable[[Job, int, Progress], Any], workers: int = 0, progress: Progress = None
) -> None:
    """Run `fn(job, inner_workers, progress)` for every job that is not skipped; `fn` empties the output
    first when the job's action is `clear`.

    One job: in this process with all `workers`. Several: a pool of min(workers, jobs) processes, each job
    getting workers // processes for itself. Progress reaches `progress` in this process either way.
    """
    w = cpu_workers(workers)
    jobs = p.to_run
    procs = min(w, len(jobs))
    if procs <= 1:
        for job in jobs:
            _named(fn, job, w, progress, p.tree)
        return
    inner = max(1, w // procs)
    q = multiprocessing.get_context().Queue()
    reported = counted = 0

    def drain(block: bool) -> None:
        nonlocal reported
        while True:
            try:
                n = q.get(timeout=0.5) if block else q.get_nowait()
            except queue_module.Empty:
                return
            reported += n
            if progress:
                progress(n)
            block = False

    pool = ProcessPoolExecutor(max_workers=procs, initializer=_init_worker, initargs=(q,))
    try:
        pending: dict[Future, Job] = {pool.submit(_in_worker, fn, job, inner): job for job in jobs}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain(False)
            for fut in done:
                job = pending.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    for other in pending:
                        other.cancel()
                    if isinstance(exc, UserInputError) and p.tree:
                        raise type(exc)(f"{job.name}: {exc}") from None
                    raise exc
                counted += fut.result()
        while reported < counted:
            before = reported
            drain(True)
            if reported == before:  # pragma: no cover - a lost message must not hang the command
                log.debug("progress queue went quiet at %d of %d", reported, counted)
                break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        q.close()


def _named(fn: Callable[[Job, int, Progress], Any], job: Job, w: int, progress: Progress, tree: bool) -> None:
    try:
        fn(job, w, progress)
    except UserInputError as exc:
        if not tree:
            raise
        raise type(exc)(f"{job.name}: {exc}") from None
