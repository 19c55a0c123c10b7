"""Derived outputs keep the source's time base: every writer (SPAD, RGB, events, IMU, interpolation) run on a
real rendered sequence gives each output frame a `time` on the source's clock and a `source_frame_number`
that map back to the source transforms.json numerically, an integer `frame_number` unique in the output,
and `conventions` that describe only what the output holds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST

from camsim import transforms
from camsim.emulate import EventsConfig, ImuConfig, RgbConfig, SpadConfig
from camsim.emulate.imu import read_imu_csv
from camsim.emulate.sensors import emulate_tree
from camsim.interpolate.tree import interpolate_tree

pytestmark = pytest.mark.blender

FIRST, LAST = 3, 10  # not the scene's first frame: time does not start at 0, numbers not at 1


@pytest.fixture(scope="module")
def source(demo_scenes, render) -> Path:
    return render(
        demo_scenes[0], "time-base", dataclasses.replace(FAST, linear=True), frame_start=FIRST, frame_end=LAST
    )


@pytest.fixture(scope="module")
def src_meta(source) -> dict:
    return transforms.read(source)


def _source_axes(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    times = np.array([f["time"] for f in meta["frames"]])
    numbers = np.array([f["frame_number"] for f in meta["frames"]], dtype=float)
    return times, numbers


def _time_of_number(meta: dict, f: float) -> float:
    """The source's time at (fractional) source frame number f: linear between frames, end spacing beyond."""
    times, numbers = _source_axes(meta)
    i = int(np.clip(np.searchsorted(numbers, f, side="right") - 1, 0, len(numbers) - 2))
    return float(times[i] + (f - numbers[i]) * (times[i + 1] - times[i]) / (numbers[i + 1] - numbers[i]))


def _holds(meta: dict, root: Path, key: str) -> bool:
    """Does the output hold what convention `key` describes? (KeyError: a convention this test does not know.)"""
    frames = meta["frames"]

    def some(k: str) -> bool:
        return k in meta or any(k in f for f in frames)

    def every(k: str) -> bool:
        return bool(frames) and all(k in f for f in frames)

    events = any((root / n).is_file() for n in ("events.h5", "events.txt", "events.npz"))
    passes = ("depth_file_path", "normal_file_path", "flow_file_path", "segmentation_file_path")
    return {
        "camera_axes": every("transform_matrix"),
        "transform_matrix": every("transform_matrix"),
        "world_axes": every("transform_matrix"),
        "pixel_origin": some("file_path") or events,
        "intrinsics": all(k in meta for k in ("fl_x", "fl_y", "cx", "cy")) or every("fl_x"),
        "depth": some("depth_file_path"),
        "normal": some("normal_file_path"),
        "flow": some("flow_file_path"),
        "segmentation": some("segmentation_file_path"),
        "linear": some("linear_file_path"),
        "sampling": any(some(k) for k in passes),
        "rgb": some("file_path") and "sensor" not in meta,  # colour-managed renders, not a sensor's frames
        "frames": some("file_path"),
        "raw": some("raw_file_path"),
        "events": events,
        "poses": every("transform_matrix") and not some("file_path"),
        "event_previews": "event_previews" in meta,
        "camera": every("camera"),
        "time": every("time"),
        "frame_number": every("frame_number"),
        "source_frame_number": every("source_frame_number"),
        "hole_mask": some("hole_mask_file_path"),
    }[key]


def _check_common(out: Path, src_meta: dict, subframes: int) -> dict:
    meta = transforms.read(out)
    for key in meta["conventions"]:
        assert _holds(meta, out, key), (
            f"{out.name}: conventions[{key!r}] describes what the output does not hold"
        )
    assert meta["subframes_per_source_frame"] == subframes
    assert meta["source_fps"] == pytest.approx(src_meta["fps"])
    numbers = [f["frame_number"] for f in meta["frames"]]
    assert all(isinstance(n, int) for n in numbers) and len(set(numbers)) == len(numbers)
    assert numbers == sorted(numbers)
    for f in meta["frames"]:  # time and source_frame_number agree with the source's own time base
        assert f["time"] == pytest.approx(_time_of_number(src_meta, f["source_frame_number"]), abs=1e-9)
        assert f.get("camera") == src_meta["frames"][0]["camera"]
    return meta


def test_spad_binary_frames_number_as_k_subframes_of_their_source_frame(source, src_meta, tmp_path):
    k = 3
    out = tmp_path / "spad"
    emulate_tree("spad", source, out, SpadConfig(frames_per_input=k), workers=1)
    meta = _check_common(out, src_meta, k)
    _, src_numbers = _source_axes(src_meta)
    assert len(meta["frames"]) == k * len(src_numbers)
    for j, f in enumerate(meta["frames"]):
        i, kk = divmod(j, k)
        assert f["frame_number"] == src_numbers[i] * k + kk
        # binary frame kk of source frame i spans [i - 1/2 + kk/K, i - 1/2 + (kk+1)/K): its middle
        assert f["source_frame_number"] == pytest.approx(src_numbers[i] - 0.5 + (kk + 0.5) / k, abs=1e-9)
    conv = meta["conventions"]
    assert "sRGB" not in conv["frames"] and "binary photon detections" in conv["frames"]
    for gone in ("rgb", "depth", "normal", "flow", "segmentation", "sampling"):
        assert gone not in conv


