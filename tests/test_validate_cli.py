"""The validate / info / convert commands: exit codes, one line per bad file, user errors in one line."""

from __future__ import annotations

import subprocess
import sys

import synthetic_plane

from camsim.summary import describe

plane_sequence = synthetic_plane.plane_sequence  # fixture


def camsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camsim", *args], capture_output=True, text=True, timeout=120
    )


def test_validate_cli_exit_codes_and_one_line_per_bad_file(plane_sequence, tmp_path):
    plane_sequence("d/s/a")
    b = plane_sequence("d/s/b")
    r = camsim("validate", str(tmp_path / "d"), "--consistency")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "EPE px" in r.stdout
    (b / "flows/flow_000011.exr").write_bytes(b"garbage")
    (b / "normals/normal_000012.exr").unlink()
    r = camsim("validate", str(tmp_path / "d"))
    assert r.returncode == 1
    bad = [line for line in r.stdout.splitlines() if line.startswith(("CORRUPTED", "MISSING"))]
    assert len(bad) == 2
    assert bad[0].startswith(f"CORRUPTED {b / 'flows/flow_000011.exr'}: cannot decode")
    assert bad[1].startswith(f"MISSING {b / 'normals/normal_000012.exr'}")


def test_validate_cli_missing_dataset_is_a_one_line_user_error(tmp_path):
    r = camsim("validate", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"camsim: error: no dataset at {tmp_path / 'nope'}"]


def test_info_summarises_sequences_frames_and_ground_truth(plane_sequence, tmp_path):
    plane_sequence("d/s/a", n=3)
    plane_sequence("d/s/b", n=4)
    (tmp_path / "d/s/c/frames").mkdir(parents=True)  # a started, unfinished sequence
    info = describe(tmp_path / "d")
    assert [s.name for s in info.sequences] == ["s/a", "s/b", "s/c"]
    assert info.frames == 7 and info.incomplete == 1
    assert info.sequences[0].resolution == "16x12" and info.sequences[0].fps == 24.0
    assert info.sequences[0].ground_truth == ("depth", "normal", "flow", "segmentation")
    assert info.size_bytes > 0
    r = camsim("info", str(tmp_path / "d"))
    assert r.returncode == 0
    assert "3 sequence(s) (1 incomplete), 7 frames" in r.stdout.replace("\n", " ")


def test_convert_cli_round_trip(plane_sequence, tmp_path):
    src = plane_sequence(binary=True)
    r = camsim("convert", "img-to-npy", str(src), str(tmp_path / "npy"), "--bitpack")
    assert r.returncode == 0, r.stderr
    r = camsim("convert", "npy-to-img", str(tmp_path / "npy"), str(tmp_path / "img"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "img/frames").iterdir()) == sorted(
        p.name for p in (src / "frames").iterdir()
    )
    r = camsim("convert", "img-to-npy", str(plane_sequence("rgb")), str(tmp_path / "x"), "--bitpack")
    assert r.returncode == 2 and "binary" in r.stderr
