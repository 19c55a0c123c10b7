"""`camsim emulate lidar` and `create-datasets --emulate lidar`: bad input is one error line with exit code 2 (a
source without the albedo pass names --render-config.albedo); a good run writes what FORMAT.md documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_errors import one_line_error
from synthetic_active import plane_frame, write_active_sequence
from test_format_documented import documented, keys_of, section

from camsim.cli import main

H, W = 6, 8


@pytest.fixture
def seq(tmp_path):
    return write_active_sequence(tmp_path / "seq", lambda i: plane_frame(H, W, 4.0), 4, H, W)


def test_cli_writes_histograms_points_and_documented_keys(seq, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "lidar", str(seq), str(out), "--seed", "3", "--histogram", "equi-depth", "--bins", "8",
              "--cycles", "500", "--scan", "rows"])  # fmt: skip
    assert exc.value.code == 0
    meta = json.loads((out / "transforms.json").read_text())
    params = json.loads((out / "params.json").read_text())
    hist = np.load(out / meta["histograms_file_path"])
    pts = np.load(out / meta["points_file_path"])
    assert (
        hist.shape == (3, H, W, 9)
        and hist.dtype == np.uint16
        and meta["lidar"]["histogram_dtype"] == "uint16"
    )
    assert pts.shape == (3, H, W) and meta["lidar"]["estimator"] == "densest-bin"
    assert (hist[..., 1:] >= hist[..., :-1]).all() and (hist[..., -1] == meta["lidar"]["tdc_bins"]).all()
    assert (
        params["sensor"] == "lidar"
        and params["config"]["seed"] == 3
        and params["derived"]["output_frames"] == 3
    )
    text = section("Emulated sequences")
    inherited = documented(section("`transforms.json` of a rendered sequence"))
    for data in (meta, params):
        missing = keys_of(data) - documented(text) - inherited
        assert not missing, f"FORMAT.md does not document {sorted(missing)}"
    assert set(pts.dtype.names) <= documented(text)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--pde", "1.5"], "pde must be in [0, 1]"),
        (["--cycles", "0"], "cycles must be at least 1"),
        (["--histogram", "equi-depth", "--estimator", "peak"], "does not apply to equi-depth"),
        (["--estimator", "densest-bin"], "does not apply to equi-width"),
        (["--max-range", "200"], "unambiguous range 149.896"),
        (["--dead-time", "900e-9"], "--no-coates"),
        (["--scan", "rows", "--scan-time", "0.001"], "do not fit"),
        (["--scan", "rows", "--scan-time", "0.5"], "longer than the frame period"),
        (["--scan-time", "0.01"], "applies to the rows and rotating scans"),
        (["--scan", "rows", "--frame-rate", "1"], "longer than the source"),
    ],
)
def test_bad_settings_are_one_line_and_exit_code_2(seq, tmp_path, capsys, args, words):
    assert words in one_line_error(capsys, "emulate", "lidar", seq, tmp_path / "out", *args)
    assert not (tmp_path / "out").exists()


def test_a_dead_time_reaching_the_next_gate_runs_cycle_by_cycle_without_coates(seq, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "lidar", str(seq), str(tmp_path / "out"), "--dead-time", "900e-9", "--no-coates",
              "--cycles", "50"])  # fmt: skip
    assert exc.value.code == 0
    block = json.loads((tmp_path / "out" / "transforms.json").read_text())["lidar"]
    assert block["detection_model"].startswith("cycle by cycle") and block["coates"] is False


def test_create_datasets_takes_lidar_flags_and_refuses_bad_ones(tmp_path, capsys):
    err = one_line_error(capsys, "create-datasets", "--scenes-dir", tmp_path, "--datasets-dir", tmp_path / "ds",
                         "--emulate", "lidar", "--lidar.cycles", "0")  # fmt: skip
    assert "--lidar.*" in err and "cycles must be at least 1" in err
