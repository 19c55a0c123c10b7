"""Previews for people: colorized ground truth, hole masks, event frames, an MP4 per kind and a grid video.

Colour limits are robust percentiles over the whole sequence (not per frame) so brightness does not
flicker. Videos are encoded with PyAV (its own FFmpeg libraries; no system ffmpeg needed).

Frame rate: every frame of a sequence becomes one video frame, none is dropped or repeated. The video
runs at `fps` when given, else at the sequence's own fps capped at 60 (MAX_DEFAULT_FPS): a sequence
faster than that (a x16 interpolation of a 50 fps render is 800 fps) plays slowed down, and every video
lasts frames / rate seconds. Grid cells are labelled with scene, sequence and kind (camsim.labels).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from camsim import colorize, labels, passes, transforms
from camsim.errors import DatasetError, UserInputError
from camsim.fileio import atomic_path, make_output_dir
from camsim.loader import SequenceDataset, find_sequences, sequence_name
from camsim.passes import HOLE_MASK

log = logging.getLogger(__name__)

PREVIEW_KINDS = (*(str(p.preview) for p in passes.PREVIEWS), "events")
"""Videos written per sequence (when the sequence has the data), in grid column order (passes.PREVIEWS, then
events). `masks`: the hole masks of an interpolated sequence (colorize.holes); `events`: an events.h5 binned
by frame time."""
MAX_DEFAULT_FPS = 60.0
"""Default video rate is the sequence's fps, but never more than this."""


def video_fps(source_fps: float | None, fps: float | None = None) -> float:
    """Rate of a preview video: `fps` when given, else the source's (24 when unknown) capped at 60."""
    if fps is not None:
        return float(fps)
    return min(float(source_fps or 24.0), MAX_DEFAULT_FPS)


def check_options(fps: float | None, cell: tuple[int, int]) -> None:
    """Refuse bad option values before anything is read or written."""
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UserInputError(f"--fps must be a positive number, got {fps}")
    if cell[0] < 2 or cell[1] < 2:
        raise UserInputError(f"--cell must be at least 2x2 pixels, got {cell[0]}x{cell[1]}")


# --------------------------------------------------------------------------------------- colouring


def sequence_limits(seq: SequenceDataset, max_samples: int = 200_000) -> dict[str, Any]:
    """Robust colour limits over the whole sequence: depth (near, far) and flow magnitude scale.

    Subsamples pixels of every frame so the cost stays bounded on long sequences.
    """
    names = seq.ground_truth()
    out: dict[str, Any] = {}
    n = len(seq)
    if n == 0:
        return out
    depth_vals, flow_vals = [], []
    per_frame = max(1, max_samples // n)
    rng = np.random.default_rng(0)
    for i in range(n):
        if "depth" in names:
            d = seq.read("depth", i).ravel()
            depth_vals.append(d[rng.integers(0, d.size, min(per_frame, d.size))])
        if "flow" in names:
            f = seq.read("flow", i)[..., :2].reshape(-1, 2)
            mag = np.hypot(f[:, 0], f[:, 1])
            flow_vals.append(mag[rng.integers(0, mag.size, min(per_frame, mag.size))])
    if depth_vals:
        d = np.concatenate(depth_vals)
        d = d[np.isfinite(d) & (d > 0)]
        out["depth"] = colorize.robust_limits(d, 1.0, 99.0) if d.size else None
    if flow_vals:
        out["flow"] = max(float(np.percentile(np.concatenate(flow_vals), 99.0)), 1e-3)
    return out


def colorize_item(kind: str, arr: np.ndarray, limits: dict[str, Any]) -> np.ndarray:
    """HxWx3 uint8 picture of one frame of `kind` (a camsim.passes name) with the sequence's limits."""
    try:
        p = passes.by_name(kind)
    except DatasetError:
        raise ValueError(f"no colouring for {kind}") from None
    if p.colorize is None:
        raise ValueError(f"no colouring for {kind}")
    return p.colorize(arr, limits.get(p.name))


def event_frames(
    h5_path: str | os.PathLike[str],
    edges_us: np.ndarray,
    h: int | None = None,
    w: int | None = None,
    chunk: int = 1 << 20,
) -> Iterator[np.ndarray]:
    """One picture per time window [edges[k], edges[k+1]) of a time-sorted events.h5 (rows t_us, x, y, p).

    Streams the file in chunks, so memory does not grow with the number of events.
    """
    import h5py

    from camsim.emulate.events import event_frame

    try:
        f = h5py.File(h5_path, "r")
    except OSError as exc:
        raise DatasetError(f"cannot read events {h5_path}: {exc}") from exc
    with f:
        if "events" not in f:
            raise DatasetError(f"{h5_path} has no 'events' dataset")
        ds = f["events"]
        h = int(h or ds.attrs.get("height", 0))
        w = int(w or ds.attrs.get("width", 0))
        if not (h and w):
            raise DatasetError(f"{h5_path}: unknown sensor size (no width/height)")
        nwin = len(edges_us) - 1
        current, buf = 0, []
        for start in range(0, ds.shape[0], chunk):
            ev = np.asarray(ds[start : start + chunk])
            win = np.searchsorted(edges_us, ev[:, 0], side="right") - 1
            for k in np.unique(win):
                if k < 0 or k >= nwin:
                    continue
                while k > current:
                    yield event_frame(np.concatenate(buf) if buf else np.zeros((0, 4), np.int64), h, w)
                    buf, current = [], current + 1
                buf.append(ev[win == k])
        while current < nwin:
            yield event_frame(np.concatenate(buf) if buf else np.zeros((0, 4), np.int64), h, w)
            buf, current = [], current + 1


# ------------------------------------------------------------------------------------------ videos


def _even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if h % 2 or w % 2:
        img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)))
    return img


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = 24.0) -> int:
    """Encode HxWx3 uint8 RGB frames to an H.264 MP4 (odd sizes padded to even), atomically.

    Returns the number of frames written.
    """
    import av

    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(24)
    count = 0
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        for img in frames:
            img = _even(np.ascontiguousarray(img, dtype=np.uint8))
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = img.shape[1], img.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "18", "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is None:
            raise DatasetError(f"no frames to encode into {path}")
        for packet in stream.encode():
            container.mux(packet)
    return count


