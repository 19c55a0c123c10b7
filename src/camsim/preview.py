"""Previews for people: colorized ground truth, event frames, an MP4 per ground truth and a grid video.

Colour limits are robust percentiles over the whole sequence (not per frame) so brightness does not
flicker. Videos are encoded with PyAV (its own FFmpeg libraries; no system ffmpeg needed).
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

from camsim import colorize, transforms
from camsim.dataset import SequenceDataset, find_sequences, sequence_name
from camsim.errors import DatasetError, UserInputError
from camsim.fileio import atomic_path, make_output_dir

log = logging.getLogger(__name__)

PREVIEW_KINDS = ("frame", "depth", "flow", "normal", "segmentation", "events")
"""Videos written per sequence (when the sequence has the data), in grid column order."""


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
    """HxWx3 uint8 picture of one frame of `kind` with the sequence's limits."""
    if kind == "frame":
        a = np.asarray(arr)
        if a.dtype == np.uint16:
            a = (a >> 8).astype(np.uint8)
        elif a.dtype.kind == "f":
            a = (np.clip(a, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
        elif a.dtype == np.bool_ or (a.dtype == np.uint8 and a.size and a.max() <= 1):
            a = a.astype(np.uint8) * 255  # binary (SPAD) frames
        if a.ndim == 2:
            a = a[..., None]
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        return np.ascontiguousarray(a[..., :3])
    if kind == "depth":
        return colorize.depth(arr, limits.get("depth"))
    if kind == "flow":
        return colorize.flow(arr[..., :2], limits.get("flow"))
    if kind == "normal":
        return colorize.normals(arr)
    if kind == "segmentation":
        return colorize.segmentation(arr)
    raise ValueError(f"no colouring for {kind}")


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


def _seq_fps(seq: SequenceDataset, fps: float | None) -> float:
    return float(fps or seq.meta.get("fps") or 24.0)


def _event_edges(seq: SequenceDataset) -> np.ndarray:
    frames = seq.meta["frames"]
    fps = _seq_fps(seq, None)
    times = [float(fr.get("time", i / fps)) for i, fr in enumerate(frames)]
    return np.round(np.asarray(times) * 1e6).astype(np.int64)


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
        k: (lambda k=k: stream(k)) for k in PREVIEW_KINDS if k in present
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


def grid_frames(
    seqs: list[SequenceDataset], cell: tuple[int, int] = (128, 128), max_cols: int | None = None
) -> Iterator[np.ndarray]:
    """All sequences side by side: one tile per sequence (its frame and ground truth in a row);
    shorter sequences hold their last picture."""
    streams = []
    for s in seqs:
        kinds = sequence_streams(s)
        streams.append([kinds[k]() for k in PREVIEW_KINDS if k in kinds and k != "events"])
    streams = [row for row in streams if row]
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
                    last[si][ki] = _fit(img, ch, cw)
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


def make_previews(
    dataset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fps: float | None = None,
    grid: bool = True,
    cell: tuple[int, int] = (128, 128),
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write OUT/<sequence>/<kind>.mp4 for every sequence and kind present, and OUT/grid.mp4.

    Returns the written video paths. `progress` is called with 1 per video written.
    """
    root, out = Path(dataset_dir), Path(out_dir)
    if cell[0] < 2 or cell[1] < 2:
        raise UserInputError(f"--cell must be at least 2x2 pixels, got {cell[0]}x{cell[1]}")
    make_output_dir(out)
    seq_dirs = find_sequences(root)
    if not seq_dirs:
        raise DatasetError(f"no transforms.json under {root}")
    seqs = [SequenceDataset(d, name=sequence_name(root, d)) for d in seq_dirs]
    written: list[Path] = []
    for seq in seqs:
        folder = make_output_dir(out / seq.name)
        for kind, make in sequence_streams(seq).items():
            path = folder / f"{kind}.mp4"
            n = write_video(path, make(), _seq_fps(seq, fps))
            log.debug("wrote %s (%d frames)", path, n)
            written.append(path)
            if progress:
                progress(1)
    if grid:
        path = out / "grid.mp4"
        try:
            write_video(path, grid_frames(seqs, cell), _seq_fps(seqs[0], fps))
            written.append(path)
        except DatasetError:
            log.warning("no sequence has pictures for a grid video")
        if progress:
            progress(1)
    return written


def count_videos(dataset_dir: str | os.PathLike[str]) -> int:
    """How many videos make_previews will write (for a progress bar)."""
    seq_dirs = find_sequences(Path(dataset_dir))
    return sum(len(sequence_streams(SequenceDataset(d))) for d in seq_dirs) + 1
