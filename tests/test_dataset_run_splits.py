"""The splits of a create-datasets run against its dataset.json: scenes keep their split when scenes are added,
other fractions or another seed are refused (one line), no --splits keeps the recorded ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from camsim.dataset_run import run_splits
from camsim.errors import UserInputError
from camsim.manifest import Manifest
from camsim.sampling import SceneEntry


def scenes(*names: str) -> list[SceneEntry]:
    return [SceneEntry(n, Path(f"/scenes/{n}.blend")) for n in names]


def test_added_scenes_never_move_the_recorded_ones():
    first = run_splits(None, scenes("a", "b", "c", "d"), (0.5, 0.25, 0.25), seed=3)
    assert first is not None and sorted(first.scenes.values()) == ["test", "train", "train", "val"]
    grown = run_splits(Manifest(splits=first), scenes(*"abcdefgh"), (0.5, 0.25, 0.25), seed=3)
    assert grown is not None
    assert {k: grown.scenes[k] for k in first.scenes} == first.scenes
    assert sorted(grown.scenes.values()).count("train") == 4


def test_other_fractions_or_seed_are_refused_and_no_flag_keeps_the_recorded_splits():
    recorded = run_splits(None, scenes("a", "b", "c"), (0.5, 0.5), seed=0)
    manifest = Manifest(splits=recorded)
    with pytest.raises(UserInputError, match=r"holds splits made with --splits 0.5 0.5 --seed 0 \(this run"):
        run_splits(manifest, scenes("a", "b", "c"), (0.8, 0.2), seed=0)
    with pytest.raises(UserInputError, match="--seed 1"):
        run_splits(manifest, scenes("a", "b", "c"), (0.5, 0.5), seed=1)
    assert run_splits(manifest, scenes("a", "b", "c"), None, seed=5) is recorded
    assert run_splits(None, scenes("a"), None, seed=0) is None
