"""File I/O at the edges: atomic writes, EXR and PNG encode/decode.

Every output goes to a temporary name in the destination folder and is renamed into place, so a
reader (or a resumed run) never sees half a file at a final path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camsim.errors import DatasetError, OutputWriteError, UserInputError

TMP_MARK = ".camsim-tmp"


def _create_temporary(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file with a random name, mode 0666 less the process umask (the kernel applies it:
    nothing reads or changes the process-wide umask, which another thread may rely on)."""
    import secrets

    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise OSError(errno.EEXIST, "no free temporary name", str(folder))


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds.

    The temporary name keeps the final suffix so encoders that look at the extension still work.
    """
    final = Path(final)
    try:
        tmp_path = _create_temporary(final.parent, f".{final.stem}.", TMP_MARK + final.suffix)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {final}: {exc.strerror or exc}") from exc
    try:
        yield tmp_path
        raise_if_disk_full(tmp_path)
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


# ------------------------------------------------------------------------------------ cheap checks

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_EXR_LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256, 10: 256, 11: 32, 12: 256,
                        13: 1}  # fmt: skip
"""Scanlines per chunk by compression id: OpenEXR's (HTJ2K256 10, HTJ2K32 11, LJ2K 12, ZSTD 13 as OpenEXR 3.5
writes them)."""


def looks_whole(path: str | os.PathLike[str]) -> bool:
    """A cheap check that a file is present and not cut short, without decoding its pixels.

    PNG: signature and final IEND chunk; JPEG: start and end markers; single-part scanline EXR: the
    header parses, every chunk offset lies inside the file and the last chunk ends at the file's end;
    NPY: header plus shape x item size equals the file size; other files: not empty. Reads at most a
    few kilobytes. A file that passes can still hold damaged compressed data: decode it to be sure.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file() or size == 0:
            return False
        with open(p, "rb") as fh:
            suffix = p.suffix.lower()
            if suffix == ".png":
                head = fh.read(8)
                fh.seek(max(0, size - 12))
                return head == _PNG_SIGNATURE and fh.read(12) == _PNG_END
            if suffix in (".jpg", ".jpeg"):
                head = fh.read(2)
                fh.seek(max(0, size - 2))
                return head == b"\xff\xd8" and fh.read(2) == b"\xff\xd9"
            if suffix == ".exr":
                return _exr_looks_whole(fh, size)
            if suffix == ".npy":
                return _npy_looks_whole(fh, size)
            return True
    except (OSError, ValueError):
        return False


_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt", b"tIME")


def strip_image_metadata(path: str | os.PathLike[str]) -> None:
    """Remove the text Blender writes into PNG (tEXt chunks) and JPEG (COM segments) frames, in place.

    It holds the .blend's absolute path, the date and the render times: it would publish the user's folders
    with the dataset and make two renders of the same pixels differ in their bytes (and checksums)."""
    import struct

    p = Path(path)
    data = p.read_bytes()
    out = bytearray()
    if data.startswith(_PNG_SIGNATURE):
        out += data[:8]
        i = 8
        while i + 12 <= len(data):
            (n,) = struct.unpack(">I", data[i : i + 4])
            if data[i + 4 : i + 8] not in _PNG_TEXT:
                out += data[i : i + 12 + n]
            i += 12 + n
    elif data.startswith(b"\xff\xd8"):
        out += data[:2]
        i = 2
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker, n = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if marker == 0xDA:  # start of scan: the rest is image data
                break
            if marker != 0xFE:  # COM
                out += data[i : i + 2 + n]
            i += 2 + n
        out += data[i:]
    else:
        return
    if len(out) != len(data):
        p.write_bytes(bytes(out))


def checksum(path: str | os.PathLike[str]) -> str:
    """`crc32:xxxxxxxx` of a file's bytes: what `--verify` and `validate` compare against the value recorded
    when the file was written (decoding alone misses bytes changed in place: OpenEXR decodes a damaged
    ZIP chunk without an error)."""
    import zlib

    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return f"crc32:{crc:08x}"


