"""An interpolated sequence streamed into the emulators (`--no-keep-interpolated`) is the written one, bit for
bit: the same frames, metadata and time base, the same sensor outputs; it is recorded as streamed, with an
identity that changes with the interpolation settings; and its pair warpers stay few on a long sequence."""

from __future__ import annotations

import gc
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import synthetic_scenes as S

from camsim import derive
from camsim.emulate import EventsConfig, ImuConfig, RgbConfig, SpadConfig
from camsim.emulate.common import parallel_map
from camsim.emulate.light import open_sequence
from camsim.emulate.sensors import emulate_sequence, emulate_tree, record_for
from camsim.errors import UserInputError
from camsim.fileio import read_image, write_image
from camsim.interpolate.sequence import interpolate_sequence, transforms
from camsim.interpolate.sequence import settings as interp_settings
from camsim.interpolate.stream import PairCache, Streamed, open_streamed, streamed_sha256
from camsim.interpolate.warp import PairWarper
from camsim.resume import Reuse

SCENE = S.TWO_LAYERS
CONFIGS = {"spad": SpadConfig(), "rgb": RgbConfig(), "events": EventsConfig(), "imu": ImuConfig()}
PIXEL_FREE = ("hole_fraction",)
"""Frame keys only the written files can give (besides their paths)."""


def _render(folder: Path, n: int = 4, linear: bool = False, jpeg: bool = False) -> Path:
    S.write_sequence(folder, SCENE, n, first_number=5, linear=linear)
    if jpeg:  # the same render with JPEG frames: interpolation writes JPEG too, which is lossy
        meta = transforms.read(folder)
        for fr in meta["frames"]:
            png = folder / fr["file_path"]
            fr["file_path"] = str(Path(fr["file_path"]).with_suffix(".jpg"))
            write_image(folder / fr["file_path"], read_image(png))
            png.unlink()
        transforms.write(folder / "transforms.json", meta)
    return folder


def _without_files(meta: dict) -> dict:
    frames = [
        {k: v for k, v in fr.items() if not k.endswith("file_path") and k not in PIXEL_FREE}
        for fr in meta["frames"]
    ]
    return {**meta, "frames": frames}


@pytest.mark.parametrize(
    ("linear", "factor", "light", "jpeg"),
    [
        (False, 2, "auto", False),
        (False, 4, "auto", False),
        (True, 2, "auto", False),
        (True, 4, "auto", False),
        (True, 2, "srgb", False),
        (False, 2, "auto", True),
    ],
)
def test_streamed_frames_are_the_written_ones_bit_for_bit(tmp_path, linear, factor, light, jpeg):
    src = _render(tmp_path / "render", linear=linear, jpeg=jpeg)
    interpolate_sequence(src, tmp_path / "written", factor, workers=1)
    written = open_sequence(tmp_path / "written", light)
    streamed = open_streamed(src, factor, light=light)

    assert streamed.light_name == written.light_name
    assert (streamed.n, streamed.h, streamed.w, streamed.fps) == (
        written.n,
        written.h,
        written.w,
        written.fps,
    )
    for field in ("times", "poses", "numbers"):
        assert np.array_equal(getattr(streamed, field), getattr(written, field)), field
    assert streamed.meta == _without_files(written.meta)
    for i in range(written.n):
        expected = written.linear(i)
        got = streamed.linear(i)
        assert got.dtype == expected.dtype == np.float32
        assert np.array_equal(got, expected), f"frame {i}"


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "params.json"
    }


@pytest.mark.parametrize(
    ("sensor", "linear"), [("spad", False), ("rgb", True), ("events", True), ("imu", False)]
)
def test_emulators_give_the_same_output_from_a_streamed_source(tmp_path, sensor, linear):
    src = _render(tmp_path / "render", n=5, linear=linear)
    interpolate_sequence(src, tmp_path / "written", 2, workers=1)
    cfg = CONFIGS[sensor]
    from_written = emulate_sequence(
        sensor, cfg, open_sequence(tmp_path / "written"), tmp_path / "a", "run", 3
    )
    streamed = open_streamed(src, 2)
    from_stream = emulate_sequence(sensor, cfg, streamed, tmp_path / "b", "run", 3)

    expected, got = _files(from_written), _files(from_stream)
    assert sorted(got) == sorted(expected)
    for name, data in expected.items():
        assert got[name] == data, name

    params = json.loads((from_stream / "params.json").read_bytes())
    assert params["source"] == f"{src} (interpolated x2, streamed)"
    assert params["source_transforms_sha256"] == streamed.source_sha256
    assert params["source_interpolation"] == {
        "streamed": True,
        "settings": interp_settings(2, 60.0),
        "settings_hash": derive.settings_hash("interpolate", interp_settings(2, 60.0)),
        "source": str(src),
        "source_transforms_sha256": derive.source_sha256(src),
    }
    assert "source_interpolation" not in json.loads((from_written / "params.json").read_bytes())
    # A rerun with --allow-skips keeps the streamed output: it carries the record the planner compares.
    record, total = record_for(sensor, cfg, open_streamed(src, 2))
    assert total == record_for(sensor, cfg, open_sequence(tmp_path / "written"))[1]
    assert derive.decide(from_stream, record, Reuse(resume=True)) == "skip"


