"""Host side of a Blender worker: one long-lived Blender process that renders many frames and scenes.

The host listens on a UNIX socket in a private (0700) folder, or on 127.0.0.1 where UNIX sockets
do not exist, and hands the worker a random key through its stdin. Connections without the key
are refused by `multiprocessing.connection`'s challenge. The worker's stdout and stderr go to a
log file; every failure names that log and quotes its last lines. The messages are blender/protocol.py's
dataclasses; a service that answers `hello` with another PROTOCOL_VERSION is refused.

One module, over 400 lines: the process, the authenticated socket, timeouts and the typed requests are one
lifecycle (start, talk, kill); splitting them would spread its invariants.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any, TypeVar

from camsim.blender.protocol import (
    PROTOCOL_VERSION,
    BuildScene,
    Cameras,
    CamerasReply,
    FrameObjects,
    FrameObjectsReply,
    Hello,
    HelloReply,
    Message,
    MessageError,
    OpenScene,
    OpenSceneReply,
    RenderFrame,
    RenderFrameReply,
    Request,
    SceneInfo,
    SceneRange,
    SceneRangeReply,
    SceneSettings,
    SetTiming,
    SetTimingReply,
    Shutdown,
)
from camsim.errors import (
    BlenderNotFound,
    ProtocolMismatch,
    RenderFailure,
    SceneError,
    WorkerError,
    WorkerTimeout,
)
from camsim.sampling import frame_map, scaled_range

log = logging.getLogger(__name__)

SERVICE_SCRIPT = Path(__file__).with_name("service.py")
_counter = itertools.count(1)
R = TypeVar("R", bound=Message)


@dataclass(frozen=True)
class WorkerOptions:
    """How to start a worker; derived from RenderConfig by the caller."""

    executable: Path | None = None
    log_dir: Path = Path("logs")
    timeout: float = 600.0
    startup_timeout: float = 120.0
    autoexec: bool = False
    name: str = ""


BLENDER_FLAG = "--render-config.executable"


def require_blender(executable: Path | None, flag: str | None = BLENDER_FLAG) -> None:
    """Raise BlenderNotFound (one line, both remedies) unless a worker can start: an installed Blender
    `executable`, or the `bpy` module importable in this Python (looked up, not imported: that is slow).

    `flag`: the command's option naming an installed Blender; None where the command has none."""
    if executable is not None or importlib.util.find_spec("bpy") is not None:
        return
    here = f"Python {sys.version_info.major}.{sys.version_info.minor} ({sys.executable})"
    remedies = "install bpy in a Python 3.11 environment (pip install bpy==5.0.1; camsim installs it there)"
    remedies += f" or pass {flag} /path/to/blender" if flag else " and run camsim from it"
    raise BlenderNotFound(f"this command needs Blender, and {here} cannot import bpy: {remedies}")


AUTH_TIMEOUT = 5.0
"""Seconds a connecting client has for each step of the key handshake."""


def _set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    whole = int(seconds)
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, int((seconds - whole) * 1e6))
        )


def _tail(path: Path, lines: int = 8) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Fra:")]
    return "\n".join(kept[-lines:])


