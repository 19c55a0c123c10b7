"""Train / val / test splits of whole scenes (`create-datasets --splits`), so no scene leaks between splits.

Pure functions. The assignment depends only on the scene names, the fractions and the seed; scenes already
assigned (an existing dataset.json's) keep their split, so adding scenes later never moves one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence

from camsim.errors import UserInputError

SPLIT_NAMES = ("train", "val", "test")
"""The splits, in the order of --splits' fractions."""

TOLERANCE = 1e-6


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """--splits as floats: 1 to 3 fractions, each >= 0, summing to 1; UserInputError (one line) otherwise."""
    values = tuple(fractions)
    if not 1 <= len(values) <= len(SPLIT_NAMES):
        raise UserInputError(
            f"--splits takes 1 to {len(SPLIT_NAMES)} fractions ({' '.join(SPLIT_NAMES).upper()}), "
            f"got {len(values)}"
        )
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise UserInputError(f"--splits fractions must be numbers >= 0, got {v!r}")
        out.append(float(v))
    if abs(sum(out) - 1.0) > TOLERANCE:
        raise UserInputError(
            f"--splits fractions must sum to 1, got {' + '.join(f'{v:g}' for v in out)} = {sum(out):g}"
        )
    return tuple(out)


def split_names(fractions: Sequence[float]) -> tuple[str, ...]:
    """The names of the splits `fractions` describe (train, then val, then test)."""
    return SPLIT_NAMES[: len(fractions)]


def _order(name: str, seed: int) -> tuple[str, str]:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest(), name


def assign_splits(
    scene_names: Iterable[str],
    fractions: Sequence[float],
    seed: int,
    fixed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Scene name -> split name.

    Scenes in `fixed` (an existing dataset.json's assignment) keep their split, including those no longer
    in `scene_names` (they stay in the result, so a scene that comes back keeps it too). Every other scene
    is taken in the order of sha256(f"{seed}:{name}") and goes to the split with the largest deficit
    fraction_k * (assigned + 1) - count_k (ties: the earlier split): 4 scenes at 0.5/0.25/0.25 give 2/1/1,
    each split's count stays within 1 of fraction_k * N, and a split of fraction 0 gets no scene.
    """
    fr = check_fractions(fractions)
    names = split_names(fr)
    out: dict[str, str] = {}
    counts = [0] * len(fr)
    for scene, split in (fixed or {}).items():
        if split not in names:
            raise UserInputError(
                f"--splits: scene {scene!r} is in split {split!r} of the existing dataset, "
                f"but {len(fr)} fraction(s) give only {', '.join(names)}"
            )
        out[scene] = split
        counts[names.index(split)] += 1
    new = sorted({n for n in scene_names if n not in out}, key=lambda n: _order(n, seed))
    for scene in new:
        total = sum(counts) + 1
        # Rounded, so that a tie in exact arithmetic (0.1 * 3 = 0.30000000000000004) stays a tie.
        k = max(range(len(fr)), key=lambda i: (round(fr[i] * total - counts[i], 9), -i))
        counts[k] += 1
        out[scene] = names[k]
    return out
