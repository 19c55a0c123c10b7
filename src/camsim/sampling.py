"""Find scenes, stretch their time (keyframe multiplier) and place sequences in them. Pure functions: no Blender,
no I/O beyond listing files."""

from __future__ import annotations

import itertools
import math
import re
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from camsim.errors import UserInputError

Sampling = Literal["even", "random"]


@dataclass(frozen=True)
class SceneEntry:
    name: str
    path: Path


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


def _scaled_first(frame: int, multiplier: float) -> int:
    """The first frame at or after scene frame `frame` once time is stretched by `multiplier`."""
    return math.ceil(frame * multiplier - 1e-9)


def scaled_range(start: int, end: int, multiplier: float) -> tuple[int, int]:
    """The scene's frame range after keyframe scaling: ceil(start*m)..floor(end*m). The one implementation:
    the host sends its result to Blender (blender.protocol.SetTiming)."""
    return _scaled_first(start, multiplier), math.floor(end * multiplier + 1e-9)


FRAME_MAP_LIMIT = 900
"""Blender's time remapping terms (frame_map_old, frame_map_new) each lie in 1..900."""


def frame_map(old: int, new: int, multiplier: float) -> tuple[int, int]:
    """Blender's time remapping (ctime = frame * old / new) that stretches a scene whose own remapping is
    old/new by `multiplier`: old/new divided by the multiplier, as the nearest fraction with a denominator up
    to 900, both terms then halved while the numerator passes 900 (coarse only for remappings far from 1). A
    multiplier of 1 leaves the scene's own terms as they are. Every time-driven thing honours it
    (actions, NLA, shape keys, drivers, constraints). The host sends the result (blender.protocol.SetTiming)."""
    if multiplier == 1.0:
        return old, new
    limit = FRAME_MAP_LIMIT
    ratio = (Fraction(old, new) / Fraction(multiplier).limit_denominator(limit)).limit_denominator(limit)
    while ratio.numerator > limit:  # both terms must lie in 1..900
        ratio = Fraction(round(ratio.numerator / 2), max(1, round(ratio.denominator / 2)))
    return max(1, ratio.numerator), max(1, ratio.denominator)


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


def scaled_cuts(cuts: list[int] | tuple[int, ...], multiplier: float) -> list[int]:
    """Camera-cut frames after keyframe scaling: a cut at scene frame c becomes ceil(c*m) (as scaled_range)."""
    return sorted({_scaled_first(c, multiplier) for c in cuts})


def split_shots(start: int, end: int, cuts: list[int] | tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """start..end (inclusive) cut into shots: a cut at frame c makes c the first frame of a new shot.

    Cuts outside (start, end] change nothing (a cut at `start` is where the range starts anyway).
    """
    if end < start:
        raise UserInputError(f"empty frame range {start}..{end}")
    firsts = [start, *sorted({c for c in cuts if start < c <= end})]
    return [(a, b - 1) for a, b in itertools.pairwise([*firsts, end + 1])]


def _fits(lengths: list[int], num_frames: int) -> int:
    """How many sequences of `num_frames` frames the shots hold, none crossing a cut."""
    return sum(n // num_frames for n in lengths)


def _longest_fitting(lengths: list[int], count: int) -> int:
    """The largest length such that `count` sequences fit in the shots; 0 if not even 1 frame each fits."""
    lo, hi = 0, max(lengths)  # _fits(lengths, L) only shrinks as L grows: bisect for the last L that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(lengths, mid) >= count:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _allot(lengths: list[int], caps: list[int], count: int) -> list[int]:
    """Sequences per shot: proportional to shot length (largest remainder), never more than a shot holds.

    Each sequence in turn goes to the shot furthest below its proportional share count*len/total (exact
    integer arithmetic, ties to the earlier shot) among the shots that still have room.
    """
    total = sum(lengths)
    alloc = [min(count * n // total, cap) for n, cap in zip(lengths, caps, strict=True)]
    for _ in range(count - sum(alloc)):
        open_shots = [i for i in range(len(lengths)) if alloc[i] < caps[i]]
        best = max(open_shots, key=lambda i: (count * lengths[i] - alloc[i] * total, -i))
        alloc[best] += 1
    return alloc


def place_in_shots(
    shots: list[tuple[int, int]],
    count: int,
    num_frames: int | None,
    sampling: Sampling = "even",
    seed: int = 0,
    key: str = "",
) -> list[tuple[int, int]]:
    """`count` non-overlapping runs of `num_frames` frames, none crossing from one shot into the next.

    `shots` are consecutive inclusive frame ranges (split_shots). One shot: exactly place_sequences, so
    scenes without camera cuts keep their sequence ids. Several: num_frames None is the largest length
    such that `count` sequences fit (one sequence: the longest shot); sequences are shared out over the
    shots in proportion to their lengths (largest remainder, never more than a shot holds) and placed in
    each shot by place_sequences' rule, random ones reproducibly from (seed, key, the shot's first frame).
    Returned in time order.
    """
    if not shots:
        raise UserInputError("no frames to place sequences in")
    if any(b < a for a, b in shots) or any(b1 >= a2 for (_, b1), (a2, _) in itertools.pairwise(shots)):
        raise ValueError(f"shots must be non-empty, sorted and disjoint: {shots}")
    if len(shots) == 1:
        return place_sequences(shots[0][0], shots[0][1], count, num_frames, sampling, seed, key)
    if count < 1:
        raise UserInputError(f"--sequences-per-scene must be at least 1, got {count}")
    if num_frames is not None and num_frames < 1:
        raise UserInputError(f"--num-frames must be at least 1, got {num_frames}")
    lengths = [b - a + 1 for a, b in shots]
    longest = max(lengths)
    where = (
        f"frames {shots[0][0]}..{shots[-1][1]} are {len(shots)} shots (camera cuts at "
        f"{', '.join(str(a) for a, _ in shots[1:])}; the longest shot has {longest} frames)"
    )
    fit = _longest_fitting(lengths, count)
    if num_frames is None:
        if fit < 1:
            raise UserInputError(
                f"{count} sequences do not fit: {where}; lower --sequences-per-scene or raise "
                "--render-config.keyframe-multiplier"
            )
        num_frames = fit
    if _fits(lengths, num_frames) < count:
        most = f"at most {fit} frames per sequence fit" if fit else "not even 1 frame per sequence fits"
        raise UserInputError(
            f"{count} sequences of {num_frames} frames do not fit without crossing a camera cut: {where}: "
            f"{most}; lower --num-frames or --sequences-per-scene, or raise --render-config.keyframe-multiplier"
        )
    alloc = _allot(lengths, [n // num_frames for n in lengths], count)
    spans: list[tuple[int, int]] = []
    for (a, b), k in zip(shots, alloc, strict=True):
        if k:
            spans += place_sequences(a, b, k, num_frames, sampling, seed, f"{key}@{a}")
    return spans
