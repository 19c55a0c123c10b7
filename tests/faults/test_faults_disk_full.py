"""A full disk: the sequences that cannot be written fail with a clear error; nothing partial is left.

The datasets folder lives on a size-limited tmpfs (mounted by the test; it needs root and is skipped
elsewhere). Once the file system is grown, `--allow-skips` completes the dataset.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from camsim.validate import validate_dataset

from .conftest import SEQUENCES_PER_SCENE, assert_no_partial_files, finish_and_check, start_create_datasets

pytestmark = pytest.mark.blender


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or _mount("-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)).returncode:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _snapshot(folders: list[Path]) -> dict[str, tuple[bytes, int]]:
    return {
        str(p): (p.read_bytes(), p.stat().st_mtime_ns) for d in folders for p in d.rglob("*") if p.is_file()
    }


def test_disk_full_fails_affected_sequences_only_and_resume_completes(
    scenes_dir: Path, reference_files: list[str], small_fs: Path, tmp_path: Path
) -> None:
    datasets, logs = small_fs / "ds", tmp_path / "logs"
    run = start_create_datasets(scenes_dir, datasets, logs)
    code = run.wait()
    out = run.stdout + run.stderr
    assert code == 1, out[-3000:]
    assert "Traceback" not in out
    assert "No space left on device" in out or "disk full" in out, out[-3000:]
    left = run.leftovers()
    assert not left, left
    assert_no_partial_files(datasets)  # no half-written file at a final path, no temporaries
    report = validate_dataset(datasets / "renders")
    statuses = {s.name: s.status for s in report.sequences}
    assert "corrupted" not in statuses.values(), statuses
    complete = [s.path for s in report.sequences if s.status == "ok"]
    assert complete, "the disk should hold at least one whole sequence"
    assert len(complete) < 3 * SEQUENCES_PER_SCENE  # and some sequences must have failed
    before = _snapshot(complete)

    assert _mount("-o", "remount,size=8m", str(small_fs)).returncode == 0
    finish_and_check(scenes_dir, datasets, logs, reference_files)
    assert _snapshot(complete) == before, "finished sequences were rewritten by the resume"
