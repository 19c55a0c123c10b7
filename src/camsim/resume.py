"""What a sequence folder already holds, and what a run may do with it: resume it, replace it, or refuse.

A render records what it is (scene file, frame range, the settings that change what is written, and their
hash) in `settings.json` before its first frame, and again in `transforms.json` when it finishes. A run that
finds another render in its folder refuses, unless told to resume (only a render with the same record) or to
overwrite (the old outputs are removed first, so nothing stale survives next to the new frames). Pure checks
and the two side effects (read the record, clear the outputs) live here; render.py decides when.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camsim import transforms
from camsim.errors import DatasetError, UserInputError
from camsim.fileio import TMP_MARK
from camsim.passes import PASSES

RECORD_FILE = "settings.json"
RECORD_FORMAT = "camsim-settings/1"

UNCOMPARED = frozenset({"device_type", "strict"})
"""Render settings that do not change what is written (the device's noise aside): a resume may differ in them."""

RIG_FILE = "rig.json"
"""Written last in a rig's folder (--render-config.cameras, camsim.rig): every camera's sequence is complete."""

OUTPUT_FILES = ("transforms.json", RIG_FILE, "params.json", "info.json", "objects.json", RECORD_FILE, "frames.npy",
                "events.h5", "events.txt", "events.npz", "histograms.npy", "points.npy")  # fmt: skip
OUTPUT_FOLDERS = (*(p.folder for p in PASSES), "debug", "previews", "imu0", "state_groundtruth_estimate0")
"""Everything a camsim sequence folder (rendered, interpolated or emulated) can hold: what --overwrite removes
(transforms.json first), so no file of an earlier render or derivation survives next to the new one."""


def digest(obj: Any) -> str:
    """16 hex digits of SHA-256 over canonical JSON: the settings hash of renders and derived outputs."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Reuse:
    """What a run does with a sequence folder that already holds outputs."""

    resume: bool = False
    """Keep the frames whose files are whole (same render only) and render the rest (--allow-skips)."""
    overwrite: bool = False
    """Remove the old render's outputs, then render everything (--overwrite)."""
    verify: bool = False
    """When resuming, decode every file instead of the cheap whole-file check (--verify)."""

    def __post_init__(self) -> None:
        if self.resume and self.overwrite:
            raise UserInputError(
                "--allow-skips keeps what is there and --overwrite replaces it: pass one of them"
            )


def compared_settings(render: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in render.items() if k not in UNCOMPARED}


def settings_hash(render: dict[str, Any]) -> str:
    """The hash of the settings that change what a render writes."""
    return digest(compared_settings(render))


@dataclass(frozen=True)
class RenderRecord:
    """What a render in a folder is: which scene, which frames, which settings."""

    scene_file: str
    frame_start: int
    frame_end: int
    render: dict[str, Any]

    @property
    def settings_hash(self) -> str:
        return settings_hash(self.render)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "scene_file": self.scene_file,
            "frame_start": self.frame_start,
            "frame_end": self.frame_end,
            "settings_hash": self.settings_hash,
            "render": self.render,
        }


def _record_from(meta: dict[str, Any]) -> RenderRecord:
    try:
        render = meta.get("render", {})
        if not isinstance(render, dict):
            raise TypeError("render")
        return RenderRecord(str(meta["scene_file"]), int(meta["frame_start"]), int(meta["frame_end"]), render)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"incomplete render record ({exc})") from None


def read_record(folder: Path) -> RenderRecord | None:
    """The record of the render in `folder`: its transforms.json when valid, else its settings.json."""
    try:
        return _record_from(transforms.read(folder / "transforms.json"))
    except DatasetError:
        pass
    try:
        meta = json.loads((folder / RECORD_FILE).read_text())
        return _record_from(meta) if isinstance(meta, dict) else None
    except (OSError, ValueError, DatasetError):
        return None


