"""`emulate rgb` when the input does not divide into exposures: the last frame is kept (as VisionSim rounds
up), averages only the frames left, and says so in transforms.json, params.json and on the console."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_sensors import constant_frames, write_sequence

from camsim import transforms
from camsim.cli import main
from camsim.emulate import RgbConfig, emulate_rgb
from camsim.emulate.light import linear_to_srgb
from camsim.fileio import read_image

LEVELS = (0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8)


@pytest.fixture
def ramp(tmp_path):
    """7 flat frames of rising brightness: an exposure's grey level says which frames it averaged."""
    frames = [constant_frames(v, 6, 8, 1)[0] for v in LEVELS]
    return write_sequence(tmp_path / "seq", frames, np.arange(7) / 30.0)


def _grey(path) -> float:
    return float(read_image(path).astype(np.float64).mean())


def _expected(values) -> float:
    return float(np.rint(linear_to_srgb(np.float32(np.mean(values))) * 255))


def test_the_last_partial_exposure_is_kept_and_averages_the_frames_left(ramp, tmp_path):
    cfg = RgbConfig(chunk_size=3, noise=False, bayer=False, flux=1e5)  # white below full well
    out = emulate_rgb(ramp, tmp_path / "out", cfg)
    meta = transforms.read(out)
    assert [f["exposure_input_frames"] for f in meta["frames"]] == [3, 3, 1]
    greys = [_grey(out / f["file_path"]) for f in meta["frames"]]
    assert greys == pytest.approx(
        [_expected(LEVELS[0:3]), _expected(LEVELS[3:6]), _expected(LEVELS[6:])], abs=0.5
    )
    derived = json.loads((out / "params.json").read_text())["derived"]
    assert derived["partial_last_exposure"] == {"input_frames": 1, "of": 3}
    assert derived["output_frames"] == 3
    assert meta["frames"][-1]["time"] == pytest.approx(6 / 30.0)  # its middle: the one frame it holds


def test_whole_exposures_report_no_partial_frame(ramp, tmp_path):
    out = emulate_rgb(ramp, tmp_path / "out", RgbConfig(chunk_size=7, noise=False))
    meta = transforms.read(out)
    assert [f["exposure_input_frames"] for f in meta["frames"]] == [7]
    assert json.loads((out / "params.json").read_text())["derived"]["partial_last_exposure"] is None


def test_fewer_frames_than_one_exposure_give_one_partial_frame(ramp, tmp_path):
    out = emulate_rgb(ramp, tmp_path / "out", RgbConfig(chunk_size=10, noise=False))
    assert [f["exposure_input_frames"] for f in transforms.read(out)["frames"]] == [7]


def test_a_rolling_shutter_partial_exposure_keeps_every_row_lit(ramp, tmp_path):
    out = emulate_rgb(ramp, tmp_path / "out", RgbConfig(chunk_size=2, rolling_shutter=True, noise=False))
    meta = transforms.read(out)
    frames = meta["frames"]
    assert frames[-1]["exposure_input_frames"] < max(f["exposure_input_frames"] for f in frames)
    last = read_image(out / frames[-1]["file_path"]).astype(np.float64)
    assert last.min(axis=(1, 2)).min() > 0  # no row left without light


def test_the_cli_reports_the_partial_frame(ramp, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["emulate", "rgb", str(ramp), str(tmp_path / "out"), "--chunk-size", "3"])
    assert exc.value.code == 0
    assert "the last frame integrates 1 of 3 input frames" in capsys.readouterr().out