def test_spad_multibit_img_frames_carry_their_first_binary_frame_number(source, src_meta, tmp_path):
    out = tmp_path / "spad2"
    emulate_tree("spad", source, out, SpadConfig(frames_per_input=3, bits=2, mode="img"), workers=1)
    meta = _check_common(out, src_meta, 3)
    _, src_numbers = _source_axes(src_meta)
    assert [f["frame_number"] for f in meta["frames"]] == [3 * n for n in src_numbers]
    # 3 binary frames of one source frame: their middle is the source frame itself
    assert [f["source_frame_number"] for f in meta["frames"]] == pytest.approx(src_numbers, abs=1e-9)
    for f in meta["frames"]:
        assert f["file_path"] == f"frames/frame_{f['frame_number']:06d}.png"
        assert (out / f["file_path"]).is_file()


def test_rgb_frames_number_as_their_first_source_frame_and_sit_mid_exposure(source, src_meta, tmp_path):
    out = tmp_path / "rgb"
    emulate_tree("rgb", source, out, RgbConfig(chunk_size=3, raw=True), workers=1)
    meta = _check_common(out, src_meta, 1)
    _, src_numbers = _source_axes(src_meta)
    n = len(src_numbers)  # 8 frames: exposures of 3, 3 and the 2 left
    assert [f["exposure_input_frames"] for f in meta["frames"]] == [3, 3, 2]
    assert [f["frame_number"] for f in meta["frames"]] == [src_numbers[0], src_numbers[3], src_numbers[6]]
    mids = [src_numbers[0] + 1, src_numbers[3] + 1, src_numbers[6] + 0.5]
    assert [f["source_frame_number"] for f in meta["frames"]] == pytest.approx(mids, abs=1e-9)
    assert n == 8 and "raw" in meta["conventions"] and "sRGB" in meta["conventions"]["frames"]


def test_event_frames_are_the_source_frames(source, src_meta, tmp_path):
    out = tmp_path / "events"
    emulate_tree("events", source, out, EventsConfig(preview_window=0.02), workers=1)
    meta = _check_common(out, src_meta, 1)
    times, src_numbers = _source_axes(src_meta)
    assert [f["frame_number"] for f in meta["frames"]] == src_numbers.tolist()
    assert [f["source_frame_number"] for f in meta["frames"]] == src_numbers.tolist()
    assert [f["time"] for f in meta["frames"]] == times.tolist()
    assert "rgb" not in meta["conventions"] and "frames" not in meta["conventions"]


def test_imu_timestamps_are_the_source_clock(source, src_meta, tmp_path):
    out = tmp_path / "imu"
    emulate_tree("imu", source, out, ImuConfig(rate=400.0), workers=1)
    times, src_numbers = _source_axes(src_meta)
    assert times[0] > 0  # the sequence starts after the scene's first frame
    ts, _ = read_imu_csv(out / "imu0" / "data.csv")
    derived = json.loads((out / "params.json").read_text())["derived"]
    k = np.arange(len(ts))
    assert len(ts) == derived["samples"]
    np.testing.assert_array_equal(
        ts, np.rint(np.minimum(times[0] + k / 400.0, times[-1]) * 1e9).astype(np.int64)
    )
    assert ts[-1] <= round(times[-1] * 1e9) and (times[-1] - ts[-1] * 1e-9) < 1 / 400.0
    assert derived["start_time_s"] == times[0] and derived["source_frame_number_at_start"] == src_numbers[0]
    last = derived["source_frame_number_at_last_sample"]
    assert _time_of_number(src_meta, last) == pytest.approx(ts[-1] * 1e-9, abs=1e-9)
    gt_ts, _ = read_imu_csv(out / "state_groundtruth_estimate0" / "data.csv")
    np.testing.assert_array_equal(gt_ts, ts)


def test_interpolated_frames_keep_the_time_base(source, src_meta, tmp_path):
    out = tmp_path / "x3"
    interpolate_tree(source, out, 3, workers=1)
    meta = _check_common(out, src_meta, 3)
    for f in meta["frames"]:
        assert f["frame_number"] == pytest.approx(3 * f["source_frame_number"], abs=1e-9)
    conv = meta["conventions"]
    assert "interpolated" in conv["rgb"] and "hole_mask" in conv
    assert "settings_hash" not in meta  # the render's hash moved into the interpolation block
    if "settings_hash" in src_meta:
        assert meta["interpolation"]["source"]["settings_hash"] == src_meta["settings_hash"]