def holds_output(folder: str | os.PathLike[str]) -> bool:
    """True when `folder` holds a file a camsim sequence folder can hold (temporaries do not count)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if any((folder / name).is_file() for name in OUTPUT_FILES):
        return True
    for name in OUTPUT_FOLDERS:
        sub = folder / name
        if sub.is_dir() and any(p.is_file() and TMP_MARK not in p.name for p in sub.rglob("*")):
            return True
    return False


def _flag(key: str) -> str:
    return f"--render-config.{key.replace('_', '-')}"


def difference(old: RenderRecord, new: RenderRecord) -> str | None:
    """The first way `old` differs from `new`, in words naming the setting; None when a resume may mix them.

    Settings an older camsim did not record are not compared (it cannot say what it used)."""
    if old.scene_file != new.scene_file:
        return f"scene file {old.scene_file} (this run: {new.scene_file})"
    if (old.frame_start, old.frame_end) != (new.frame_start, new.frame_end):
        return f"frames {old.frame_start}..{old.frame_end} (this run: {new.frame_start}..{new.frame_end})"
    was, now = compared_settings(old.render), compared_settings(new.render)
    changed = [k for k in sorted(was) if k in now and json.dumps(was[k]) != json.dumps(now[k], default=str)]
    if not changed:
        return None
    k = changed[0]
    more = (
        f" and {len(changed) - 1} more setting{'s' if len(changed) > 2 else ''}" if len(changed) > 1 else ""
    )
    return f"{_flag(k)}={json.dumps(was[k])} (this run: {json.dumps(now[k], default=str)}){more}"


def check_folder(folder: Path, wanted: RenderRecord, reuse: Reuse) -> None:
    """Refuse (UserInputError, one line) a run that would mix its outputs with another render's.

    An empty or missing folder, or `overwrite`, may always be written; a folder holding a render may be
    resumed only with `resume` and the same scene, frames and settings."""
    if reuse.overwrite or not holds_output(folder):
        return
    old = read_record(folder)
    if not reuse.resume:
        what = (
            f"a render of {old.scene_file} frames {old.frame_start}..{old.frame_end}"
            if old
            else "render outputs"
        )
        raise UserInputError(
            f"{folder} already holds {what}; pass --allow-skips to resume it or --overwrite to replace it"
        )
    if old is None:
        raise UserInputError(
            f"{folder} holds render outputs without a record of how they were made (no valid transforms.json "
            f"or {RECORD_FILE}); pass --overwrite to replace them"
        )
    diff = difference(old, wanted)
    if diff:
        raise UserInputError(
            f"{folder} holds a render made with {diff}; pass --overwrite to re-render it with this run's "
            "settings, or rerun with the settings it was made with"
        )


def _records_rig(folder: Path) -> bool:
    record = read_record(folder)
    return (folder / RIG_FILE).is_file() or bool(record and record.render.get("cameras"))


def is_rig(folder: str | os.PathLike[str]) -> bool:
    """`folder` holds a rig's render (--render-config.cameras): its rig.json, or the record of a rig's render
    that has not finished, in a folder that is not itself a camera's folder of a rig (whose record names the
    rig's cameras too)."""
    folder = Path(folder)
    if (folder / RIG_FILE).is_file():
        return True
    return _records_rig(folder) and not _records_rig(folder.parent)


def rig_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """The camera folders of a rig's render in `folder` (--render-config.cameras): its sub-folders that hold a
    render record; none when `folder` holds no rig."""
    folder = Path(folder)
    if not is_rig(folder):
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".")
        and ((p / RECORD_FILE).is_file() or (p / "transforms.json").is_file())
    )  # fmt: skip


def clear_outputs(folder: str | os.PathLike[str]) -> None:
    """Remove what a camsim sequence folder can hold (and nothing else): the start of an --overwrite. A rig's
    folder loses its camera folders too."""
    folder = Path(folder)
    cameras = rig_folders(folder)
    for name in OUTPUT_FILES:  # transforms.json first: a folder interrupted here is visibly incomplete
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    for name in OUTPUT_FOLDERS:
        if (folder / name).is_dir():
            shutil.rmtree(folder / name)
    for p in folder.glob(f"*{TMP_MARK}*"):
        with contextlib.suppress(OSError):
            p.unlink()
    for sub in cameras:
        clear_outputs(sub)
        with contextlib.suppress(OSError):
            sub.rmdir()
