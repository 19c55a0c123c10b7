"""Per-frame amodal masks (`--render-config.amodal-masks`): each annotated object's silhouette with nothing in
front of it, as the annotations count it (`projected_pixels`, `bbox_amodal`), in one small file per frame.

`amodal/amodal_NNNNNN.npz` (NNNNNN: the frame number), a NumPy .npz (np.load reads it) of four arrays:
`ids` (K,) uint32 ascending, the objects with at least one amodal pixel; `boxes` (K, 4) int32 `[x0, y0, x1,
y1]` pixel edges (x1, y1 exclusive: the object's `bbox_amodal`); `offsets` (K + 1,) int64 into `bits`;
`bits` uint8: object k's mask inside its box, rows top to bottom, `np.packbits` (big bit order) of the
flattened (y1 - y0, x1 - x0) bool array, bytes `offsets[k]:offsets[k + 1]`. `read_masks` gives the full-frame
masks back. The zip entries carry a fixed date, so a frame's file has the same bytes whenever it is written.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from camsim.errors import DatasetError
from camsim.fileio import write_bytes_atomic

FOLDER = "amodal"


def relpath(frame: int) -> str:
    """Path of a frame's amodal masks relative to the sequence folder."""
    return f"{FOLDER}/amodal_{frame:06d}.npz"


def pack(masks: Mapping[int, tuple[list[int], np.ndarray]]) -> dict[str, np.ndarray]:
    """The file's arrays from each id's (box [x0, y0, x1, y1], (y1 - y0, x1 - x0) bool mask inside it)."""
    ids = sorted(int(i) for i in masks)
    boxes = np.zeros((len(ids), 4), dtype=np.int32)
    chunks, offsets = [], [0]
    for k, i in enumerate(ids):
        box, mask = masks[i]
        x0, y0, x1, y1 = (int(v) for v in box)
        if mask.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"object {i}: a {mask.shape} mask does not fit its box {box}")
        boxes[k] = box
        chunks.append(np.packbits(np.asarray(mask, dtype=bool).ravel()))
        offsets.append(offsets[-1] + len(chunks[-1]))
    bits = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
    return {
        "ids": np.asarray(ids, dtype=np.uint32),
        "boxes": boxes,
        "offsets": np.asarray(offsets, dtype=np.int64),
        "bits": bits,
    }


def encode(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz of `arrays` with fixed zip dates (deflated): the same arrays give the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, member.getvalue())
    return buf.getvalue()


def write(path: Path, masks: Mapping[int, tuple[list[int], np.ndarray]]) -> None:
    """Write a frame's masks to `path` (through a temporary file beside it: never a partial file there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, encode(pack(masks)))


def unpack(arrays: Mapping[str, np.ndarray], h: int, w: int) -> dict[int, np.ndarray]:
    """Each id's (h, w) bool amodal mask from the file's arrays; DatasetError where they do not fit."""
    try:
        ids, boxes, offsets, bits = (np.asarray(arrays[k]) for k in ("ids", "boxes", "offsets", "bits"))
    except KeyError as exc:
        raise DatasetError(f"an amodal mask file has no {exc.args[0]!r} array") from None
    if boxes.shape != (len(ids), 4) or offsets.shape != (len(ids) + 1,):
        raise DatasetError("an amodal mask file's ids, boxes and offsets do not agree")
    out: dict[int, np.ndarray] = {}
    for k, i in enumerate(ids):
        x0, y0, x1, y1 = (int(v) for v in boxes[k])
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise DatasetError(
                f"object {int(i)}'s amodal box {boxes[k].tolist()} is not in the {w}x{h} frame"
            )
        n = (y1 - y0) * (x1 - x0)
        chunk = bits[int(offsets[k]) : int(offsets[k + 1])]
        if len(chunk) != (n + 7) // 8:
            raise DatasetError(
                f"object {int(i)}'s amodal mask has {len(chunk)} bytes, its box needs {(n + 7) // 8}"
            )
        mask = np.zeros((h, w), dtype=bool)
        mask[y0:y1, x0:x1] = np.unpackbits(chunk, count=n).astype(bool).reshape(y1 - y0, x1 - x0)
        out[int(i)] = mask
    return out


def read_masks(path: Path, h: int, w: int) -> dict[int, np.ndarray]:
    """A frame's amodal masks: id -> (h, w) bool (ids with no amodal pixel are absent)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read the amodal masks {path}: {exc}") from None
    return unpack(arrays, h, w)
