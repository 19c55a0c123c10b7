"""Fixtures of the fault-injection suite: a tiny create-datasets run as a subprocess, watched with psutil.

Every run gets a random token in its environment; Blender workers inherit it, so a leftover process
of *this* run is found even after it has been re-parented, without confusing it with the workers of
anyone else using the machine.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest

from camsim import transforms
from camsim.fileio import TMP_MARK, read_exr_parts, read_image

SEQUENCES_PER_SCENE = 3  # 3 demo scenes x 3 = 9 sequences
TINY = [
    "--sequences-per-scene", str(SEQUENCES_PER_SCENE), "--num-frames", "3",
    "--render-config.width", "32", "--render-config.height", "24",
    "--render-config.max-samples", "2", "--render-config.adaptive-threshold", "0",
    "--render-config.no-use-denoising", "--render-config.device-type", "cpu",
    "--render-config.jobs", "2", "--render-config.threads", "1",
]  # fmt: skip


@dataclass
class CamsimRun:
    """One `camsim create-datasets` subprocess and every process it started (recorded while it ran)."""

    proc: subprocess.Popen[str]
    token: str
    datasets: Path
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create_time of every descendant
    _stop: threading.Event = field(default_factory=threading.Event)
    stdout: str = ""
    stderr: str = ""

    def _watch(self) -> None:
        try:
            me = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                for child in me.children(recursive=True):
                    self.seen.setdefault(child.pid, child.create_time())
            except psutil.Error:
                pass
            time.sleep(0.02)

    def workers(self) -> list[psutil.Process]:
        """Live Blender worker processes of this run (children running the service script)."""
        out = []
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    if any("service.py" in a for a in child.cmdline()) and child.status() != "zombie":
                        out.append(child)
                except psutil.Error:
                    continue
        except psutil.Error:
            pass
        return out

    def serving_workers(self) -> list[psutil.Process]:
        """Workers that have connected to the host (past their start, which has its own longer timeout)."""
        out = []
        for w in self.workers():
            try:
                if w.net_connections(kind="unix"):
                    out.append(w)
            except psutil.Error:
                continue
        return out

    def wait(self, timeout: float = 240) -> int:
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            raise
        finally:
            self._stop.set()
        return self.proc.returncode

    def wait_for_rendering(self, timeout: float = 120) -> None:
        """Block until the first frame has reached its final path (planning is over, workers render)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(self.datasets.glob("renders/*/*/frames/frame_*.png")):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"camsim exited before rendering: {self.proc.communicate()}")
            time.sleep(0.02)
        raise AssertionError("no frame rendered in time")

    def leftovers(self, grace: float = 15.0) -> list[str]:
        """Processes of this run still alive after `grace` seconds: descendants seen, or carrying our token."""
        deadline = time.monotonic() + grace
        while True:
            alive = []
            for pid, created in self.seen.items():
                try:
                    p = psutil.Process(pid)
                    if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{pid} {' '.join(p.cmdline())}")
                except psutil.Error:
                    continue
            for p in psutil.process_iter(["pid", "cmdline"]):
                try:
                    cmd = " ".join(p.info["cmdline"] or [])
                    if "service.py" in cmd and p.environ().get("CAMSIM_FAULT_TOKEN") == self.token:
                        alive.append(f"{p.pid} {cmd}")
                except psutil.Error:
                    continue
            if not alive or time.monotonic() > deadline:
                return sorted(set(alive))
            time.sleep(0.2)


def start_create_datasets(scenes: Path, datasets: Path, logs: Path, *extra: str) -> CamsimRun:
    token = uuid.uuid4().hex
    env = {**os.environ, "CAMSIM_FAULT_TOKEN": token, "CAMSIM_LOG": "WARNING", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "camsim", "create-datasets", "--scenes-dir", str(scenes),
           "--datasets-dir", str(datasets), "--render-config.log-dir", str(logs), *TINY, *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    run = CamsimRun(proc, token, datasets)
    threading.Thread(target=run._watch, daemon=True).start()
    return run


def run_camsim(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAMSIM_LOG": "WARNING", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "camsim", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip


def file_list(datasets: Path) -> list[str]:
    return sorted(str(p.relative_to(datasets)) for p in datasets.rglob("*") if p.is_file())


def assert_no_partial_files(datasets: Path) -> None:
    """Every file at a final path decodes, and no temporary file or scratch folder is left."""
    leftovers = [str(p) for p in datasets.rglob(f"*{TMP_MARK}*")]
    assert not leftovers, f"temporaries left behind: {leftovers}"
    for p in datasets.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix == ".exr":
            assert read_exr_parts(p), p
        elif p.suffix == ".png":
            assert read_image(p).size > 0, p
        elif p.name == "transforms.json":
            transforms.read(p)
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".npy":
            np.load(p, allow_pickle=False)
        else:
            raise AssertionError(f"unexpected file {p}")


def finish_and_check(scenes: Path, datasets: Path, logs: Path, reference: list[str]) -> None:
    """Resume with --allow-skips; the dataset then validates and has exactly the reference's files."""
    resumed = start_create_datasets(scenes, datasets, logs, "--allow-skips")
    code = resumed.wait()
    assert code == 0, resumed.stderr[-3000:]
    left = resumed.leftovers()
    assert not left, left
    check = run_camsim("validate", str(datasets / "renders"))
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    files = file_list(datasets)
    assert files == reference, (sorted(set(files) - set(reference)), sorted(set(reference) - set(files)))


@pytest.fixture(scope="session")
def scenes_dir(demo_scenes: list[Path]) -> Path:
    return demo_scenes[0].parent


@pytest.fixture(scope="session")
def reference_dataset(scenes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The datasets folder of an uninterrupted run (what every interrupted run must end up as)."""
    root = tmp_path_factory.mktemp("reference")
    run = start_create_datasets(scenes_dir, root / "ds", root / "logs")
    assert run.wait() == 0, run.stderr[-3000:]
    left = run.leftovers()
    assert not left, left
    return root / "ds"


@pytest.fixture(scope="session")
def reference_files(reference_dataset: Path) -> list[str]:
    """The file list of an uninterrupted run (the shape every interrupted run must end up with)."""
    files = file_list(reference_dataset)
    assert len([f for f in files if f.endswith("transforms.json")]) == 3 * SEQUENCES_PER_SCENE
    return files


@pytest.fixture
def fault_rng(request: pytest.FixtureRequest) -> random.Random:
    """The random source of a fault's timing and victims. Its seed is printed (pytest shows it with a
    failure); CAMSIM_FAULT_SEED=N replays a run (timing on a loaded machine still varies)."""
    seed = int(os.environ.get("CAMSIM_FAULT_SEED") or secrets.randbits(32))
    print(f"{request.node.nodeid}: fault seed {seed} (replay: CAMSIM_FAULT_SEED={seed})")
    return random.Random(seed)


@pytest.fixture
def fault_dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield tmp_path / "ds", tmp_path / "logs"