def _exr_looks_whole(fh: Any, size: int) -> bool:
    import struct

    head = fh.read(8)
    if len(head) < 8 or head[:4] != _EXR_MAGIC:
        return False
    flags = struct.unpack("<I", head[4:])[0]
    if flags & 0x1A00:  # tiled, deep or multi-part: not what camsim writes; decode to check those
        return True
    blob = fh.read(65536)
    pos, compression, window = 0, None, None
    while True:
        end = blob.index(b"\0", pos)
        name = blob[pos:end]
        if not name:
            pos = end + 1
            break
        type_end = blob.index(b"\0", end + 1)
        (length,) = struct.unpack_from("<i", blob, type_end + 1)
        value = blob[type_end + 5 : type_end + 5 + length]
        if len(value) != length:
            return False
        if name == b"compression":
            compression = value[0]
        elif name == b"dataWindow":
            window = struct.unpack("<4i", value)
        pos = type_end + 5 + length
    if compression not in _EXR_LINES_PER_CHUNK or window is None:
        return compression is not None and window is not None  # a codec we do not size: decode to check
    lines = _EXR_LINES_PER_CHUNK[compression]
    chunks = -(-(window[3] - window[1] + 1) // lines)
    fh.seek(8 + pos)
    table = fh.read(8 * chunks)
    if len(table) != 8 * chunks:
        return False
    offsets = struct.unpack(f"<{chunks}Q", table)
    last = max(offsets)
    if min(offsets) < 8 + pos + 8 * chunks or last + 8 > size:
        return False
    fh.seek(last)
    _, data = struct.unpack("<ii", fh.read(8))
    return data >= 0 and last + 8 + data == size


def _npy_looks_whole(fh: Any, size: int) -> bool:
    import numpy.lib.format as npf

    version = npf.read_magic(fh)
    # The header only (np.load would decode the data too), with readers numpy 1 and 2 both have. A 3.0
    # header is laid out as 2.0's; its utf-8 field names read as latin-1 leave the sizes right.
    read_header = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
    shape, _, dtype = read_header(fh)
    if dtype.hasobject:
        return True
    return fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize == size


# --------------------------------------------------------------------------------------------- EXR


def _exr():
    import OpenEXR

    return OpenEXR


EXR_CODECS: dict[str, str] = {
    "none": "NO_COMPRESSION",
    "rle": "RLE_COMPRESSION",
    "zips": "ZIPS_COMPRESSION",
    "zip": "ZIP_COMPRESSION",
    "piz": "PIZ_COMPRESSION",
    "htj2k": "HTJ2K256_COMPRESSION",
    "zstd": "ZSTD_COMPRESSION",
}
"""OpenEXR's lossless codecs by name (bit-exact for float32, half and uint32): the compression constant of each.
HTJ2K needs OpenEXR 3.4 and ZSTD 3.5 to write and to read (camsim.encoding)."""


def write_exr(path: str | os.PathLike[str], channels: Mapping[str, np.ndarray], codec: str = "zip") -> None:
    """Write named 2-D channels (float32, float16 or uint32) as a single-part scanline EXR, atomically."""
    OpenEXR = _exr()
    constant = EXR_CODECS.get(codec)
    if constant is None or not hasattr(OpenEXR, constant):
        raise OutputWriteError(f"cannot write {path}: this OpenEXR has no {codec!r} codec")
    header = {"compression": getattr(OpenEXR, constant), "type": OpenEXR.scanlineimage}
    chans = {name: np.ascontiguousarray(arr) for name, arr in channels.items()}
    with atomic_path(path) as tmp, OpenEXR.File(header, chans) as f:
        f.write(str(tmp))


def _widened(arr: np.ndarray) -> np.ndarray:
    """Half channels as float32 (every value exactly): what camsim's readers return for them."""
    return arr.astype(np.float32) if arr.dtype == np.float16 else arr


def read_exr_parts(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every channel of every part of an EXR into {full channel name: 2-D array}; half channels come back
    as float32.

    The arrays are the decoder's own (each owns its memory), not copies."""
    OpenEXR = _exr()
    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            out: dict[str, np.ndarray] = {}
            for part in f.parts:
                for name, ch in part.channels.items():
                    px = ch.pixels
                    out[name] = px if px is None else _widened(px)
    except Exception as exc:  # OpenEXR raises plain RuntimeError/OSError on corrupt files
        raise DatasetError(f"cannot read EXR {path}: {exc}") from exc
    # A chunk that cannot be read leaves the binding with no pixels rather than an error.
    if not out or any(a is None or a.ndim != 2 or a.size == 0 for a in out.values()):
        raise DatasetError(f"cannot read EXR {path}: damaged pixel data")
    return out


def read_exr(path: str | os.PathLike[str], names: tuple[str, ...] | None = None) -> np.ndarray:
    """Read an EXR as an HxW (one channel) or HxWxC array, channels in `names` order if given; half channels
    come back as float32 (camsim stores normals as half floats: camsim.encoding).

    With `names`, only those channels are copied out of the decoder's buffers, once (stacked while the file
    is open): the loader's path for every EXR, so it costs what a bare OpenEXR read costs."""
    if names is None:
        chans = read_exr_parts(path)
        names = tuple(chans)
        return chans[names[0]] if len(names) == 1 else np.stack([chans[n] for n in names], axis=-1)
    OpenEXR = _exr()
    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            found = {name: ch for part in f.parts for name, ch in part.channels.items()}
            missing = [n for n in names if n not in found]
            if missing:
                raise DatasetError(f"EXR {path} lacks channels {missing}; has {sorted(found)}")
            pixels = [found[n].pixels for n in names]
            if any(p is None or p.ndim != 2 or p.size == 0 for p in pixels):
                raise DatasetError(f"cannot read EXR {path}: damaged pixel data")
            return _widened(np.array(pixels[0]) if len(names) == 1 else np.stack(pixels, axis=-1))
    except DatasetError:
        raise
    except Exception as exc:  # OpenEXR raises plain RuntimeError/OSError on corrupt files
        raise DatasetError(f"cannot read EXR {path}: {exc}") from exc


# --------------------------------------------------------------------------------------------- PNG


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an HxW or HxWx3/4 uint8/uint16 image (RGB order) atomically; format from the suffix."""
    import cv2

    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype in (np.uint8, np.uint16):
        swap = cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA  # ~50x faster than indexing
        arr = cv2.cvtColor(np.ascontiguousarray(arr), swap)
    elif arr.ndim == 3 and arr.shape[2] >= 3:
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
