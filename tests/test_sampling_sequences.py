"""Sequence placement and scene discovery: pure functions, checked exhaustively and by property."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camsim.errors import UserInputError
from camsim.sampling import find_scenes, place_sequences, scaled_range, sequence_id


@given(
    start=st.integers(-50, 50),
    length=st.integers(1, 400),
    count=st.integers(1, 8),
    frames=st.integers(1, 60),
    sampling=st.sampled_from(["even", "random"]),
    seed=st.integers(0, 5),
)
def test_sequences_never_overlap_and_stay_in_range(start, length, count, frames, sampling, seed):
    end = start + length - 1
    if count * frames > length:
        with pytest.raises(UserInputError, match=f"at most {length // count} frames"):
            place_sequences(start, end, count, frames, sampling, seed)
        return
    spans = place_sequences(start, end, count, frames, sampling, seed, key="scene")
    assert len(spans) == count
    assert all(b - a + 1 == frames for a, b in spans)
    assert all(start <= a and b <= end for a, b in spans)
    assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(spans))


def test_one_sequence_without_num_frames_is_the_whole_range():
    assert place_sequences(2, 1200, 1, None) == [(2, 1200)]


def test_even_sampling_spreads_from_start_to_end():
    assert place_sequences(1, 100, 3, 10) == [(1, 10), (46, 55), (91, 100)]


def test_random_sampling_is_reproducible_and_depends_on_seed():
    a = place_sequences(1, 600, 4, 20, "random", seed=7, key="s")
    assert a == place_sequences(1, 600, 4, 20, "random", seed=7, key="s")
    assert a != place_sequences(1, 600, 4, 20, "random", seed=8, key="s")


def test_too_many_frames_names_the_largest_that_fits_and_the_fix():
    with pytest.raises(UserInputError) as err:
        place_sequences(1, 100, 3, 40)
    assert "at most 33 frames" in str(err.value)
    assert "keyframe-multiplier" in str(err.value) and "sequences-per-scene" in str(err.value)


def test_sequence_ids_distinguish_multipliers_and_sort_in_time():
    assert sequence_id(3, 10, 1.5) != sequence_id(3, 10, 1.0)
    ids = [sequence_id(a, a + 9, 2.0) for a in (5, 50, 500, 5000)]
    assert ids == sorted(ids)


def test_scaled_range_matches_blender_side_rounding():
    assert scaled_range(1, 600, 2.0) == (2, 1200)
    assert scaled_range(1, 11, 2.5) == (3, 27)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"BLENDER-v300")
    return path


def test_find_scenes_natural_order_backups_ignored_one_level_deep(tmp_path):
    for rel in (
        "s10.blend",
        "s2.blend",
        "s1.blend",
        "s1.blend1",
        "s2.blend2",
        "sub/a.blend",
        "sub/deep/x.blend",
    ):
        _touch(tmp_path / rel)
    names = [s.name for s in find_scenes(tmp_path)]
    assert names == ["s1", "s2", "s10", "a"]


def test_same_stem_in_two_folders_gets_distinct_stable_names(tmp_path):
    _touch(tmp_path / "city" / "street.blend")
    _touch(tmp_path / "forest" / "street.blend")
    _touch(tmp_path / "street.blend")
    first = [(s.name, s.path) for s in find_scenes(tmp_path)]
    assert {n for n, _ in first} == {"street", "city__street", "forest__street"}
    assert first == [(s.name, s.path) for s in find_scenes(tmp_path)]


def test_empty_or_missing_scene_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match=r"no \.blend"):
        find_scenes(tmp_path)
    with pytest.raises(UserInputError, match="not found"):
        find_scenes(tmp_path / "nope")
