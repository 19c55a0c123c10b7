"""`camsim emulate <sensor>`: runs each emulator, and bad input is one error line with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_sensors import circle_poses, constant_frames, write_sequence

from camsim.cli import main


@pytest.fixture
def seq(tmp_path):
    times = np.arange(8) / 30.0
    return write_sequence(
        tmp_path / "seq", constant_frames(0.4, 6, 10, 8), times, circle_poses(times, 1.0, 1.0)
    )


@pytest.mark.parametrize(
    ("sensor", "args", "marker"),
    [
        ("spad", ["--frames-per-input", "2"], "frames.npy"),
        ("rgb", ["--chunk-size", "2", "--rolling-shutter"], "frames/frame_000000.png"),
        ("events", ["--preview-window", "0.1"], "events.h5"),
        ("imu", ["--rate", "100"], "imu0/data.csv"),
    ],
)
def test_emulate_cli_runs_each_sensor_and_writes_params(seq, tmp_path, sensor, args, marker):
    out = tmp_path / sensor
    with pytest.raises(SystemExit) as exc:
        main(["emulate", sensor, str(seq), str(out), "--seed", "3", *args])
    assert exc.value.code == 0
    assert (out / marker).exists()
    params = json.loads((out / "params.json").read_text())
    assert params["sensor"] == sensor and params["config"]["seed"] == 3


def test_emulate_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "spad", str(tmp_path / "missing"), str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("camsim: error:") and "transforms.json" in err[0]


def test_emulate_cli_bad_parameter_is_exit_code_2(seq, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "rgb", str(seq), str(tmp_path / "out"), "--qe", "1.5"])
    assert exc.value.code == 2
    assert "qe must be in [0, 1]" in capsys.readouterr().err
