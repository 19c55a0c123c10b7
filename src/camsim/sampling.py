"""Find scenes and place sequences in them. Pure functions: no Blender, no I/O beyond listing files."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from camsim.errors import UserInputError

Sampling = Literal["even", "random"]


@dataclass(frozen=True)
class SceneEntry:
    name: str
    path: Path


@dataclass(frozen=True)
class SequenceSpec:
    """A planned sequence: frames first..last inclusive (keyframe-multiplied frame numbers)."""

    scene: SceneEntry
    first: int
    last: int
    multiplier: float

    @property
    def num_frames(self) -> int:
        return self.last - self.first + 1

    @property
    def sequence_id(self) -> str:
        return sequence_id(self.first, self.last, self.multiplier)


def natural_key(text: str) -> list[object]:
    """Sort 'scene2' before 'scene10'."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", text)]


def find_scenes(scenes_dir: Path) -> list[SceneEntry]:
    """Every *.blend in `scenes_dir` and one level of sub-folders, naturally sorted.

    Backups (.blend1, .blend2, ...) never match. A scene is named by its file stem; stems that
    occur more than once get their sub-folder as a prefix (`sub__stem`), so names stay distinct
    and do not depend on listing order.
    """
    if not scenes_dir.exists():
        raise UserInputError(f"scenes folder not found: {scenes_dir}")
    if not scenes_dir.is_dir():
        raise UserInputError(f"scenes path is not a folder: {scenes_dir}")
    files = [p for p in scenes_dir.glob("*.blend") if p.is_file()]
    files += [p for p in scenes_dir.glob("*/*.blend") if p.is_file()]
    if not files:
        raise UserInputError(f"no .blend scenes in {scenes_dir} (or its sub-folders)")
    rel = {p: p.relative_to(scenes_dir) for p in files}
    stems: dict[str, int] = {}
    for p in files:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    entries = []
    for p in files:
        r = rel[p]
        name = p.stem if stems[p.stem] == 1 or len(r.parts) == 1 else "__".join((*r.parts[:-1], p.stem))
        entries.append(SceneEntry(name, p))
    entries.sort(key=lambda e: natural_key(str(rel[e.path])))
    names = [e.name for e in entries]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise UserInputError(f"scene names collide: {sorted(dupes)}; rename the files")
    return entries


def scaled_range(start: int, end: int, multiplier: float) -> tuple[int, int]:
    """The scene's frame range after keyframe scaling (the same rule the Blender side applies)."""
    return math.ceil(start * multiplier - 1e-9), math.floor(end * multiplier + 1e-9)


def sequence_id(first: int, last: int, multiplier: float) -> str:
    """Unique, sorts in time order, and encodes multiplier, first and last frame (1.5 != 1)."""
    return f"{first:06d}-{last:06d}-x{multiplier:g}"


def place_sequences(
    start: int,
    end: int,
    count: int,
    num_frames: int | None,
    sampling: Sampling = "even",
    seed: int = 0,
    key: str = "",
) -> list[tuple[int, int]]:
    """`count` non-overlapping runs of `num_frames` frames inside start..end (inclusive).

    even: spread evenly, first at the start and last at the end. random: uniform over all
    non-overlapping placements (sorted gaps, 'stars and bars'), reproducible from (seed, key).
    """
    if count < 1:
        raise UserInputError(f"--sequences-per-scene must be at least 1, got {count}")
    length = end - start + 1
    if length < 1:
        raise UserInputError(f"empty frame range {start}..{end}")
    if num_frames is None:
        num_frames = length if count == 1 else length // count
        if num_frames < 1:
            raise UserInputError(
                f"{count} sequences do not fit in frames {start}..{end} ({length} frames); "
                "lower --sequences-per-scene or raise --render-config.keyframe-multiplier"
            )
    if num_frames < 1:
        raise UserInputError(f"--num-frames must be at least 1, got {num_frames}")
    if count * num_frames > length:
        fit = length // count
        raise UserInputError(
            f"{count} sequences of {num_frames} frames do not fit in frames {start}..{end} ({length} frames): "
            f"at most {fit} frames per sequence fit; raise --render-config.keyframe-multiplier or lower "
            "--sequences-per-scene"
        )
    slack = length - count * num_frames
    if sampling == "even":
        gaps = [slack // 2] if count == 1 else [i * slack // (count - 1) for i in range(count)]
    else:
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        gaps = sorted(int(g) for g in rng.integers(0, slack + 1, size=count))
    return [
        (start + g + i * num_frames, start + g + i * num_frames + num_frames - 1) for i, g in enumerate(gaps)
    ]
