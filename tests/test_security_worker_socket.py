"""The worker connection: a UNIX socket in an owner-only folder, a key the intruder lacks, nothing left open.

`ObservedWorker` is the real BlenderWorker; it only records the address it listens on and lets an
intruder (a client without the key) connect before Blender does.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
from multiprocessing.connection import AuthenticationError, Client
from pathlib import Path

import psutil
import pytest

from camsim.blender.worker import BlenderWorker, WorkerOptions

pytestmark = pytest.mark.blender


class ObservedWorker(BlenderWorker):
    def _listen(self):  # type: ignore[no-untyped-def]
        sock, address, family = super()._listen()
        self.observed = {"address": address, "family": family}
        if family == "AF_UNIX":
            self.observed["dir_mode"] = stat.S_IMODE(os.stat(os.path.dirname(address)).st_mode)
            self.observed["sock_mode"] = stat.S_IMODE(os.stat(address).st_mode)
            self.observed["dir_owner"] = os.stat(os.path.dirname(address)).st_uid
        else:
            self.observed["host"] = sock.getsockname()[0]
        self.intruder: dict[str, object] = {}
        threading.Thread(target=self._intrude, args=(address, family), daemon=True).start()
        return sock, address, family

    def _intrude(self, address: str, family: str) -> None:
        addr: object = address
        if family == "AF_INET":
            host, port = address.rsplit(":", 1)
            addr = (host, int(port))
        try:
            conn = Client(addr, family=family, authkey=b"not the key")
            self.intruder["result"] = "connected"
            conn.close()
        except AuthenticationError as exc:
            self.intruder["result"] = f"rejected: {exc}"
        except Exception as exc:
            self.intruder["result"] = f"failed: {type(exc).__name__}: {exc}"


class SilentIntruderWorker(BlenderWorker):
    """The real worker, with a client that connects first and then never says a word."""

    def _listen(self):  # type: ignore[no-untyped-def]
        sock, address, family = super()._listen()
        self.silent = socket.socket(socket.AF_UNIX if family == "AF_UNIX" else socket.AF_INET)
        host, _, port = address.rpartition(":")
        self.silent.connect(address if family == "AF_UNIX" else (host, int(port)))
        return sock, address, family


def _listening_inet(pid: int) -> list[object]:
    try:
        return [c for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    except psutil.NoSuchProcess:
        return []


def test_worker_socket_is_private_rejects_a_client_without_the_key_and_is_gone_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker = ObservedWorker(WorkerOptions(log_dir=tmp_path, timeout=120, name="security"))
    with worker:
        seen = worker.observed
        if seen["family"] == "AF_UNIX":
            assert seen["dir_mode"] == 0o700 and seen["dir_owner"] == os.getuid()
            assert seen["sock_mode"] & 0o077 == 0  # no access for group or others
        else:
            assert seen["host"] == "127.0.0.1"
        assert str(worker.intruder.get("result", "")).startswith("rejected"), worker.intruder
        assert worker.request({"cmd": "hello"})["pid"] == worker.pid
        # The key went over stdin: nothing key-like on the command line (readable by every user).
        assert not [a for a in psutil.Process(worker.pid).cmdline() if re.fullmatch(r"[0-9a-f]{32,}", a)]
        # Once Blender is connected nothing listens any more: the socket and its folder are gone.
        if seen["family"] == "AF_UNIX":
            assert not os.path.exists(os.path.dirname(seen["address"]))
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with pytest.raises(OSError):  # nobody accepts connections there any more
                probe.connect(seen["address"])
            probe.close()
        assert not _listening_inet(os.getpid()) and not _listening_inet(worker.pid or 0)
        blender_pid = worker.pid
    assert blender_pid is not None and not psutil.pid_exists(blender_pid)
    assert "rejected a connection that failed authentication" in caplog.text


def test_worker_exits_when_its_host_goes_away(tmp_path: Path) -> None:
    """A host killed with SIGKILL cannot clean up: the worker notices its stdin closing and exits."""
    worker = BlenderWorker(WorkerOptions(log_dir=tmp_path, timeout=120, name="orphan")).start()
    proc = psutil.Process(worker.pid)
    assert worker.proc is not None and worker.proc.stdin is not None
    worker.proc.stdin.close()  # what the kernel does to the pipe when the host dies
    try:
        proc.wait(timeout=30)
    finally:
        worker.kill()
    assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def test_a_silent_client_cannot_stall_the_worker_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import camsim.blender.worker as worker_module

    monkeypatch.setattr(worker_module, "AUTH_TIMEOUT", 0.5)
    worker = SilentIntruderWorker(
        WorkerOptions(log_dir=tmp_path, timeout=60, startup_timeout=60, name="silent")
    )
    answered: dict[str, bool] = {}

    def start() -> None:
        with worker:
            answered["hello"] = worker.request({"cmd": "hello"})["pid"] == worker.pid

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(60)  # without the handshake timeout the start would wait for the silent client forever
    worker.silent.close()
    assert answered.get("hello"), "the worker start stalled behind a client that never authenticated"
    assert "rejected a connection that failed authentication" in caplog.text
