"""`camsim emulate itof` and `create-datasets --emulate itof`: bad input is one error line with exit code 2 (a
source without the albedo pass names --render-config.albedo); a good run writes what FORMAT.md lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_errors import one_line_error
from synthetic_active import plane_frame, write_active_sequence

from camsim.cli import main

H, W = 6, 8


@pytest.fixture
def seq(tmp_path):
    return write_active_sequence(tmp_path / "seq", lambda i: plane_frame(H, W, 2.0), 8, H, W)


def test_cli_writes_taps_params_and_transforms(seq, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "itof", str(seq), str(out), "--seed", "3", "--frequencies", "80", "100", "--taps", "3",
              "--code", "square"])  # fmt: skip
    assert exc.value.code == 0
    taps = np.load(out / "frames.npy")
    assert taps.shape == (1, H, W, 6) and taps.dtype == np.uint16
    meta = json.loads((out / "transforms.json").read_text())
    params = json.loads((out / "params.json").read_text())
    assert meta["sensor"] == "itof" and meta["file_path"] == "frames.npy" and meta["warnings"] == []
    assert meta["itof"]["frequencies_mhz"] == [80.0, 100.0] and meta["itof"]["code"] == "square"
    assert meta["itof"]["unambiguous_range_m"] == pytest.approx(299_792_458.0 / (2 * 20e6))
    assert len(meta["frames"]) == 1 and len(meta["frames"][0]["tap_times"]) == 6
    assert params["sensor"] == "itof" and params["config"]["seed"] == 3
    assert params["derived"]["unused_source_frames"] == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--taps", "2"], "taps must be at least 3"),
        (["--frequencies", "20", "20.0001"], "greatest common divisor"),
        (["--frequencies", "-5"], "frequencies must be positive"),
        (["--taps", "5"], "give no iToF frame of 5 taps"),
        (["--tap-exposure", "0.5"], "longer than the source frame period"),
        (["--qe", "1.5"], "qe must be in [0, 1]"),
        (["--adc-bits", "17"], "adc_bits must be in 1..16"),
    ],
)
def test_bad_settings_are_one_line_and_exit_code_2(seq, tmp_path, capsys, args, words):
    seq4 = write_active_sequence(tmp_path / "seq4", lambda i: plane_frame(H, W, 2.0), 4, H, W)
    assert words in one_line_error(capsys, "emulate", "itof", seq4, tmp_path / "out", *args)


def test_create_datasets_takes_itof_flags_and_refuses_bad_ones(tmp_path, capsys):
    err = one_line_error(capsys, "create-datasets", "--scenes-dir", tmp_path, "--datasets-dir", tmp_path / "ds",
                         "--emulate", "itof", "--itof.taps", "2")  # fmt: skip
    assert "--itof.*" in err and "taps must be at least 3" in err
