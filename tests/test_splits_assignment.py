"""`--splits`: whole scenes go to train / val / test, deterministic from the names and the seed, balanced to
within one scene of each fraction, and scenes already assigned never move when scenes are added."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camsim.errors import UserInputError
from camsim.splits import SPLIT_NAMES, assign_splits, check_fractions

names = st.lists(st.text(min_size=1, max_size=12), max_size=60, unique=True)


@st.composite
def fractions(draw) -> tuple[float, ...]:
    """1 to 3 fractions summing to 1, some of them zero."""
    k = draw(st.integers(1, 3))
    weights = [draw(st.sampled_from([0, 1, 2, 3, 5, 7])) for _ in range(k)]
    if not sum(weights):
        weights[-1] = 1
    return tuple(w / sum(weights) for w in weights)


def counts(assignment: dict[str, str], k: int) -> list[int]:
    return [sum(v == name for v in assignment.values()) for name in SPLIT_NAMES[:k]]


@given(scenes=names, fr=fractions(), seed=st.integers(0, 2**32))
def test_the_assignment_depends_only_on_the_names_the_fractions_and_the_seed(scenes, fr, seed):
    a = assign_splits(scenes, fr, seed)
    assert assign_splits(list(reversed(scenes)), fr, seed) == a  # not on the listing order
    assert set(a) == set(scenes)  # every scene in exactly one split (a dict has one value per key)
    assert set(a.values()) <= set(SPLIT_NAMES[: len(fr)])


@given(scenes=names, fr=fractions(), seed=st.integers(0, 1000))
def test_each_split_holds_its_fraction_of_the_scenes_within_one(scenes, fr, seed):
    got = counts(assign_splits(scenes, fr, seed), len(fr))
    for c, f in zip(got, fr, strict=True):
        assert abs(c - f * len(scenes)) <= 1
        if f == 0:
            assert c == 0  # a split of fraction 0 gets no scene


@given(old=names, new=names, fr=fractions(), seed=st.integers(0, 1000))
def test_adding_scenes_never_moves_an_assigned_one_and_stays_balanced(old, new, fr, seed):
    first = assign_splits(old, fr, seed)
    added = [n for n in new if n not in first]
    second = assign_splits([*old, *added], fr, seed, fixed=first)
    assert {n: second[n] for n in first} == first
    assert set(second) == set(old) | set(added)
    for c, f in zip(counts(second, len(fr)), fr, strict=True):
        assert abs(c - f * len(second)) <= 1


def test_four_scenes_at_half_quarter_quarter_give_two_one_one():
    a = assign_splits(["s1", "s2", "s3", "s4"], (0.5, 0.25, 0.25), seed=0)
    assert counts(a, 3) == [2, 1, 1]


def test_another_seed_gives_another_assignment():
    scenes = [f"scene{i}" for i in range(20)]
    assert assign_splits(scenes, (0.5, 0.5), 0) != assign_splits(scenes, (0.5, 0.5), 1)


def test_a_scene_no_longer_listed_keeps_its_split_for_when_it_comes_back():
    first = assign_splits(["a", "b", "c", "d"], (0.5, 0.5), 3)
    second = assign_splits(["a", "b", "e"], (0.5, 0.5), 3, fixed=first)
    assert {k: second[k] for k in first} == first and "e" in second


@pytest.mark.parametrize(
    "bad, says",
    [
        ((), "1 to 3 fractions"),
        ((0.5, 0.2, 0.2, 0.1), "1 to 3 fractions"),
        ((0.5, 0.4), "sum to 1"),
        ((1.5, -0.5), ">= 0"),
        ((float("nan"),), ">= 0"),
    ],
)
def test_bad_fractions_are_one_line_naming_the_flag(bad, says):
    with pytest.raises(UserInputError) as err:
        check_fractions(bad)
    assert "--splits" in str(err.value) and says in str(err.value) and "\n" not in str(err.value)


def test_fractions_summing_to_one_within_rounding_are_accepted():
    assert check_fractions((0.7, 0.2, 0.1)) == (0.7, 0.2, 0.1)
    assert check_fractions([1]) == (1.0,)


def test_a_fixed_split_the_fractions_do_not_have_is_refused():
    with pytest.raises(UserInputError, match="--splits: scene 'a' is in split 'test'"):
        assign_splits(["a", "b"], (0.5, 0.5), 0, fixed={"a": "test"})
