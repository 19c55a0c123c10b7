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
from filestate import stamp

from camsim.validate import validate_dataset

from .conftest import SEQUENCES_PER_SCENE, assert_no_partial_files, finish_and_check, start_create_datasets

pytestmark = pytest.mark.blender


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


PAGE = 4096  # tmpfs stores a file in whole pages


def _stored(folder: Path) -> int:
    """Bytes `folder`'s files take on a tmpfs."""
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def small_fs(tmp_path: Path, reference_dataset: Path) -> Iterator[Path]:
    """A tmpfs holding half of what the run writes (sized from an uninterrupted run's output, so it still
    fills mid-run when outputs grow or shrink), and at least two whole sequences (one may finish while
    another is being written)."""
    sequences = [_stored(t.parent) for t in reference_dataset.glob("renders/*/*/transforms.json")]
    total = _stored(reference_dataset)
    size = total // 2
    assert size >= 2 * max(sequences) and size < total - max(sequences), (total, sequences)
    print(f"tmpfs of {size // 1024} KiB for a run that writes {total // 1024} KiB")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or _mount("-t", "tmpfs", "-o", f"size={size // 1024}k", "tmpfs", str(mnt)).returncode
    ):
        pytest.skip("cannot mount a size-limited tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _snapshot(folders: list[Path]) -> dict[str, tuple[bytes, tuple[int, int]]]:
    return {str(p): (p.read_bytes(), stamp(p)) for d in folders for p in d.rglob("*") if p.is_file()}


def test_disk_full_fails_affected_sequences_only_and_resume_completes(
    scenes_dir: Path,
    reference_dataset: Path,
    reference_files: list[str],
    small_fs: Path,
    tmp_path: Path,
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

    grown = 2 * _stored(reference_dataset) // 1024 + 1024  # room for all of it, temporaries included
    assert _mount("-o", f"remount,size={grown}k", str(small_fs)).returncode == 0
    finish_and_check(scenes_dir, datasets, logs, reference_files)
    assert _snapshot(complete) == before, "finished sequences were rewritten by the resume"
