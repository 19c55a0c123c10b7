"""`camsim interpolate DATASET OUTPUT`: every sequence below a folder, in parallel processes, mirrored below
OUTPUT with the same bytes as one at a time; resumable with --allow-skips; another factor is refused in one
line (exit 2) unless --overwrite, which leaves no frame of the old factor behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import synthetic_scenes as S
from clirun import exit_code
from filestate import contents

from camsim import transforms
from camsim.cli import main
from camsim.interpolate import interpolate_sequence

SCENE = S.Scene(
    w=16,
    h=12,
    focal=18.0,
    layers=(S.Layer(5.0, (1.5, 0.0)), S.Layer(2.0, (-1.0, 0.5), rect=(4, 3, 10, 8), seg_id=2)),
)
NAMES = ("renders/a/seq_000", "renders/a/seq_001", "renders/b/seq_000")


@pytest.fixture
def dataset(tmp_path) -> Path:
    for k, name in enumerate(NAMES):
        S.write_sequence(tmp_path / "DATASETS" / name, SCENE, 3 + k, first_number=5 + k)
    return tmp_path / "DATASETS"


def test_a_dataset_folder_is_interpolated_in_parallel_into_a_mirrored_layout(dataset, tmp_path):
    out = tmp_path / "x2"
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "2", "--workers", "2") == 0
    for k, name in enumerate(NAMES):
        assert len(transforms.read(out / name)["frames"]) == 2 * (3 + k) - 1
        alone = tmp_path / "alone" / name
        interpolate_sequence(dataset / name, alone, 2, workers=1)
        for p in alone.rglob("*"):
            if p.is_file():
                assert (out / name / p.relative_to(alone)).read_bytes() == p.read_bytes(), p


def test_a_single_sequence_folder_writes_output_itself(dataset, tmp_path):
    out = tmp_path / "one"
    assert exit_code("interpolate", str(dataset / NAMES[0]), str(out), "--factor", "2") == 0
    assert (out / "transforms.json").is_file()


def test_resume_skips_complete_sequences_and_refuses_another_factor(dataset, tmp_path, capsys):
    out = tmp_path / "x2"
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "2", "--workers", "2") == 0
    (out / NAMES[2] / "transforms.json").unlink()  # cut short
    first = contents(out)
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "2", "--allow-skips") == 0
    again = contents(out)
    for rel, (data, written) in first.items():
        if not rel.startswith(NAMES[2]):
            assert again[rel] == (data, written), rel  # complete ones untouched
    assert (out / NAMES[2] / "transforms.json").is_file()
    capsys.readouterr()
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "3", "--allow-skips") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--factor=2 (this run: 3)" in err[0] and "--overwrite" in err[0]
    assert contents(out) == again
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "3") == 2
    assert contents(out) == again


def test_overwrite_with_another_factor_leaves_no_stale_frame(dataset, tmp_path):
    out = tmp_path / "x"
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "4", "--workers", "2") == 0
    assert (
        exit_code("interpolate", str(dataset), str(out), "--factor", "2", "--overwrite", "--workers", "2")
        == 0
    )
    for name in NAMES:
        meta = transforms.read(out / name)
        listed = {f[k] for f in meta["frames"] for k in f if k.endswith("file_path")} | {"transforms.json"}
        on_disk = {p.relative_to(out / name).as_posix() for p in (out / name).rglob("*") if p.is_file()}
        assert on_disk == listed, sorted(on_disk - listed)[:5]
        assert meta["interpolation"]["factor"] == 2


def test_beta_is_a_setting_too(dataset, tmp_path, capsys):
    out = tmp_path / "x2"
    assert exit_code("interpolate", str(dataset / NAMES[0]), str(out), "--factor", "2") == 0
    assert exit_code("interpolate", str(dataset / NAMES[0]), str(out), "--factor", "2", "--allow-skips") == 0
    assert (
        exit_code(
            "interpolate", str(dataset / NAMES[0]), str(out), "--factor", "2", "--beta", "30", "--allow-skips"
        )
        == 2
    )
    assert "--beta=60.0 (this run: 30.0)" in capsys.readouterr().err


def test_a_render_in_the_output_folder_is_refused(dataset, tmp_path, capsys):
    target = dataset / NAMES[1]  # a sequence camsim rendered, not interpolated
    assert (
        exit_code("interpolate", str(dataset / NAMES[0]), str(target), "--factor", "2", "--allow-skips") == 2
    )
    assert "did not derive" in capsys.readouterr().err


def test_help_names_the_positionals_input_and_output(capsys):
    with pytest.raises(SystemExit):
        main(["interpolate", "--help"])
    usage = capsys.readouterr().out
    assert "INPUT OUTPUT" in usage and "PATH" not in usage


def test_allow_skips_redoes_a_complete_sequence_that_lost_a_file(dataset, tmp_path):
    out = tmp_path / "x2"
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "2", "--workers", "2") == 0
    first = contents(out)
    lost = out / NAMES[0] / transforms.read(out / NAMES[0])["frames"][1]["depth_file_path"]
    lost.unlink()
    cut = out / NAMES[1] / transforms.read(out / NAMES[1])["frames"][2]["file_path"]
    cut.write_bytes(cut.read_bytes()[:40])
    assert exit_code("interpolate", str(dataset), str(out), "--factor", "2", "--allow-skips") == 0
    again = contents(out)
    assert {k: v[0] for k, v in again.items()} == {k: v[0] for k, v in first.items()}  # repaired, same bytes
    untouched = [k for k in first if k.startswith(NAMES[2])]
    assert untouched and all(again[k] == first[k] for k in untouched)
