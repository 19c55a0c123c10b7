"""What iToF and LiDAR need from their source, refused the same way for both: a missing albedo pass names
--render-config.albedo, missing normals name --no-incidence, frames interpolated on the fly are refused by the
library and, in create-datasets, before anything renders."""

from __future__ import annotations

import pytest
from cli_errors import one_line_error
from synthetic_active import plane_frame, write_active_sequence
from synthetic_plane import write_plane_sequence

from camsim.cli import main
from camsim.emulate.sensors import SENSORS, emulate_sequence
from camsim.errors import DatasetError

H, W = 6, 8
ACTIVE = ("itof", "lidar")
QUICK = {"itof": [], "lidar": ["--cycles", "10"]}


@pytest.mark.parametrize("sensor", ACTIVE)
def test_source_without_albedo_is_refused_naming_the_flag(sensor, tmp_path, capsys):
    seq = write_active_sequence(tmp_path / "seq", lambda i: plane_frame(H, W, 2.0), 4, H, W, albedo=False)
    assert "--render-config.albedo" in one_line_error(capsys, "emulate", sensor, seq, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sensor", ACTIVE)
def test_source_without_normals_needs_no_incidence(sensor, tmp_path, capsys):
    def frame(i):
        f = plane_frame(H, W, 2.0)
        del f["normal"]
        return f

    seq = write_active_sequence(tmp_path / "seq", frame, 4, H, W)
    assert "--no-incidence" in one_line_error(capsys, "emulate", sensor, seq, tmp_path / "out")
    with pytest.raises(SystemExit) as exc:
        main(["emulate", sensor, str(seq), str(tmp_path / "ok"), "--no-incidence", *QUICK[sensor]])
    assert exc.value.code == 0


@pytest.mark.parametrize("sensor", ACTIVE)
def test_frames_interpolated_on_the_fly_are_refused(sensor, tmp_path):
    from camsim.interpolate.stream import open_streamed

    streamed = open_streamed(write_plane_sequence(tmp_path / "plane", n=4, albedo=True), 2, 60.0, "auto")
    with pytest.raises(DatasetError, match="interpolated on the fly"):
        emulate_sequence(sensor, SENSORS[sensor].config(), streamed, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sensor", ACTIVE)
def test_create_datasets_refuses_them_on_the_fly_before_rendering(sensor, tmp_path, capsys):
    err = one_line_error(capsys, "create-datasets", "--scenes-dir", tmp_path, "--datasets-dir", tmp_path / "ds",
                         "--render-config.albedo", "--interpolate-factor", "2", "--no-keep-interpolated",
                         "--emulate", sensor)  # fmt: skip
    assert (
        f"--emulate {sensor} cannot read frames interpolated on the fly" in err
        and "--no-keep-interpolated" in err
    )
    assert not (tmp_path / "ds").exists()