def _source_fps(seq: SequenceDataset) -> float:
    return transforms.fps(seq.meta) or 24.0


def _event_edges(seq: SequenceDataset) -> np.ndarray:
    """Microsecond bounds of the event frames: the frames' times (`transforms.frame_times`)."""
    return np.round(transforms.frame_times(seq.meta) * 1e6).astype(np.int64)


def has_hole_masks(seq: SequenceDataset) -> bool:
    """Whether an interpolated sequence lists hole masks (source frames have none: nothing is missing)."""
    return HOLE_MASK.name in seq.available_modalities()


def hole_pictures(seq: SequenceDataset) -> Iterator[np.ndarray]:
    """colorize.holes of every frame: the frame dimmed, holes in magenta; frames without a mask have none."""
    has_frame = "frame" in seq.modalities()
    for i, fr in enumerate(seq.meta["frames"]):
        frame = colorize_item("frame", seq.read("frame", i), {}) if has_frame else None
        if HOLE_MASK.key in fr or HOLE_MASK.key in seq.meta:
            mask = seq.read(HOLE_MASK.name, i)
            if frame is not None and mask.shape != frame.shape[:2]:
                where = fr.get(HOLE_MASK.key) or f"{seq.meta[HOLE_MASK.key]}[{i}]"
                raise DatasetError(
                    f"{seq.root}: hole mask {where} is {mask.shape[1]}x{mask.shape[0]}, "
                    f"the frame {frame.shape[1]}x{frame.shape[0]}"
                )
        elif frame is not None:
            mask = np.zeros(frame.shape[:2], bool)
        else:
            mask = np.zeros((seq.height or 1, seq.width or 1), bool)
        yield colorize.holes(frame, mask)


