"""A create-datasets folder written without Blender (a test helper module): analytic rendered-like sequences
(synthetic_plane) in DATASETS/renders, the real interpolation and emulators run on them into the other stage
folders, and a dataset.json written with camsim.manifest recording every stage complete with the hash its
output carries.

Import the `datasets` fixture (module-scoped; copy the folder before changing it): `from synthetic_datasets
import datasets`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synthetic_plane import write_plane_sequence

from camsim import transforms
from camsim.emulate import emulate_tree
from camsim.interpolate.tree import interpolate_tree
from camsim.manifest import (
    STAGES,
    Manifest,
    SceneRecord,
    SequenceRecord,
    Splits,
    StageState,
    read_manifest,
    recorded_hash,
    sequence_key,
    stage_folder,
    write_manifest,
)
from camsim.splits import assign_splits

SEQUENCES = {  # scene -> its sequences' (first, last)
    "alpha": [(10, 13), (14, 17)],
    "beta": [(10, 13)],
    "gamma": [(10, 13)],
    "delta": [(10, 13)],
}
FRACTIONS = (0.5, 0.25, 0.25)
RENDER_HASH = "0123456789abcdef"
SENSORS = ("spad", "rgb", "events", "imu", "itof", "lidar")


def seq_id(first: int, last: int) -> str:
    return f"{first:06d}-{last:06d}-x1"


def write_datasets(root: Path, frames: int = 4) -> Manifest:
    """DATASETS with every stage of every sequence complete (interpolated at x2 and kept)."""
    renders = root / "renders"
    scenes_dir = root.parent / f"{root.name}-scenes"
    scenes_dir.mkdir(parents=True, exist_ok=True)
    split_of = assign_splits(SEQUENCES, FRACTIONS, seed=0)
    manifest = Manifest(
        config={"scenes_dir": str(scenes_dir), "interpolate_factor": 2, "emulate": list(SENSORS)},
        blender_version=None,
        stages=list(STAGES),
        splits=Splits(["train", "val", "test"], list(FRACTIONS), 0, dict(split_of)),
    )
    for scene, ranges in SEQUENCES.items():
        blend = scenes_dir / f"{scene}.blend"
        blend.write_bytes(b"BLENDER-v500 not a real scene")
        st = blend.stat()
        manifest.scenes[scene] = SceneRecord(str(blend), st.st_size, st.st_mtime_ns, None, 10, 17, [])
        for first, last in ranges:
            key = sequence_key(scene, seq_id(first, last))
            seq = write_plane_sequence(renders / key, n=frames, albedo=True)  # the active sensors need it
            meta = transforms.read(seq)
            meta["settings_hash"] = RENDER_HASH  # what a render records
            transforms.write(seq / "transforms.json", meta)
            manifest.sequences[key] = SequenceRecord(scene, split_of[scene], first, last)
    interpolate_tree(renders, root / "interpolated", 2, workers=1)
    for sensor in SENSORS:
        emulate_tree(sensor, root / "interpolated", root / sensor, workers=1)
    for key, record in manifest.sequences.items():
        for stage in STAGES:
            record.stages[stage] = StageState(
                "complete", recorded_hash(stage, stage_folder(root, stage, key))
            )
    write_manifest(root, manifest)
    return manifest


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    """A complete DATASETS folder, written once per test module: copy it (`copy_datasets`) to change it."""
    root = tmp_path_factory.mktemp("datasets") / "DATASETS"
    write_datasets(root)
    return root


def copy_datasets(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    manifest = read_manifest(dst)
    assert manifest is not None
    return dst
