"""The interpolated sequence folder: counts, times, numbering, flags, rescaled flows, determinism, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import synthetic_scenes as S

from camsim import transforms
from camsim.errors import ConfigError, DatasetError, UserInputError
from camsim.fileio import read_exr
from camsim.interpolate import interpolate_sequence

SCENE = S.TWO_LAYERS


@pytest.fixture
def source(tmp_path):
    S.write_sequence(tmp_path / "in", SCENE, 4, first_number=7)
    return tmp_path / "in"


def test_frame_counts_times_and_numbers_are_exact(source, tmp_path):
    meta = interpolate_sequence(source, tmp_path / "out", 3, workers=1)
    frames = transforms.read(tmp_path / "out")["frames"]
    assert len(frames) == 4 * 3 - 3 + 1
    assert meta["fps"] == SCENE.fps * 3 and meta["keyframe_multiplier"] == 3
    assert [f["time"] for f in frames] == pytest.approx([k / (3 * SCENE.fps) for k in range(10)], abs=1e-12)
    assert [f["frame_number"] for f in frames] == list(range(21, 31))
    assert [f["interpolated"] for f in frames] == [k % 3 != 0 for k in range(10)]
    assert [f["source_frame_number"] for f in frames] == pytest.approx([7 + k / 3 for k in range(10)])
    assert meta["interpolation"]["factor"] == 3
    for f in frames:
        for key in ("file_path", "depth_file_path", "flow_file_path", "segmentation_file_path"):
            assert transforms.resolve_path(tmp_path / "out", f[key]).is_file()
        assert ("hole_mask_file_path" in f) == f["interpolated"]


def test_flows_are_rescaled_to_the_new_spacing(source, tmp_path):
    meta = interpolate_sequence(source, tmp_path / "out", 2, workers=1)
    for f in meta["frames"]:
        flow = read_exr(tmp_path / "out" / f["flow_file_path"], ("R", "G", "B", "A"))
        seg = read_exr(tmp_path / "out" / f["segmentation_file_path"], ("Y",))
        plane = seg == 1
        plane[:, :3] = False  # border columns may be holes
        assert np.allclose(flow[plane], (1.0, 0.0, -1.0, -0.0), atol=1e-4), f["frame_number"]


def test_output_does_not_depend_on_worker_count(source, tmp_path):
    interpolate_sequence(source, tmp_path / "a", 3, workers=1)
    interpolate_sequence(source, tmp_path / "b", 3, workers=2)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_each_source_frame_is_loaded_and_modelled_once_per_run_of_pairs(tmp_path, monkeypatch):
    """A frame is the right side of one pair and the left of the next: consecutive pairs share it, in one
    process and in a pool's chunks, and the output is the same bytes either way."""
    from camsim.interpolate import sequence

    S.write_sequence(tmp_path / "in", SCENE, 7)
    modelled = []
    real = sequence.colour_model
    monkeypatch.setattr(sequence, "colour_model", lambda data, sigma: modelled.append(1) or real(data, sigma))
    interpolate_sequence(tmp_path / "in", tmp_path / "a", 2, workers=1)
    assert len(modelled) == 7  # not 2 per pair (12)
    interpolate_sequence(tmp_path / "in", tmp_path / "b", 2, workers=2)  # chunks of 3 pairs: 4 + 4 frames
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_progress_counts_every_output_frame(source, tmp_path):
    done = []
    interpolate_sequence(source, tmp_path / "out", 4, workers=1, progress=done.append)
    assert sum(done) == 4 * 4 - 4 + 1


def test_interpolated_output_can_be_interpolated_again(source, tmp_path):
    interpolate_sequence(source, tmp_path / "x2", 2, workers=1)
    meta = interpolate_sequence(tmp_path / "x2", tmp_path / "x4", 2, workers=1)
    assert len(meta["frames"]) == 13 and meta["fps"] == SCENE.fps * 4


@pytest.mark.parametrize("factor", [1, 0, -2])
def test_factor_below_two_is_refused(source, tmp_path, factor):
    with pytest.raises(ConfigError):
        interpolate_sequence(source, tmp_path / "out", factor)