def sequence_streams(seq: SequenceDataset) -> dict[str, Callable[[], Iterator[np.ndarray]]]:
    """Per preview kind, a function returning a fresh iterator of HxWx3 uint8 pictures."""
    limits: dict[str, Any] | None = None
    present = seq.modalities()

    def stream(kind: str) -> Iterator[np.ndarray]:
        nonlocal limits
        if limits is None:
            limits = sequence_limits(seq)
        for i in range(len(seq)):
            yield colorize_item(kind, seq.read(kind, i), limits)

    out: dict[str, Callable[[], Iterator[np.ndarray]]] = {
        str(p.preview): (lambda p=p: hole_pictures(seq) if p is HOLE_MASK else stream(p.name))
        for p in passes.PREVIEWS
        if p.name in present
    }
    if "events_file_path" in seq.meta and len(seq) > 1:
        path = transforms.resolve_path(seq.root, seq.meta["events_file_path"])
        out["events"] = lambda: event_frames(path, _event_edges(seq), seq.meta.get("h"), seq.meta.get("w"))
    return out


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Scale to fit in h x w (nearest neighbour: keeps ids and binary frames crisp), centred on black."""
    import cv2

    ih, iw = img.shape[:2]
    s = min(h / ih, w / iw)
    nh, nw = max(1, round(ih * s)), max(1, round(iw * s))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_NEAREST if s >= 1 else cv2.INTER_AREA)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out


def scene_label(seq: SequenceDataset) -> str:
    """The scene a sequence was rendered from: its .blend file's stem, else transforms.json's `scene`."""
    f, scene = seq.meta.get("scene_file"), seq.meta.get("scene")
    if isinstance(f, str) and f:
        return Path(f).stem
    return scene if isinstance(scene, str) else ""


def sequence_label(seq: SequenceDataset, scene: str = "") -> str:
    """The sequence's path below the dataset root, without the folders up to its scene's."""
    parts = seq.name.split("/")
    if scene in parts[:-1]:
        parts = parts[len(parts) - parts[::-1].index(scene) :]
    return "/".join(parts)


def cell_labels(seq: SequenceDataset, kinds: list[str], width: int, scale: float) -> list[list[str]]:
    """Label lines of each tile of a sequence's row: the first names scene, sequence and kind, the
    others their kind only."""
    scene = scene_label(seq)
    sequence = labels.fit_text(sequence_label(seq, scene), width - 2 * labels.PAD, scale, keep_end=True)
    return [[scene, sequence, k] if i == 0 else [k] for i, k in enumerate(kinds)]


def grid_frames(
    seqs: list[SequenceDataset],
    cell: tuple[int, int] = (128, 128),
    max_cols: int | None = None,
    label: bool = True,
) -> Iterator[np.ndarray]:
    """All sequences side by side: one block per sequence (its frame, hole masks and ground truth in a
    row); shorter sequences hold their last picture. `label`: write scene, sequence and kind into the
    tiles (camsim.labels)."""
    streams, names = [], []
    scale = labels.scale_for(cell[0])
    for s in seqs:
        kinds = sequence_streams(s)
        row = [k for k in PREVIEW_KINDS if k in kinds and k != "events"]
        if row:
            streams.append([kinds[k]() for k in row])
            names.append(cell_labels(s, row, cell[1], scale) if label else [[] for _ in row])
    if not streams:
        return
    ch, cw = cell
    width = max(len(r) for r in streams)
    cols = max_cols or max(1, math.ceil(math.sqrt(len(streams) / width * 2)))
    rows = math.ceil(len(streams) / cols)
    last: list[list[np.ndarray | None]] = [[None] * len(r) for r in streams]
    while True:
        advanced = False
        for si, row in enumerate(streams):
            for ki, it in enumerate(row):
                img = next(it, None)
                if img is not None:
                    tile = _fit(img, ch, cw)
                    last[si][ki] = labels.draw_label(tile, names[si][ki], scale) if names[si][ki] else tile
                    advanced = True
        if not advanced:
            return
        canvas = np.zeros((rows * ch, cols * width * cw, 3), np.uint8)
        for si, tiles in enumerate(last):
            r, c = divmod(si, cols)
            for ki, tile in enumerate(tiles):
                if tile is not None:
                    x = (c * width + ki) * cw
                    canvas[r * ch : (r + 1) * ch, x : x + cw] = tile
        yield canvas


def open_sequences(dataset_dir: str | os.PathLike[str]) -> list[SequenceDataset]:
    """Every sequence under `dataset_dir` (or the sequence it is), each named by its path below it."""
    root = Path(dataset_dir)
    seq_dirs = find_sequences(root)
    if not seq_dirs:
        raise DatasetError(f"no transforms.json under {root}")
    return [SequenceDataset(d, name=sequence_name(root, d)) for d in seq_dirs]


def make_previews(
    dataset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fps: float | None = None,
    grid: bool = True,
    cell: tuple[int, int] = (128, 128),
    progress: Callable[[int], None] | None = None,
    label: bool = True,
) -> list[Path]:
    """Write OUT/<sequence>/<kind>.mp4 for every sequence and kind present, and OUT/grid.mp4.

    Every frame is one video frame, at `fps` or the sequence's fps capped at 60 (video_fps); the grid
    runs at `fps` or the fastest sequence's fps capped at 60. `label`: scene, sequence and kind on the
    grid's tiles. Returns the written video paths. `progress` is called with 1 per video written.
    Options and datasets are checked before the output folder is created.
    """
    check_options(fps, cell)
    seqs = open_sequences(dataset_dir)
    out = make_output_dir(out_dir)
    written: list[Path] = []
    for seq in seqs:
        folder = make_output_dir(out / seq.name)
        for kind, make in sequence_streams(seq).items():
            path = folder / f"{kind}.mp4"
            n = write_video(path, make(), video_fps(_source_fps(seq), fps))
            log.debug("wrote %s (%d frames)", path, n)
            written.append(path)
            if progress:
                progress(1)
    if grid:
        path = out / "grid.mp4"
        rate = video_fps(max(_source_fps(s) for s in seqs), fps)
        try:
            write_video(path, grid_frames(seqs, cell, label=label), rate)
            written.append(path)
        except DatasetError:
            log.warning("no sequence has pictures for a grid video")
        if progress:
            progress(1)
    return written


def count_videos(dataset_dir: str | os.PathLike[str], grid: bool = True) -> int:
    """How many videos make_previews will write (for a progress bar); checks every transforms.json."""
    return sum(len(sequence_streams(s)) for s in open_sequences(dataset_dir)) + int(grid)
