"""`DATASETS/dataset.json`: what a `create-datasets` dataset holds, stage by stage (issue 15).

The manifest records the full configuration, the camsim and Blender versions, the splits, what planning
read from each scene (a cache, valid while the file's size, mtime and the chosen camera match), and per
sequence which stages are complete with their settings hash. Only the create-datasets host process writes
it, atomically; `info`, `validate` and the loader read it. Pure data and JSON conversion, with the two reads
and writes at the edge; nothing here imports Blender.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from camsim.errors import DatasetError
from camsim.fileio import write_json_atomic

STAGES: dict[str, str] = {
    "render": "renders",
    "interpolate": "interpolated",
    "spad": "spad",
    "rgb": "rgb",
    "events": "events",
    "imu": "imu",
    "itof": "itof",
    "lidar": "lidar",
}
"""Stage name -> its folder below DATASETS, in pipeline order (the one place these names live)."""

MANIFEST = "dataset.json"
FORMAT = 1

Status = Literal["complete", "failed", "missing"]
STATUSES: tuple[Status, ...] = ("complete", "failed", "missing")


def check_stage(name: str) -> str:
    """`name` when it is a stage, else a DatasetError naming the stages."""
    if name not in STAGES:
        raise DatasetError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return name


def stage_folder(datasets_dir: str | os.PathLike[str], stage: str, sequence_key: str | None = None) -> Path:
    """DATASETS/<stage folder>[/SCENE/SEQ]: where a stage writes (one sequence's output with its key)."""
    folder = Path(datasets_dir) / STAGES[check_stage(stage)]
    return folder / sequence_key if sequence_key else folder


def sequence_key(scene: str, sequence_id: str) -> str:
    """The manifest's key of a sequence: "SCENE/SEQ" (also its path below every stage folder)."""
    return f"{scene}/{sequence_id}"


@dataclass
class StageState:
    """One stage of one sequence."""

    status: Status = "missing"
    settings_hash: str | None = None
    """The hash its output records (renders: transforms.json `settings_hash`; interpolation: its
    `interpolation.settings_hash`; emulators: params.json `settings_hash`)."""
    error: str | None = None
    """Why it failed (only when `status` is "failed")."""
    cameras: dict[str, StageState] = field(default_factory=dict)
    """A rig's stage after the render (--render-config.cameras): each camera's output (in STAGE/SCENE/SEQ/CAMERA/)
    by camera name, in render order. The stage's `status` is theirs together (`combined`), its settings_hash
    None (each camera's output has its own: its sensor seed is the camera's)."""


def combined(cameras: dict[str, StageState]) -> StageState:
    """A rig's stage from its cameras' states: failed when one failed (its error, naming the camera), complete
    when every one is, else missing."""
    failed = [(name, s) for name, s in cameras.items() if s.status == "failed"]
    if failed:
        name, s = failed[0]
        return StageState("failed", None, f"camera {name}: {s.error or 'failed'}", dict(cameras))
    done = bool(cameras) and all(s.status == "complete" for s in cameras.values())
    return StageState("complete" if done else "missing", None, None, dict(cameras))


def output_keys(key: str, state: StageState | None) -> list[str]:
    """The paths below a stage folder of a sequence's outputs of that stage: SCENE/SEQ, or a rig's
    SCENE/SEQ/CAMERA of each camera."""
    return [f"{key}/{name}" for name in state.cameras] if state is not None and state.cameras else [key]


@dataclass
class SequenceRecord:
    scene: str
    split: str | None
    first: int
    last: int
    stages: dict[str, StageState] = field(default_factory=dict)

    def status(self, stage: str) -> Status:
        """The stage's status ("missing" when the record does not name the stage)."""
        state = self.stages.get(stage)
        return state.status if state else "missing"


@dataclass
class SceneRecord:
    """What planning read from a scene file: reused while `size`, `mtime_ns` and `camera` match."""

    path: str
    size: int
    mtime_ns: int
    camera: str | None = None
    """The camera asked for (--render-config.camera), None for the scene's own."""
    start: int | None = None
    end: int | None = None
    cuts: list[int] = field(default_factory=list)
    camera_problem: str | None = None
    error: str | None = None
    """Why the scene could not be read (then `start` and `end` may be None)."""


@dataclass
class Splits:
    names: list[str]
    fractions: list[float]
    seed: int
    scenes: dict[str, str] = field(default_factory=dict)
    """Scene name -> split name; a scene keeps its split when scenes are added."""


def _version() -> str:
    import camsim

    return camsim.__version__


@dataclass
class Manifest:
    config: dict[str, Any] = field(default_factory=dict)
    """The full create-datasets configuration as plain JSON (what --print-config writes)."""
    camsim_version: str = field(default_factory=_version)
    blender_version: str | None = None
    stages: list[str] = field(default_factory=lambda: ["render"])
    """Stages this dataset has (union over runs), in STAGES order."""
    keep_interpolated: bool = True
    splits: Splits | None = None
    scenes: dict[str, SceneRecord] = field(default_factory=dict)
    sequences: dict[str, SequenceRecord] = field(default_factory=dict)
    """"SCENE/SEQ" -> its record, in planning order (the loader's order)."""

    def keys(self, stage: str, split: str | None = None, status: Status | None = "complete") -> list[str]:
        """Keys of the sequences of `split` (all when None) whose `stage` has `status` (any when None), in
        manifest order."""
        check_stage(stage)
        return [
            k
            for k, s in self.sequences.items()
            if (split is None or s.split == split) and (status is None or s.status(stage) == status)
        ]

    def outputs(self, stage: str, split: str | None = None) -> list[tuple[str, str]]:
        """(sequence key, path below the stage folder) of every output of the sequences `keys` returns: one
        per sequence, one per camera of a rig's stage after the render."""
        return [
            (k, p)
            for k in self.keys(stage, split)
            for p in output_keys(k, self.sequences[k].stages.get(stage))
        ]

    def split_names(self) -> list[str]:
        return list(self.splits.names) if self.splits else []


# ------------------------------------------------------------------------------------------ JSON


def to_json(m: Manifest) -> dict[str, Any]:
    """The manifest as the plain JSON object dataset.json holds."""

    def stage(s: StageState) -> dict[str, Any]:
        out: dict[str, Any] = {"status": s.status, "settings_hash": s.settings_hash}
        if s.status == "failed":
            out["error"] = s.error
        if s.cameras:
            out["cameras"] = {name: stage(c) for name, c in s.cameras.items()}
        return out

    return {
        "format": FORMAT,
        "camsim_version": m.camsim_version,
        "blender_version": m.blender_version,
        "config": m.config,
        "stages": [s for s in STAGES if s in m.stages],
        "keep_interpolated": m.keep_interpolated,
        "splits": None
        if m.splits is None
        else {
            "names": list(m.splits.names),
            "fractions": [float(f) for f in m.splits.fractions],
            "seed": m.splits.seed,
            "scenes": dict(m.splits.scenes),
        },
        "scenes": {
            name: {
                "path": r.path,
                "size": r.size,
                "mtime_ns": r.mtime_ns,
                "camera": r.camera,
                "start": r.start,
                "end": r.end,
                "cuts": list(r.cuts),
                "camera_problem": r.camera_problem,
                "error": r.error,
            }
            for name, r in m.scenes.items()
        },
        "sequences": {
            key: {
                "scene": s.scene,
                "split": s.split,
                "first": s.first,
                "last": s.last,
                "stages": {name: stage(st) for name, st in s.stages.items()},
            }
            for key, s in m.sequences.items()
        },
    }


class _Reader:
    """Typed access to a parsed dataset.json: every error names the key that is wrong, in one line."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, why: str) -> DatasetError:
        return DatasetError(f"{self.where}: {path} {why}")

    def obj(self, d: Any, path: str) -> dict[str, Any]:
        if not isinstance(d, dict):
            raise self.fail(path, f"must be an object, got {type(d).__name__}")
        return d

    def get(self, d: dict[str, Any], key: str, path: str, kind: Any, optional: bool = False) -> Any:
        if key not in d:
            if optional:
                return None
            raise self.fail(f"{path}{key}", "is missing")
        v = d[key]
        if v is None and optional:
            return None
        ok = isinstance(v, kind) and not (isinstance(v, bool) and kind in (int, (int, float)))
        if not ok:
            raise self.fail(f"{path}{key}", f"has the wrong type ({type(v).__name__}: {json.dumps(v)[:40]})")
        return v

    def opt(self, d: dict[str, Any], key: str, path: str, kind: Any) -> Any:
        return self.get(d, key, path, kind, optional=True)


def from_json(data: Any, where: str = MANIFEST) -> Manifest:
    """A Manifest from dataset.json's parsed content; DatasetError (one line, naming the key) when it is
    malformed or written by a newer camsim."""
    r = _Reader(where)
    d = r.obj(data, "the top level")
    fmt = r.get(d, "format", "", int)
    if fmt > FORMAT:
        raise DatasetError(f"{where} is format {fmt}; this camsim reads format {FORMAT} (upgrade camsim)")
    if fmt < 1:
        raise r.fail("format", f"must be {FORMAT}, got {fmt}")
    stages = [str(s) for s in r.get(d, "stages", "", list)]
    for s in stages:
        if s not in STAGES:
            raise r.fail("stages", f"names an unknown stage {s!r} (stages: {', '.join(STAGES)})")
    splits = None
    sp = r.opt(d, "splits", "", dict)
    if sp is not None:
        names = r.get(sp, "names", "splits.", list)
        fractions = r.get(sp, "fractions", "splits.", list)
        if not all(isinstance(n, str) for n in names) or len(names) != len(fractions):
            raise r.fail("splits.names", "must be as many names as splits.fractions")
        for i, f in enumerate(fractions):
            if not isinstance(f, int | float) or isinstance(f, bool):
                raise r.fail(f"splits.fractions[{i}]", "must be a number")
        assigned = r.get(sp, "scenes", "splits.", dict)
        for scene, split in assigned.items():
            if split not in names:
                raise r.fail(f"splits.scenes[{scene!r}]", f"is {split!r}, not one of {names}")
        splits = Splits(
            list(names), [float(f) for f in fractions], r.get(sp, "seed", "splits.", int), assigned
        )
    scenes = {}
    for name, s in r.get(d, "scenes", "", dict).items():
        p = f"scenes[{name!r}]."
        s = r.obj(s, p[:-1])
        cuts = r.get(s, "cuts", p, list)
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in cuts):
            raise r.fail(f"{p}cuts", "must be a list of frame numbers")
        scenes[name] = SceneRecord(
            path=r.get(s, "path", p, str),
            size=r.get(s, "size", p, int),
            mtime_ns=r.get(s, "mtime_ns", p, int),
            camera=r.opt(s, "camera", p, str),
            start=r.opt(s, "start", p, int),
            end=r.opt(s, "end", p, int),
            cuts=list(cuts),
            camera_problem=r.opt(s, "camera_problem", p, str),
            error=r.opt(s, "error", p, str),
        )
    sequences = {}
    for key, s in r.get(d, "sequences", "", dict).items():
        p = f"sequences[{key!r}]."
        s = r.obj(s, p[:-1])
        split = r.opt(s, "split", p, str)
        if split is not None and split not in (splits.names if splits else []):
            raise r.fail(f"{p}split", f"is {split!r}, not a split of this dataset")
        states = {}
        for stage, st in r.get(s, "stages", p, dict).items():
            sp_ = f"{p}stages.{stage}"
            if stage not in STAGES:
                raise r.fail(sp_, f"is not a stage (stages: {', '.join(STAGES)})")
            states[stage] = _stage_state(r, st, sp_)
            cameras = r.opt(r.obj(st, sp_), "cameras", sp_ + ".", dict) or {}
            for name, cs in cameras.items():
                if not isinstance(name, str) or not name or "/" in name:
                    raise r.fail(f"{sp_}.cameras", f"names a camera {name!r} that cannot be a folder")
                states[stage].cameras[name] = _stage_state(r, cs, f"{sp_}.cameras.{name}")
        sequences[key] = SequenceRecord(
            scene=r.get(s, "scene", p, str),
            split=split,
            first=r.get(s, "first", p, int),
            last=r.get(s, "last", p, int),
            stages=states,
        )
    return Manifest(
        config=r.get(d, "config", "", dict),
        camsim_version=r.get(d, "camsim_version", "", str),
        blender_version=r.opt(d, "blender_version", "", str),
        stages=stages,
        keep_interpolated=r.get(d, "keep_interpolated", "", bool),
        splits=splits,
        scenes=scenes,
        sequences=sequences,
    )


def _stage_state(r: _Reader, st: Any, path: str) -> StageState:
    st = r.obj(st, path)
    status = r.get(st, "status", path + ".", str)
    if status not in STATUSES:
        raise r.fail(f"{path}.status", f"is {status!r}, not one of {', '.join(STATUSES)}")
    return StageState(
        status, r.opt(st, "settings_hash", path + ".", str), r.opt(st, "error", path + ".", str)
    )


# ------------------------------------------------------------------------------------- at the edge


def manifest_path(datasets_dir: str | os.PathLike[str]) -> Path:
    return Path(datasets_dir) / MANIFEST


def has_manifest(datasets_dir: str | os.PathLike[str]) -> bool:
    return manifest_path(datasets_dir).is_file()


def read_manifest(datasets_dir: str | os.PathLike[str]) -> Manifest | None:
    """DATASETS/dataset.json, or None when there is none; DatasetError (one line) when it is malformed or
    newer than this camsim."""
    path = manifest_path(datasets_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from None
    return from_json(data, str(path))


def write_manifest(datasets_dir: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write DATASETS/dataset.json atomically (a reader never sees half of it). Returns its path."""
    path = manifest_path(datasets_dir)
    write_json_atomic(path, to_json(manifest))
    return path


def scene_cache_valid(record: SceneRecord, path: str | os.PathLike[str], camera: str | None) -> bool:
    """Whether what planning read from a scene (`record`) still holds for the file at `path` read with
    `camera`: same size, same mtime_ns, same camera asked for. A file that cannot be stat'ed is not."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == record.size and st.st_mtime_ns == record.mtime_ns and camera == record.camera


def hash_file(stage: str) -> str:
    """The file of a stage's output that records its settings hash."""
    return "transforms.json" if check_stage(stage) in ("render", "interpolate") else "params.json"


def recorded_hash(stage: str, folder: str | os.PathLike[str]) -> str | None:
    """The settings hash a stage's output in `folder` records (renders: transforms.json `settings_hash`;
    interpolation: its `interpolation.settings_hash`; emulators: params.json `settings_hash`), or None when
    the folder holds no readable record."""
    path = Path(folder) / hash_file(stage)
    if check_stage(stage) == "render" and not path.is_file() and (Path(folder) / "rig.json").is_file():
        path = Path(folder) / "rig.json"  # a rig's render (--render-config.cameras) records it there
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    if stage == "interpolate":
        data = data.get("interpolation")
        if not isinstance(data, dict):
            return None
    value = data.get("settings_hash")
    return value if isinstance(value, str) else None