class BlenderWorker:
    """A warm Blender process. Use as a context manager, or call `start()` and `close()`."""

    service_script: Path = SERVICE_SCRIPT
    """The script Blender runs (protocol.py must lie beside it)."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.name = options.name or f"worker-{next(_counter)}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.log_path: Path | None = None
        self.blender_version: str = ""
        self.device: str = ""
        self.sequences_done = 0
        self._sockdir: str | None = None

    # ---------------------------------------------------------------------------------- lifecycle

    def _command(self, address: str, family: str) -> list[str]:
        args = ["--address", address, "--family", family]
        if self.options.executable is None:
            return [sys.executable, "-u", str(self.service_script), *args]
        scripts = "--enable-autoexec" if self.options.autoexec else "--disable-autoexec"
        return [
            str(self.options.executable), "--background", "--factory-startup", scripts,
            "--python", str(self.service_script), "--", *args,
        ]  # fmt: skip

    def start(self) -> BlenderWorker:
        """Start Blender and wait until it has connected and answered `hello`."""
        require_blender(self.options.executable)
        try:
            self.options.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkerError(f"cannot create log folder {self.options.log_dir}: {exc.strerror}") from None
        self.log_path = (
            self.options.log_dir / f"{self.name}-{os.getpid()}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        )
        key = secrets.token_bytes(32)
        listener, address, family = self._listen()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            with open(self.log_path, "ab") as log_fh:
                self.proc = subprocess.Popen(
                    self._command(address, family),
                    stdin=subprocess.PIPE,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # Ctrl-C reaches the host, which shuts workers down in order
                )
            assert self.proc.stdin is not None
            self.proc.stdin.write(key.hex().encode() + b"\n")
            self.proc.stdin.flush()
            self.conn = self._accept(listener, key)
        except BaseException:
            self.kill()
            raise
        finally:
            listener.close()
            self._remove_sockdir()
        info = self._hello()
        self.blender_version = info.blender_version
        log.debug(
            "%s started: pid %s, Blender %s, log %s", self.name, self.pid, self.blender_version, self.log_path
        )
        return self

    def _hello(self) -> HelloReply:
        """Ask the service who it is; refuse (and stop) one that speaks another protocol version."""
        raw = self.request(Hello(), timeout=self.options.startup_timeout)
        theirs = raw.get("protocol") if isinstance(raw, dict) else None
        if theirs != PROTOCOL_VERSION:
            script = (raw.get("service") if isinstance(raw, dict) else None) or self.service_script
            spoken = "none (it predates protocol versions)" if theirs is None else str(theirs)
            self.close(timeout=5.0)
            raise ProtocolMismatch(
                f"the Blender service {script} speaks protocol {spoken}, this camsim speaks protocol "
                f"{PROTOCOL_VERSION}: run the service.py and protocol.py installed with this camsim "
                f"({SERVICE_SCRIPT.parent})"
            )
        return self._decode(HelloReply, raw, "hello")

    def _listen(self) -> tuple[socket.socket, str, str]:
        if hasattr(socket, "AF_UNIX"):
            self._sockdir = tempfile.mkdtemp(prefix="camsim-")  # mode 0700: only this user can connect
            address = os.path.join(self._sockdir, "worker.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(address)
            os.chmod(address, 0o600)
            sock.listen(1)
            return sock, address, "AF_UNIX"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        host, port = sock.getsockname()
        return sock, f"{host}:{port}", "AF_INET"

    def _accept(self, listener: socket.socket, key: bytes) -> Connection:
        deadline = time.monotonic() + self.options.startup_timeout
        listener.settimeout(0.25)
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise self._died("exited while starting")
            if time.monotonic() > deadline:
                raise WorkerTimeout(
                    f"{self.name} did not connect within {self.options.startup_timeout:.0f} s",
                    str(self.log_path), _tail(self.log_path) if self.log_path else "",
                )  # fmt: skip
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.setblocking(True)
            # A client that connects and never answers must not stall the start: bound each read of
            # the handshake (SO_RCVTIMEO also applies to the raw reads Connection does), then clear it.
            _set_recv_timeout(client, AUTH_TIMEOUT)
            conn = Connection(client.detach())
            try:
                deliver_challenge(conn, key)
                answer_challenge(conn, key)
            except Exception as exc:  # a client without the key: drop it and keep waiting for ours
                conn.close()
                log.warning("%s: rejected a connection that failed authentication (%s)", self.name, exc)
                continue
            with socket.socket(fileno=os.dup(conn.fileno())) as authed:
                _set_recv_timeout(authed, 0.0)
            return conn

    def _remove_sockdir(self) -> None:
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.conn is not None

    def rss_bytes(self) -> int:
        """Resident memory of the Blender process (0 if unknown)."""
        if not self.alive:
            return 0
        try:
            import psutil

            return int(psutil.Process(self.pid).memory_info().rss)
        except Exception:
            return 0

    def close(self, timeout: float = 10.0) -> None:
        """Ask Blender to quit; kill it if it does not."""
        if self.proc is None:
            return
        if self.conn is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.conn.send(Shutdown().to_message())
                if self.conn.poll(timeout):
                    self.conn.recv()
        with contextlib.suppress(Exception):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._release()

    def kill(self) -> None:
        """Kill Blender (and anything it started) at once."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=10)
        self._release()

    def _release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None
        if self.proc is not None and self.proc.stdin:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        self._remove_sockdir()

    def __enter__(self) -> BlenderWorker:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ requests

    def _died(self, what: str) -> WorkerError:
        if self.proc is not None and self.proc.poll() is None:  # the socket can close before the exit is seen
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        code = self.proc.poll() if self.proc else None
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        err = WorkerError(
            f"Blender {self.name} {what} ({how})",
            str(self.log_path),
            _tail(self.log_path) if self.log_path else "",
        )
        self.kill()
        return err

    def request(self, request: Request | dict[str, Any], timeout: float | None = None) -> Any:
        """Send one command and wait for its answer (the reply's JSON), watching for death and the timeout."""
        if self.conn is None or self.proc is None:
            raise WorkerError(f"{self.name} is not running", str(self.log_path))
        msg = request.to_message() if isinstance(request, Request) else request
        limit = self.options.timeout if timeout is None else timeout
        deadline = None if limit is None or limit < 0 else time.monotonic() + limit
        try:
            self.conn.send(msg)
            while not self.conn.poll(0.2):
                if self.proc.poll() is not None:
                    raise self._died(f"died during {msg['cmd']}")
                if deadline is not None and time.monotonic() > deadline:
                    tail = _tail(self.log_path) if self.log_path else ""
                    self.kill()
                    raise WorkerTimeout(
                        f"{self.name} timed out after {limit:.0f} s in {msg['cmd']}", str(self.log_path), tail
                    )
            reply = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise self._died(f"lost its connection during {msg['cmd']}") from None
        if reply["ok"]:
            return reply["result"]
        if reply.get("kind") == "scene":
            raise SceneError(reply["error"])
        raise RenderFailure(f"{reply['error']} (log: {self.log_path})")

    def _decode(self, reply_type: type[R], raw: Any, cmd: str) -> R:
        try:
            return reply_type.from_json(raw)
        except MessageError as exc:
            raise RenderFailure(
                f"{self.name} answered {cmd} with a malformed reply: {exc} (log: {self.log_path})"
            ) from None

    # Typed commands: the whole surface the host uses.

    def open_scene(self, path: Path, settings: SceneSettings, keyframe_multiplier: float) -> SceneInfo:
        """Open `path` with `settings`, then stretch its time by `keyframe_multiplier`: the frame range and
        Blender's time remapping are computed here, on the host (sampling.scaled_range, sampling.frame_map),
        and sent (set_timing)."""
        opened = self._decode(OpenSceneReply, self.request(OpenScene(str(path), settings)), "open_scene")
        m = keyframe_multiplier
        unbaked = opened.unbaked_simulations
        if unbaked and m != 1.0:
            raise SceneError(
                f"scene has unbaked simulations ({', '.join(sorted({x['kind'] for x in unbaked}))}): Blender steps "
                "them once per frame, so --render-config.keyframe-multiplier cannot slow them down; bake them "
                "or use a multiplier of 1"
            )
        start, end = scaled_range(opened.original_frame_start, opened.original_frame_end, m)
        timing = SetTiming(start, end, list(frame_map(*opened.frame_map, m)))
        timed = self._decode(SetTimingReply, self.request(timing), "set_timing")
        return SceneInfo.of(opened, timing, opened.fps * m, timed)

    def scene_range(self, path: Path, scene: str | None = None) -> SceneRangeReply:
        """What planning reads of `scene` (default: the file's active scene) in `path`, settings unchanged."""
        raw = self.request(SceneRange(str(path), self.options.autoexec, scene))
        return self._decode(SceneRangeReply, raw, "scene_range")

    def cameras(self, frames: list[int], camera: str | None = None) -> CamerasReply:
        """Camera state per frame (and rigid objects' matrices); `camera`: that camera object instead of
        the active one."""
        return self._decode(CamerasReply, self.request(Cameras([int(f) for f in frames], camera)), "cameras")

    def render_frame(
        self,
        frame: int,
        rgb_path: Path,
        exr_path: Path | None,
        file_format: str,
        bit_depth: int,
        camera: str | None = None,
        objects_path: Path | None = None,
        window: list[int] | None = None,
    ) -> RenderFrameReply:
        """Render `frame` through the scene camera, or through the camera object `camera` (a rig's); with
        `objects_path`, the objects' data for the annotations too (RenderFrameReply.objects, geometry there);
        with `window` [left, top, width, height], the larger pinhole image lens distortion resamples."""
        request = RenderFrame(
            int(frame), str(rgb_path), str(exr_path) if exr_path else None, file_format, bit_depth, camera,
            str(objects_path) if objects_path else None, [int(v) for v in window] if window else None,
        )  # fmt: skip
        return self._decode(RenderFrameReply, self.request(request), "render_frame")

    def frame_objects(self, frame: int, objects_path: Path, camera: str | None = None) -> FrameObjectsReply:
        """The objects' data for the annotations of a frame that is not rendered (geometry to `objects_path`)."""
        request = FrameObjects(int(frame), str(objects_path), camera)
        return self._decode(FrameObjectsReply, self.request(request), "frame_objects")

    def build_scene(self, script: Path, output: Path, **kwargs: Any) -> dict[str, Any]:
        """Run `script`'s build(**kwargs) on an empty file, save it to `output`; what build returned."""
        return dict(self.request(BuildScene(str(script), str(output), kwargs)))


def options_from_config(config: Any, name: str = "") -> WorkerOptions:
    """WorkerOptions from a RenderConfig (kept here so the worker does not depend on config)."""
    return WorkerOptions(
        executable=config.executable,
        log_dir=config.log_dir,
        timeout=config.timeout,
        startup_timeout=max(30.0, config.timeout) if config.timeout > 0 else 120.0,
        autoexec=config.autoexec,
        name=name,
    )
