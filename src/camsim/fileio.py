"""File I/O at the edges: atomic writes, EXR and PNG encode/decode.

Every output goes to a temporary name in the destination folder and is renamed into place, so a
reader (or a resumed run) never sees half a file at a final path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camsim.errors import DatasetError, OutputWriteError, UserInputError

TMP_MARK = ".camsim-tmp"

_UMASK = os.umask(0)
os.umask(_UMASK)

EXR_CODECS = ("none", "rle", "zips", "zip", "piz")
"""Lossless EXR codecs; ground truth is never written lossy."""


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds.

    The temporary name keeps the final suffix so encoders that look at the extension still work.
    """
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=TMP_MARK + final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        raise_if_disk_full(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, final)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise OutputWriteError(f"cannot write {final}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def raise_if_disk_full(path: str | os.PathLike[str]) -> None:
    """Raise ENOSPC when the file system holding `path` has no block left.

    Some encoders (OpenEXR's, Blender's image writers) ignore a failed write and leave a truncated
    file without an error; a file system with nothing free means the file just written may be cut
    short, so it must not be renamed into place.
    """
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):  # no statvfs (Windows): rely on the encoder's own errors
        return
    free = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    if st.f_blocks and free == 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def make_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create an output folder (and its parents), or say in one line why it cannot be one."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserInputError(f"output path exists and is not a folder: {p}")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create output folder {p}: {exc.strerror}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise UserInputError(f"output folder is not writable: {p}")
    return p


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def move_into_place(src: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Rename a finished file (written elsewhere on the same file system) to its final path."""
    try:
        raise_if_disk_full(src)
        os.replace(src, final)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {final}: {exc.strerror or exc}") from exc


def clean_temporaries(folder: str | os.PathLike[str]) -> int:
    """Remove temporary files an interrupted run left in `folder` (recursively). Returns the count."""
    count = 0
    for p in Path(folder).rglob(f"*{TMP_MARK}*"):
        if p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                count += 1
    return count


# --------------------------------------------------------------------------------------------- EXR


def _exr():
    import OpenEXR

    return OpenEXR


def write_exr(path: str | os.PathLike[str], channels: Mapping[str, np.ndarray], codec: str = "zip") -> None:
    """Write named 2-D channels (float32, float16 or uint32) as a single-part scanline EXR, atomically."""
    OpenEXR = _exr()
    compression = {
        "none": OpenEXR.NO_COMPRESSION,
        "rle": OpenEXR.RLE_COMPRESSION,
        "zips": OpenEXR.ZIPS_COMPRESSION,
        "zip": OpenEXR.ZIP_COMPRESSION,
        "piz": OpenEXR.PIZ_COMPRESSION,
    }[codec]
    header = {"compression": compression, "type": OpenEXR.scanlineimage}
    chans = {name: np.ascontiguousarray(arr) for name, arr in channels.items()}
    with atomic_path(path) as tmp, OpenEXR.File(header, chans) as f:
        f.write(str(tmp))


def read_exr_parts(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every channel of every part of an EXR into {full channel name: 2-D array}."""
    OpenEXR = _exr()
    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            out: dict[str, np.ndarray] = {}
            for part in f.parts:
                for name, ch in part.channels.items():
                    out[name] = np.array(ch.pixels)
            return out
    except Exception as exc:  # OpenEXR raises plain RuntimeError/OSError on corrupt files
        raise DatasetError(f"cannot read EXR {path}: {exc}") from exc


def read_exr(path: str | os.PathLike[str], names: tuple[str, ...] | None = None) -> np.ndarray:
    """Read an EXR as an HxW (one channel) or HxWxC array, channels in `names` order if given."""
    chans = read_exr_parts(path)
    if names is None:
        names = tuple(chans)
    missing = [n for n in names if n not in chans]
    if missing:
        raise DatasetError(f"EXR {path} lacks channels {missing}; has {sorted(chans)}")
    if len(names) == 1:
        return chans[names[0]]
    return np.stack([chans[n] for n in names], axis=-1)


# --------------------------------------------------------------------------------------------- PNG


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an HxW or HxWx3/4 uint8/uint16 image (RGB order) atomically; format from the suffix."""
    import cv2

    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr[..., [2, 1, 0, *range(3, arr.shape[2])]]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(arr)):
            raise OutputWriteError(f"cannot encode image {path}")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG/JPEG as HxW or HxWxC (RGB/RGBA order) keeping its bit depth."""
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DatasetError(f"cannot decode image {path}")
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr[..., [2, 1, 0, *range(3, arr.shape[2])]]
    return arr
