"""Validate a rig's folder (--render-config.cameras): its rig.json and every camera's sequence, as one report.

A rig's folder holds one sequence per camera (SEQUENCE/CAMERA/) and rig.json, written last. The report's
marker is rig.json: purging a rig that lost a file removes it, so `--allow-skips` resumes the rig and
re-renders exactly the frames whose files are gone, camera by camera.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from camsim import transforms
from camsim.resume import RIG_FILE, is_rig, rig_folders
from camsim.rig import RIG_FORMAT, read_rig
from camsim.validate import Problem, SequenceReport, check_sequence


def rig_roots(root: Path) -> list[Path]:
    """Rig folders at or below `root`, sorted."""
    found = {p.parent for p in root.rglob(RIG_FILE)} | {p.parent for p in root.rglob("settings.json")}
    return sorted(d for d in found if is_rig(d))


def check_rig(
    folder: Path, name: str, consistency: bool = False, progress: Callable[[int], None] | None = None
) -> SequenceReport:
    """One report for a rig: rig.json (missing: incomplete; unreadable: schema) and each camera's sequence
    (named NAME/CAMERA in its problems' files); frames are the cameras' together."""
    rep = SequenceReport(path=folder, name=name, marker=RIG_FILE)
    rig = read_rig(folder)
    path = folder / RIG_FILE
    if rig is None:
        rep.has_transforms = False
        if path.is_file():
            rep.problems.append(Problem(path, "schema", f"not a {RIG_FORMAT} file with its cameras"))
        cameras = [(sub, sub.name) for sub in rig_folders(folder)]
    else:
        cameras = [(folder / c["folder"], str(c["name"])) for c in rig["cameras"]]
    for sub, cam in cameras:
        if not (sub / "transforms.json").is_file() and not sub.is_dir():
            rep.problems.append(
                Problem(sub, "missing", f"rig.json lists camera {cam}; its folder is missing")
            )
            continue
        one = check_sequence(sub, f"{name}/{cam}", consistency=consistency, progress=progress)
        rep.frames += one.frames
        rep.problems += one.problems
        rep.warnings += [f"{cam}: {w}" for w in one.warnings]
        if not one.has_transforms:
            rep.problems.append(Problem(sub / "transforms.json", "missing", f"camera {cam} is incomplete"))
    if rig is not None and not rep.problems:  # one time base: every camera has the rig's frames
        for sub, cam in cameras:
            numbers = [fr.get("frame_number") for fr in transforms.read(sub)["frames"]]
            if numbers != rig.get("frame_numbers"):
                rep.problems.append(
                    Problem(path, "schema", f"camera {cam}'s frame numbers differ from rig.json's")
                )
    return rep