def test_missing_flow_is_a_dataset_error(source, tmp_path):
    meta = transforms.read(source)
    del meta["frames"][1]["flow_file_path"]
    transforms.write(source / "transforms.json", meta)
    with pytest.raises(DatasetError, match="flow"):
        interpolate_sequence(source, tmp_path / "out", 2)


def test_existing_output_needs_overwrite(source, tmp_path):
    interpolate_sequence(source, tmp_path / "out", 2, workers=1)
    with pytest.raises(UserInputError, match="overwrite"):
        interpolate_sequence(source, tmp_path / "out", 2, workers=1)
    interpolate_sequence(source, tmp_path / "out", 2, workers=1, overwrite=True)
    with pytest.raises(UserInputError):
        interpolate_sequence(source, source, 2, workers=1, overwrite=True)


def test_cli_interpolates_and_reports_bad_factor_in_one_line(source, tmp_path):
    cli = [sys.executable, "-m", "camsim", "interpolate", str(source)]
    ok = subprocess.run(
        [*cli, str(tmp_path / "out"), "--factor", "2", "--workers", "1"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert len(transforms.read(tmp_path / "out")["frames"]) == 7
    bad = subprocess.run([*cli, str(tmp_path / "bad"), "--factor", "1"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["camsim: error: --factor must be at least 2, got 1"]


class _Recorder:
    """Stands in for the progress bar: records whether it was opened, its total and what was advanced."""

    def __init__(self) -> None:
        self.opened = 0
        self.total = None
        self.advanced = 0

    def add_task(self, description, total=None, **_):
        self.total = total
        return 0

    def update(self, task, advance=0, **_):
        self.advanced += advance


@pytest.fixture
def bar(monkeypatch):
    import contextlib

    import camsim.progress

    rec = _Recorder()

    @contextlib.contextmanager
    def fake(unit="frames"):
        rec.opened += 1
        yield rec

    monkeypatch.setattr(camsim.progress, "progress_bar", fake)
    return rec


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_progress_total_equals_what_is_advanced(source, tmp_path, bar, workers):
    from camsim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["interpolate", str(source), str(tmp_path / "out"), "--factor", "3", "--workers", workers])
    assert exc.value.code == 0
    assert bar.opened == 1 and bar.total == bar.advanced == len(transforms.read(tmp_path / "out")["frames"])


def test_cli_progress_is_exact_over_a_dataset_folder(tmp_path, bar):
    from camsim.cli import main

    S.write_sequence(tmp_path / "ds" / "a", SCENE, 3)
    S.write_sequence(tmp_path / "ds" / "b", SCENE, 4)
    with pytest.raises(SystemExit) as exc:
        main(["interpolate", str(tmp_path / "ds"), str(tmp_path / "out"), "--factor", "2", "--workers", "2"])
    assert exc.value.code == 0
    assert bar.total == bar.advanced == 5 + 7


@pytest.mark.parametrize(
    ("args", "match"),
    [(["--factor", "1"], "factor"), (["--beta", "-1"], "beta"), (["--workers", "-2"], "workers")],
)
def test_cli_opens_no_bar_before_a_bad_setting(source, tmp_path, bar, capsys, args, match):
    from camsim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["interpolate", str(source), str(tmp_path / "out"), *args])
    assert exc.value.code == 2 and match in capsys.readouterr().err
    assert bar.opened == 0 and not (tmp_path / "out").exists()


def test_cli_opens_no_bar_before_a_bad_input(source, tmp_path, bar, capsys):
    from camsim.cli import main

    meta = transforms.read(source)
    del meta["frames"][2]["depth_file_path"]
    transforms.write(source / "transforms.json", meta)
    with pytest.raises(SystemExit) as exc:
        main(["interpolate", str(source), str(tmp_path / "out")])
    assert exc.value.code == 2 and "depth" in capsys.readouterr().err
    assert bar.opened == 0 and not (tmp_path / "out").exists()
