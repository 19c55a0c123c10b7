"""Sequence placement, camera cuts, planning and scene discovery: pure functions, checked exhaustively and
by property (planning with a fake scene reader, no Blender)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camsim.config import RenderConfig
from camsim.errors import UserInputError
from camsim.planning import PlanOptions, SceneRange, plan_datasets
from camsim.sampling import (
    SceneEntry,
    find_scenes,
    place_in_shots,
    place_sequences,
    scaled_cuts,
    scaled_range,
    sequence_id,
    split_shots,
)


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


# ------------------------------------------------------------------------------------------ camera cuts


@given(
    start=st.integers(-50, 50),
    length=st.integers(1, 400),
    count=st.integers(1, 8),
    frames=st.one_of(st.none(), st.integers(1, 60)),
    sampling=st.sampled_from(["even", "random"]),
    seed=st.integers(0, 5),
    cuts=st.lists(st.integers(-60, 460), max_size=3),
)
def test_cuts_outside_the_range_change_nothing(start, length, count, frames, sampling, seed, cuts):
    end = start + length - 1
    outside = [c for c in cuts if not start < c <= end]
    shots = split_shots(start, end, outside)
    assert shots == [(start, end)]
    try:
        expected = place_sequences(start, end, count, frames, sampling, seed, "scene")
    except UserInputError as exc:
        with pytest.raises(UserInputError) as err:
            place_in_shots(shots, count, frames, sampling, seed, "scene")
        assert str(err.value) == str(exc)
        return
    assert place_in_shots(shots, count, frames, sampling, seed, "scene") == expected


@given(
    start=st.integers(-50, 50),
    length=st.integers(1, 300),
    cuts=st.lists(st.integers(-60, 360), max_size=6),
    count=st.integers(1, 8),
    frames=st.one_of(st.none(), st.integers(1, 60)),
    sampling=st.sampled_from(["even", "random"]),
    seed=st.integers(0, 5),
)
def test_no_sequence_crosses_a_cut_or_overlaps_and_all_fit_when_possible(
    start, length, cuts, count, frames, sampling, seed
):
    end = start + length - 1
    shots = split_shots(start, end, cuts)
    assert shots[0][0] == start and shots[-1][1] == end
    assert all(b1 + 1 == a2 for (_, b1), (a2, _) in itertools.pairwise(shots))
    assert {a for a, _ in shots[1:]} == {c for c in cuts if start < c <= end}
    lengths = [b - a + 1 for a, b in shots]
    if frames is None:  # the largest length that fits, found by brute force
        fits = [n for n in range(1, max(lengths) + 1) if sum(x // n for x in lengths) >= count]
        want = max(fits) if fits else None
    else:
        want = frames if sum(x // frames for x in lengths) >= count else None
    if want is None:
        with pytest.raises(UserInputError, match=f"{max(lengths)} frames|at most"):
            place_in_shots(shots, count, frames, sampling, seed, "scene")
        return
    spans = place_in_shots(shots, count, frames, sampling, seed, "scene")
    assert spans == place_in_shots(shots, count, frames, sampling, seed, "scene")  # reproducible
    assert len(spans) == count
    assert all(b - a + 1 == want for a, b in spans)
    assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(spans))  # sorted, no overlap
    for a, b in spans:  # inside one shot, hence the range, and never across a cut
        assert any(s0 <= a and b <= s1 for s0, s1 in shots), (a, b, shots)


def test_one_sequence_without_num_frames_is_the_longest_shot():
    shots = split_shots(1, 600, [101, 401])
    assert shots == [(1, 100), (101, 400), (401, 600)]
    assert place_in_shots(shots, 1, None) == [(101, 400)]


def test_sequences_are_shared_out_in_proportion_to_shot_length():
    shots = split_shots(1, 400, [101])  # 100 and 300 frames
    assert place_in_shots(shots, 4, 10) == [(46, 55), (101, 110), (246, 255), (391, 400)]
    # Without num_frames: the largest length at which 4 fit (100 // 100 + 300 // 100; 101 gives 0 + 2).
    assert place_in_shots(shots, 4, None) == [(1, 100), (101, 200), (201, 300), (301, 400)]
    # 90 and 310 frames: 90 // 90 + 310 // 90 = 4; the long shot spreads its 3 evenly.
    assert place_in_shots(split_shots(1, 400, [91]), 4, None) == [(1, 90), (91, 180), (201, 290), (311, 400)]
    # A shot never gets more than it holds: 3 of 60 frames fit only as 1 + 2 (not the 0.75 + 2.25 share).
    assert place_in_shots(split_shots(1, 300, [121]), 3, 60) == [(31, 90), (121, 180), (241, 300)]


def test_random_sampling_with_cuts_is_reproducible_per_seed_and_scene():
    shots = split_shots(1, 600, [200, 450])
    a = place_in_shots(shots, 6, 20, "random", seed=7, key="s")
    assert a == place_in_shots(shots, 6, 20, "random", seed=7, key="s")
    assert a != place_in_shots(shots, 6, 20, "random", seed=8, key="s")
    assert a != place_in_shots(shots, 6, 20, "random", seed=7, key="t")


def test_too_long_for_the_shots_names_the_longest_shot_and_what_fits():
    shots = split_shots(1, 600, [201, 401])
    with pytest.raises(UserInputError) as err:
        place_in_shots(shots, 2, 250)
    text = str(err.value)
    assert "camera cut" in text and "longest shot has 200 frames" in text and "at most 200 frames" in text
    assert "201, 401" in text and "--num-frames" in text
    with pytest.raises(UserInputError, match="not even 1 frame"):
        place_in_shots(split_shots(1, 3, [2, 3]), 4, 1)


def test_cuts_scale_with_the_keyframe_multiplier_like_the_range():
    assert scaled_cuts([101, 11], 2.5) == [28, 253]  # ceil(27.5), ceil(252.5)
    assert scaled_cuts([3, 3], 2.0) == [6]
    assert scaled_range(1, 11, 2.5) == (3, 27)


# ------------------------------------------------------------------------------------------ planning

CONFIG = RenderConfig(width=16, height=12)


def _plan(tmp_path, ranges, **options):
    scenes = [SceneEntry(name, _touch(tmp_path / f"{name}.blend")) for name in ranges]
    return plan_datasets(scenes, tmp_path / "ds", CONFIG.validate(), PlanOptions(**options),
                         lambda scene: ranges[scene.name])  # fmt: skip


def test_a_too_short_or_refused_scene_fails_alone_and_the_others_are_planned(tmp_path):
    ortho = "camera 'Cam' is orthographic; camsim renders perspective cameras"
    plan = _plan(tmp_path, {
        "long": SceneRange(1, 600),
        "short": SceneRange(1, 20),
        "ortho": SceneRange(1, 600, camera_problem=ortho),
        "cut": SceneRange(1, 600, cuts=(40, 550)),
        "legacy": (1, 100),  # a plain (start, end) still works
    }, sequences_per_scene=2, num_frames=30)  # fmt: skip
    assert {f.scene.name: f.error for f in plan.failures}.keys() == {"short", "ortho"}
    errors = {f.scene.name: f.error for f in plan.failures}
    assert "at most 10 frames" in errors["short"] and errors["ortho"] == ortho
    spans = {}
    for job in plan.jobs:
        spans.setdefault(job.scene_name, []).append((job.frame_start, job.frame_end))
        assert job.sequence_id == sequence_id(job.frame_start, job.frame_end, 1.0)
    assert spans["long"] == [(1, 30), (571, 600)]  # as before cuts existed
    assert spans["legacy"] == [(1, 30), (71, 100)]
    assert plan.shots["cut"] == [(1, 39), (40, 549), (550, 600)]
    assert spans["cut"] == [(40, 69), (520, 549)]  # the 510-frame middle shot takes both
    assert plan.ranges == {"long": (1, 600), "cut": (1, 600), "legacy": (1, 100)}


def test_cuts_and_the_fixed_range_both_follow_the_keyframe_multiplier(tmp_path):
    scenes = [SceneEntry("a", _touch(tmp_path / "a.blend"))]
    config = CONFIG.replace(keyframe_multiplier=2.0).validate()
    plan = plan_datasets(scenes, tmp_path / "ds", config, PlanOptions(1, None),
                         lambda s: SceneRange(1, 100, cuts=(31,)))  # fmt: skip
    assert plan.shots["a"] == [(2, 61), (62, 200)]
    assert [(j.frame_start, j.frame_end, j.sequence_id) for j in plan.jobs] == [(62, 200, "000062-000200-x2")]
    plan = plan_datasets(scenes, tmp_path / "ds", config, PlanOptions(1, None, 10, 100),
                         lambda s: SceneRange(1, 100, cuts=(31,)))  # fmt: skip
    assert plan.shots["a"] == [(10, 61), (62, 100)]
    assert [(j.frame_start, j.frame_end) for j in plan.jobs] == [(10, 61)]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sequences_per_scene": 0}, "sequences-per-scene"),
        ({"num_frames": 0}, "num-frames"),
        ({"anim_start": 10, "anim_end": 5}, "anim-start"),
        ({"anim_start": 10}, "go together"),
        ({"num_frames": 20, "anim_start": 1, "anim_end": 10}, "at most 10 frames"),
    ],
)
def test_numbers_no_scene_could_satisfy_fail_the_whole_plan_before_reading_a_scene(tmp_path, options, match):
    def never(scene):
        raise AssertionError("no scene should be read")

    scenes = [SceneEntry("a", _touch(tmp_path / "a.blend"))]
    with pytest.raises(UserInputError, match=match):
        plan_datasets(scenes, tmp_path / "ds", CONFIG.validate(), PlanOptions(**options), never)
