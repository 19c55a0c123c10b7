"""One sequence reader: `transforms.frame_times` and friends read times, numbers, poses and fps by one rule
(TIME_RULE), reject bad values with DatasetErrors, and every reader of a sequence (loader, emulators,
interpolation, preview) gets the same times from it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import synthetic_plane

from camsim import preview, transforms
from camsim.emulate.light import open_sequence
from camsim.errors import DatasetError
from camsim.interpolate.sequence import check_input, plan
from camsim.loader import Dataset

plane_sequence = synthetic_plane.plane_sequence  # fixture


def _meta(times=None, numbers=None, fps=None, n=4):
    frames = []
    for i in range(n):
        m = np.eye(4)
        m[:3, 3] = [i, 2 * i, 0.5]
        fr = {"transform_matrix": m.tolist()}
        if times is not None and times[i] is not None:
            fr["time"] = times[i]
        if numbers is not None and numbers[i] is not None:
            fr["frame_number"] = numbers[i]
        frames.append(fr)
    return {"frames": frames, **({"fps": fps} if fps is not None else {})}


def test_frame_times_are_the_frames_times_when_every_frame_has_one():
    meta = _meta(times=[0.5, 0.25, 1, 2.0], numbers=[3, 4, 5, 6], fps=10.0)
    times = transforms.frame_times(meta)
    assert times.dtype == np.float64 and times.tolist() == [0.5, 0.25, 1.0, 2.0]  # any order, as written
    with pytest.raises(DatasetError, match=r"strictly increase \(frames\[1\] at 0.25 s"):
        transforms.frame_times(meta, increasing=True)


def test_missing_times_are_frame_numbers_over_fps_from_the_first_frame():
    assert transforms.frame_times(_meta(numbers=[7, 9, 13, 14], fps=2.0)).tolist() == [0.0, 1.0, 3.0, 3.5]
    # no frame_number: the index stands in for it
    assert transforms.frame_times(_meta(fps=4.0)).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert transforms.frame_times(_meta(numbers=[None, 5, None, 9], fps=1.0)).tolist() == [0.0, 5.0, 2.0, 9.0]
    # a time on only some frames is not every frame's: the rule applies to all of them
    partial = _meta(times=[0.0, None, 5.0, None], numbers=[10, 11, 12, 13], fps=10.0)
    assert transforms.frame_times(partial) == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-15)


def test_a_sequence_with_neither_times_nor_fps_has_no_times():
    meta = _meta(numbers=[1, 2, 3, 4])
    assert not transforms.has_frame_times(meta)
    with pytest.raises(DatasetError, match=r"no 'time'.*no 'fps'"):
        transforms.frame_times(meta)
    assert transforms.has_frame_times(_meta(times=[0, 1, 2, 3]))
    assert transforms.has_frame_times(_meta(fps=5.0))
    assert transforms.fps(meta) is None and transforms.fps(_meta(fps=25)) == 25.0


def test_frame_numbers_and_poses():
    meta = _meta(numbers=[None, 12, None, 40])
    numbers = transforms.frame_numbers(meta)
    assert numbers.dtype == np.int64 and numbers.tolist() == [0, 12, 2, 40]
    poses = transforms.poses(meta)
    assert poses.shape == (4, 4, 4) and poses.dtype == np.float64
    assert poses[:, :3, 3].tolist() == [[i, 2 * i, 0.5] for i in range(4)]
    assert transforms.poses({"frames": []}).shape == (0, 4, 4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", True, None])
def test_a_bad_time_is_a_dataset_error(bad):
    meta = _meta(times=[0.0, 0.5, 1.0, 1.5], fps=2.0)
    meta["frames"][2]["time"] = bad
    with pytest.raises(DatasetError, match=r"frames\[2\]: 'time' must be a finite number"):
        transforms.frame_times(meta)


@pytest.mark.parametrize("bad", [0, -24.0, float("nan"), float("inf"), "24", True])
def test_a_bad_fps_is_a_dataset_error(bad):
    meta = _meta(numbers=[1, 2, 3, 4], fps=bad)
    with pytest.raises(DatasetError, match="'fps' must be a positive finite number"):
        transforms.fps(meta)
    with pytest.raises(DatasetError, match="'fps' must be a positive finite number"):
        transforms.frame_times(meta)  # the times come from it


@pytest.mark.parametrize("bad", [2.5, 3.0, "3", True, None])
def test_a_bad_frame_number_is_a_dataset_error(bad):
    meta = _meta(numbers=[1, 2, 3, 4], fps=2.0)
    meta["frames"][3]["frame_number"] = bad
    with pytest.raises(DatasetError, match=r"frames\[3\]: 'frame_number' must be an integer"):
        transforms.frame_numbers(meta)
    with pytest.raises(DatasetError, match=r"frames\[3\]: 'frame_number' must be an integer"):
        transforms.frame_times(meta)  # the times come from it


@pytest.mark.parametrize("matrix", [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], "eye", [[float("nan")] * 4] * 4, None])
def test_bad_poses_are_dataset_errors(matrix):
    meta = _meta()
    meta["frames"][1]["transform_matrix"] = matrix
    with pytest.raises(DatasetError, match=r"frames\[1\]: transform_matrix must be a 4x4"):
        transforms.poses(meta)


def _without_times(root, numbers=None, fps=None):
    meta = transforms.read(root)
    for i, fr in enumerate(meta["frames"]):
        del fr["time"]
        if numbers is not None:
            fr["frame_number"] = numbers[i]
    if fps is None:
        del meta["fps"]
    else:
        meta["fps"] = fps
    transforms.write(root / "transforms.json", meta)
    return meta


def test_every_reader_gets_the_same_times_of_a_sequence_without_times(plane_sequence):
    root = plane_sequence(n=4)
    meta = _without_times(root, numbers=[20, 22, 26, 27], fps=8.0)
    want = [0.0, 0.25, 0.75, 0.875]
    assert transforms.frame_times(meta).tolist() == want
    ds = Dataset.from_path(root)
    assert [ds[i]["time"] for i in range(4)] == want
    assert [ds[i]["frame_number"] for i in range(4)] == [20, 22, 26, 27]
    assert ds.fps == 8.0
    seq = open_sequence(root)
    assert seq.times.tolist() == want and seq.frame_numbers.tolist() == [20, 22, 26, 27] and seq.fps == 8.0
    np.testing.assert_array_equal(seq.poses, transforms.poses(meta))
    records = plan(meta, 2)[0]
    assert [r["time"] for r in records if not r["interpolated"]] == want
    assert preview._event_edges(ds).tolist() == [0, 250_000, 750_000, 875_000]


def test_readers_that_need_times_refuse_a_sequence_without_times_or_fps(plane_sequence):
    root = plane_sequence(n=3)
    meta = _without_times(root)
    ds = Dataset.from_path(root)
    assert "time" not in ds[1] and ds[1]["frame_number"] == 11 and ds.fps is None  # none to give
    with pytest.raises(DatasetError, match=r"seq: frames have no 'time' and transforms.json has no 'fps'"):
        open_sequence(root)
    with pytest.raises(DatasetError, match="cannot interpolate between frames: frames have no 'time'"):
        check_input(copy.deepcopy(meta), 2)


def test_emulators_and_interpolation_refuse_times_that_do_not_increase(plane_sequence):
    root = plane_sequence(n=3)
    meta = transforms.read(root)
    meta["frames"][2]["time"] = meta["frames"][1]["time"]
    transforms.write(root / "transforms.json", meta)
    with pytest.raises(DatasetError, match=r"seq: frame times must strictly increase \(frames\[2\]"):
        open_sequence(root)
    with pytest.raises(DatasetError, match=r"cannot interpolate between frames: frame times must strictly"):
        check_input(meta, 2)
    assert len(Dataset.from_path(root)[2]) > 0  # the loader reads frames in any order
