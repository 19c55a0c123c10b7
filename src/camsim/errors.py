"""Typed errors. Library code raises these; only the CLI turns them into one line and an exit code.

`UserInputError` (and subclasses) means the user can fix it: exit code 2. `RenderFailure` and
`WorkerError` describe a failed render that may succeed on retry.
"""

from __future__ import annotations


class CamsimError(Exception):
    """Base of every error camsim raises on purpose."""


class UserInputError(CamsimError):
    """Bad input the user can fix: a missing file, a bad value, an unwritable folder."""


class ConfigError(UserInputError):
    """A configuration value is out of range or inconsistent with another."""


class SceneError(UserInputError):
    """A scene cannot be used: not a .blend, corrupt, no camera, bad frame range."""


class ProtocolMismatch(UserInputError):
    """The Blender service speaks another protocol version than this camsim (an old or newer service.py)."""


class BlenderNotFound(UserInputError):
    """A command needs Blender and has none: no `bpy` in this Python and no --render-config.executable."""


class DatasetError(UserInputError):
    """A dataset on disk is malformed: bad transforms.json, missing or undecodable files."""


class WorkerError(CamsimError):
    """A Blender worker died, hung or could not start. Names the worker's log and quotes its tail."""

    def __init__(self, message: str, log_path: str | None = None, log_tail: str = "") -> None:
        self.log_path = log_path
        self.log_tail = log_tail
        detail = message
        if log_path:
            detail += f" (log: {log_path})"
        if log_tail:
            detail += "; last log lines: " + " | ".join(log_tail.strip().splitlines()[-5:])
        super().__init__(detail)


class WorkerTimeout(WorkerError):
    """A worker did not answer within the configured timeout."""


class RenderFailure(CamsimError):
    """Rendering a frame or sequence failed inside Blender (the worker itself may still be alive)."""


class OutputWriteError(CamsimError):
    """Writing an output file failed (disk full, permission lost). No partial file is left behind."""
