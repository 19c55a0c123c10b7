"""Whether a file was written again: for tests that check outputs were left untouched.

The modification time alone misses a rewrite with the same bytes within one tick of the file system's
clock (timestamps come from a coarse kernel clock, milliseconds apart). camsim writes atomically, to a
temporary file renamed over the old one, so a rewritten file has a new inode as well.
"""

from __future__ import annotations

import os
from pathlib import Path


def stamp(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(inode, mtime in ns): changes when `path` is replaced or written in place."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def stamps(root: str | os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """{relative path: stamp} of every file below `root`."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): stamp(p) for p in sorted(root.rglob("*")) if p.is_file()}


def contents(root: str | os.PathLike[str]) -> dict[str, tuple[bytes, tuple[int, int]]]:
    """{relative path: (bytes, stamp)} of every file below `root`: equal only when nothing was rewritten."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), stamp(p))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
