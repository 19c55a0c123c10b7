"""Check a create-datasets folder (DATASETS with dataset.json): every stage's sequences, and the manifest
against the disk.

Each sequence a stage completed is checked as its own kind of folder (renders, interpolated, SPAD, RGB and
event outputs by `validate.check_sequence`; emulated outputs' params.json; the IMU's EuRoC files) and must
carry the settings hash dataset.json records; a stage the manifest does not record complete is reported
incomplete; a stage folder must hold no sequence dataset.json does not list. A rig's stages after the render
(--render-config.cameras) are checked per camera (STAGE-FOLDER/SCENE/SEQ/CAMERA, against the camera's state).
Returns a `validate.ValidationReport` (one SequenceReport per stage and sequence, named STAGE-FOLDER/SCENE/SEQ,
or per camera), never prints.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from camsim.derive import IMU_FILES, looks_complete, settings_hash
from camsim.errors import DatasetError
from camsim.fileio import TMP_MARK, looks_whole
from camsim.manifest import (
    MANIFEST,
    STAGES,
    Manifest,
    StageState,
    hash_file,
    read_manifest,
    recorded_hash,
    stage_folder,
)
from camsim.resume import is_rig
from camsim.rig import frame_count
from camsim.validate import (
    Problem,
    SequenceReport,
    ValidationReport,
    check_sequence,
    purge_sequence,
)
from camsim.validate_rig import check_rig

EMULATED = ("spad", "rgb", "events", "imu", "itof", "lidar")
IMU_COLUMNS = {"imu0/data.csv": 6, "imu0/data_noiseless.csv": 6, "state_groundtruth_estimate0/data.csv": 16}
"""Values per row (after the timestamp) of the IMU's CSV files."""


def checked_on_disk(manifest: Manifest, stage: str) -> bool:
    """Whether a stage's outputs are on disk (interpolated frames streamed into the emulators are not)."""
    return stage != "interpolate" or manifest.keep_interpolated


def _json_object(rep: SequenceReport, path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        rep.problems.append(Problem(path, "missing", f"missing {path.name}"))
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        rep.problems.append(Problem(path, "corrupted", f"cannot parse: {exc}"))
        return None
    if not isinstance(data, dict):
        rep.problems.append(Problem(path, "schema", "must hold a JSON object"))
        return None
    return data


def check_params(rep: SequenceReport, folder: Path, sensor: str) -> dict[str, Any] | None:
    """An emulated output's params.json: parses, names `sensor`, and its settings_hash is its config's."""
    path = folder / "params.json"
    params = _json_object(rep, path)
    if params is None:
        return None
    if params.get("sensor") != sensor:
        rep.problems.append(
            Problem(path, "schema", f"sensor is {params.get('sensor')!r}, expected {sensor!r}")
        )
        return None
    config = params.get("config")
    if not isinstance(config, dict) or not isinstance(params.get("settings_hash"), str):
        rep.problems.append(Problem(path, "schema", "needs a config object and a settings_hash"))
        return None
    if settings_hash(sensor, config) != params["settings_hash"]:
        rep.problems.append(
            Problem(path, "schema", f"settings_hash {params['settings_hash']} is not its config's")
        )
    return params


def check_imu(folder: Path, name: str, progress: Callable[[int], None] | None = None) -> SequenceReport:
    """An IMU output: params.json, then each EuRoC CSV whole, parsing, with the rows params.json records
    and increasing timestamps; no other file."""
    rep = SequenceReport(path=folder, name=name, format="IMU", marker="params.json")
    params = check_params(rep, folder, "imu")  # a missing params.json is a problem: has_transforms stays
    derived = (params or {}).get("derived")
    samples = derived.get("samples") if isinstance(derived, dict) else None
    for rel in IMU_FILES:
        path = folder / rel
        if not path.is_file():
            rep.problems.append(Problem(path, "missing", f"missing {rel}"))
            continue
        if not looks_whole(path):
            rep.problems.append(Problem(path, "corrupted", "empty or cut short"))
            continue
        if rel not in IMU_COLUMNS:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an empty file: reported below, not warned about
                data = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
        except ValueError as exc:
            rep.problems.append(Problem(path, "corrupted", f"cannot parse: {exc}"))
            continue
        if data.size == 0:
            rep.problems.append(Problem(path, "corrupted", "no samples"))
        elif data.shape[1] != IMU_COLUMNS[rel] + 1:
            rep.problems.append(
                Problem(path, "corrupted", f"{data.shape[1]} columns, expected {IMU_COLUMNS[rel] + 1}")
            )
        elif isinstance(samples, int) and data.shape[0] != samples:
            rep.problems.append(
                Problem(path, "corrupted", f"{data.shape[0]} samples, params.json records {samples}")
            )
        elif not np.isfinite(data).all() or (np.diff(data[:, 0]) <= 0).any():
            rep.problems.append(Problem(path, "corrupted", "NaN values or timestamps not increasing"))
        rep.frames = data.shape[0]
    known = {*IMU_FILES, "params.json"}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and TMP_MARK not in p.name):
        if path.relative_to(folder).as_posix() not in known:
            rep.problems.append(Problem(path, "unlisted", "not an IMU output file (left by another run?)"))
    if progress:
        progress(1)
    return rep