def test_the_streamed_identity_changes_with_the_interpolation_settings(tmp_path):
    src = _render(tmp_path / "render")
    render_sha = derive.source_sha256(src)
    x2, x4, x2_sharper = open_streamed(src, 2), open_streamed(src, 4), open_streamed(src, 2, beta=90.0)
    assert x2.source_sha256 == streamed_sha256(render_sha, 2, 60.0) == open_streamed(src, 2).source_sha256
    assert len({render_sha, x2.source_sha256, x4.source_sha256, x2_sharper.source_sha256}) == 4
    assert x4.source == f"{src} (interpolated x4, streamed)"

    out = emulate_sequence("events", EventsConfig(), x2, tmp_path / "events", "run", 1)
    record, _ = record_for("events", EventsConfig(), x4)
    with pytest.raises(UserInputError, match="another version of its source"):
        derive.decide(out, record, Reuse(resume=True))


def test_a_dataset_folder_streams_through_the_planner_in_pool_processes(tmp_path):
    """emulate_tree with a streaming opener: each render interpolated on the fly, in parallel processes."""
    for k in range(2):
        _render(tmp_path / "renders" / f"seq_{k}", n=3 + k)
        interpolate_sequence(
            tmp_path / "renders" / f"seq_{k}", tmp_path / "written" / f"seq_{k}", 2, workers=1
        )
    emulate_tree(
        "events", tmp_path / "renders", tmp_path / "streamed", EventsConfig(), workers=2, opener=Streamed(2)
    )
    emulate_tree("events", tmp_path / "written", tmp_path / "from_written", EventsConfig(), workers=2)
    for k in range(2):
        assert _files(tmp_path / "streamed" / f"seq_{k}") == _files(tmp_path / "from_written" / f"seq_{k}")
    plan = emulate_tree(
        "events", tmp_path / "renders", tmp_path / "streamed", EventsConfig(), reuse=Reuse(resume=True),
        opener=Streamed(2),
    )  # fmt: skip
    assert [j.action for j in plan.jobs] == ["skip", "skip"]


def _warpers_alive(collect: bool = True) -> int:
    if collect:
        gc.collect()
    return sum(isinstance(o, PairWarper) for o in gc.get_objects())


def test_pair_warpers_stay_few_and_are_built_once_on_a_long_sequence(tmp_path):
    src = _render(tmp_path / "render", n=20)
    baseline = _warpers_alive()

    forward = open_streamed(src, 2, cache_pairs=2)
    alive = []
    for i in range(forward.n):
        forward.linear(i)
        alive.append(_warpers_alive() - baseline)
        assert forward.cached_pairs <= 2
    assert forward.pairs_built == 19  # each pair once
    assert max(alive) == 2  # the pair being read and the one before it
    del forward  # freed at once (no reference cycle keeps its warpers until a garbage collection)
    assert _warpers_alive(collect=False) == baseline

    threaded = open_streamed(src, 4, cache_pairs=2)
    seen = []

    def read(i: int) -> np.ndarray:
        frame = threaded.linear(i)
        seen.append(_warpers_alive(collect=False) - baseline)
        return frame

    frames = parallel_map(read, range(threaded.n), 3)
    # bounded whatever the length (19 pairs here): the cache, plus a pair a reading thread still holds after
    # another thread evicted it
    assert max(seen) <= 2 + 3
    sequential = open_streamed(src, 4)
    for i in (1, 2, 3, 37, 38, 75):
        assert np.array_equal(frames[i], sequential.linear(i))


def test_threads_reading_one_pair_wait_for_a_single_build():
    building: set[int] = set()
    overlaps: list[int] = []
    built: list[int] = []
    guard = threading.Lock()

    def build(i: int) -> int:
        with guard:
            if i in building:
                overlaps.append(i)
            building.add(i)
            built.append(i)
        time.sleep(0.01)
        with guard:
            building.discard(i)
        return i

    cache = PairCache(build, capacity=2)

    def read(j: int) -> int:  # four readers per pair, in increasing order: the frames of a pair
        with cache.use(j // 4) as value:
            return value

    assert parallel_map(read, range(40), 4) == [j // 4 for j in range(40)]
    assert overlaps == []
    assert sorted(set(built)) == list(range(10))
    assert len(cache) <= 2


def test_a_pair_cache_of_zero_keeps_nothing_idle(tmp_path):
    src = _render(tmp_path / "render", n=3)
    seq = open_streamed(src, 3, cache_pairs=0)
    seq.linear(1)
    assert seq.cached_pairs == 0
    assert np.array_equal(seq.linear(4), open_streamed(src, 3).linear(4))
    assert seq.cached_pairs == 0