def check_stage_output(
    stage: str,
    folder: Path,
    name: str,
    consistency: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SequenceReport:
    """Validate one stage's output folder of one sequence, as its kind of folder."""
    if stage == "imu":
        return check_imu(folder, name, progress)
    if stage == "render" and is_rig(folder):  # --render-config.cameras: a sequence per camera, and rig.json
        return check_rig(folder, name, consistency, progress)
    rep = check_sequence(folder, name, consistency=consistency, progress=progress)
    if stage in EMULATED:
        check_params(rep, folder, stage)
        if not rep.problems and rep.has_transforms and not looks_complete(folder, stage):
            rep.problems.append(
                Problem(folder, "missing", "a file transforms.json lists is missing or cut short")
            )
    return rep


def _unlisted(root: Path, manifest: Manifest) -> list[SequenceReport]:
    """Sequence folders (and stray files) in stage folders that dataset.json does not list for that stage."""
    out = []
    for stage, folder_name in STAGES.items():
        folder = root / folder_name
        if not folder.is_dir():
            continue
        listed = set(manifest.sequences) if stage in manifest.stages else set()
        for scene in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
            entries = sorted(scene.iterdir()) if scene.is_dir() else [scene]
            for entry in entries:
                if entry.name.startswith("."):  # temporaries (TMP_MARK) and the file system's own files
                    continue
                key = entry.relative_to(folder).as_posix()
                if key in listed:
                    out += _unlisted_cameras(
                        entry, f"{folder_name}/{key}", manifest.sequences[key].stages.get(stage)
                    )
                    continue
                why = "a stage dataset.json does not list" if stage not in manifest.stages else "dataset.json"
                rep = SequenceReport(path=entry, name=f"{folder_name}/{key}")
                rep.problems.append(Problem(entry, "unlisted", f"not listed in {why}"))
                out.append(rep)
    return out


def _unlisted_cameras(folder: Path, name: str, state: StageState | None) -> list[SequenceReport]:
    """Entries of a rig's sequence folder in a stage after the render that dataset.json lists no camera for."""
    if state is None or not state.cameras or not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in state.cameras:
            continue
        rep = SequenceReport(path=entry, name=f"{name}/{entry.name}")
        rep.problems.append(Problem(entry, "unlisted", "not a camera dataset.json lists for this stage"))
        out.append(rep)
    return out


def _manifest_problems(root: Path, manifest: Manifest) -> SequenceReport | None:
    """dataset.json against itself: each sequence under its scene, in its scene's split."""
    path = root / MANIFEST
    rep = SequenceReport(path=path, name=MANIFEST, format="manifest")
    assigned = manifest.splits.scenes if manifest.splits else {}
    for key, seq in manifest.sequences.items():
        if key.split("/", 1)[0] != seq.scene:
            rep.problems.append(Problem(path, "schema", f"sequence {key} names scene {seq.scene!r}"))
        if manifest.splits and seq.split != assigned.get(seq.scene):
            rep.problems.append(
                Problem(
                    path,
                    "schema",
                    f"sequence {key} is in split {seq.split!r}, its scene in {assigned.get(seq.scene)!r}",
                )
            )
    return rep if rep.problems else None


def validate_datasets(
    path: str | os.PathLike[str],
    consistency: bool = False,
    purge: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate every stage of a create-datasets folder against its files and its dataset.json."""
    root = Path(path)
    manifest = read_manifest(root)
    if manifest is None:
        raise DatasetError(f"no {MANIFEST} in {root}")
    if not manifest.sequences:
        raise DatasetError(f"{root / MANIFEST} lists no sequences")
    reports: list[SequenceReport] = []
    own = _manifest_problems(root, manifest)
    if own:
        reports.append(own)
    for stage in (s for s in STAGES if s in manifest.stages):
        if not checked_on_disk(manifest, stage):
            continue
        for key, seq in manifest.sequences.items():
            for path_key, state in _outputs(key, seq.stages.get(stage)):
                reports.append(_check_output(root, stage, path_key, state, consistency, purge, progress))
    reports.extend(_unlisted(root, manifest))
    return ValidationReport(root=root, sequences=reports)


def _outputs(key: str, state: StageState | None) -> list[tuple[str, StageState | None]]:
    """(path below the stage folder, state) of a sequence's outputs of a stage: a rig's cameras each."""
    if state is not None and state.cameras:
        return [(f"{key}/{name}", s) for name, s in state.cameras.items()]
    return [(key, state)]


def _check_output(
    root: Path,
    stage: str,
    key: str,
    state: StageState | None,
    consistency: bool,
    purge: bool,
    progress: Callable[[int], None] | None,
) -> SequenceReport:
    """One output of a stage (`key`: SCENE/SEQ, or SCENE/SEQ/CAMERA of a rig's camera) against its state."""
    folder = stage_folder(root, stage, key)
    name = f"{STAGES[stage]}/{key}"
    if state is None or state.status != "complete":
        rep = SequenceReport(path=folder, name=name)  # the problem says it is incomplete, and why
        why = (
            f"the {stage} stage failed: {state.error or 'no error recorded'}"
            if state and state.status == "failed"
            else f"the {stage} stage has not run"
        )
        rep.problems.append(
            Problem(folder, "missing", f"dataset.json: {why} (resume with create-datasets --allow-skips)")
        )
        return rep
    if not folder.is_dir():
        rep = SequenceReport(path=folder, name=name)
        rep.problems.append(
            Problem(folder, "missing", f"dataset.json records the {stage} stage complete; no folder")
        )
        return rep
    rep = check_stage_output(stage, folder, name, consistency, progress)
    disk = recorded_hash(stage, folder)
    if (folder / rep.marker).is_file() and disk != state.settings_hash:
        rep.problems.append(
            Problem(
                folder / hash_file(stage),
                "manifest",
                f"settings hash {disk} differs from dataset.json's {state.settings_hash}",
            )
        )
    if purge:
        purge_sequence(rep)
    return rep


def total_units(path: str | os.PathLike[str]) -> int:
    """What `validate_datasets` will advance progress by: frames of every complete output checked (one per
    IMU output)."""
    root = Path(path)
    manifest = read_manifest(root)
    total = 0
    for stage in (s for s in STAGES if manifest and s in manifest.stages and checked_on_disk(manifest, s)):
        for _, key in manifest.outputs(stage):  # type: ignore[union-attr]
            folder = stage_folder(root, stage, key)
            if stage == "imu":
                total += folder.is_dir()
                continue
            if stage == "render" and is_rig(folder):  # a rig: its cameras' frames (check_rig visits each)
                total += frame_count(folder)
                continue
            try:
                total += len(json.loads((folder / "transforms.json").read_bytes())["frames"])
            except (OSError, ValueError, RecursionError, KeyError, TypeError):
                folder = folder / "frames"
                total += sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
    return total
