"""What a rendered sequence folder holds per frame: paths, the files a frame needs, whether a frame is
complete, and the frame writer.

A `SequenceLayout` is built once per sequence from the render settings (`SequenceLayout.of`) and answers
everything render.py asks about a frame's files; the kinds come from the pass registry (camsim.passes),
their conversion from Cycles from groundtruth.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from camsim import amodal
from camsim.encoding import Encoding, encodings_of, lossless
from camsim.errors import DatasetError, OutputWriteError
from camsim.fileio import (
    checksum,
    looks_whole,
    move_into_place,
    read_exr_parts,
    read_image,
    strip_image_metadata,
    write_exr,
    write_image,
)
from camsim.groundtruth import FrameCameras, convert_passes
from camsim.lens_remap import remap_bilinear
from camsim.passes import BY_FLAG, FRAME, Pass

if TYPE_CHECKING:
    from camsim.config import RenderSettings


def frame_ext_of(settings: RenderSettings) -> str:
    """Extension of the RGB frames a render writes."""
    return ".jpg" if settings.file_format == "JPEG" else ".png"


@dataclass(frozen=True)
class SequenceLayout:
    """The files of a rendered sequence in `root`: the RGB frame and the asked-for ground truth of each
    frame, with their debug PNGs."""

    root: Path
    kinds: tuple[Pass, ...] = ()
    """The ground truth written (passes.RENDERED order)."""
    frame_ext: str = ".png"
    debug: bool = True
    """Colorized debug PNGs of the kinds that have one (Pass.debug_png)."""
    encodings: Mapping[str, Encoding] = field(default_factory=dict)
    """Each kind's codec and precision (camsim.encoding), by kind name; a kind without one: lossless ZIP."""
    amodal: bool = False
    """Per-frame amodal masks (camsim.amodal), written by the annotations."""

    @classmethod
    def of(cls, root: Path, settings: RenderSettings, stereo: bool = False) -> SequenceLayout:
        """The layout a render with `settings` writes into `root`; `stereo`: `root` is the left camera's folder
        of a rectified stereo pair (the kinds written only there, Pass.stereo_only, are written too)."""
        kinds = tuple(BY_FLAG[k] for k in settings.ground_truth if stereo or not BY_FLAG[k].stereo_only)
        return cls(
            root=root,
            kinds=kinds,
            frame_ext=frame_ext_of(settings),
            debug=settings.debug,
            encodings=encodings_of(kinds, settings),
            amodal=bool(getattr(settings, "amodal_masks", False)),
        )

    def encoding(self, kind: Pass) -> Encoding:
        """How `kind`'s files are stored."""
        return self.encodings.get(kind.name) or lossless(kind)

    @property
    def debug_kinds(self) -> tuple[Pass, ...]:
        return tuple(k for k in self.kinds if k.debug_png) if self.debug else ()

    def relpath(self, kind: Pass, frame: int) -> str:
        """Path of one file relative to the folder, e.g. depths/depth_000012.exr."""
        return kind.relpath(frame, self.frame_ext)

    def frame_record(self, frame: int) -> dict[str, str]:
        """The path keys of a frame's transforms.json entry: file_path, then each ground truth's key."""
        return {k.key: self.relpath(k, frame) for k in (FRAME, *self.kinds)}

    def expected_files(self, frame: int) -> list[str]:
        """Every file of a frame (relative paths): RGB frame, ground truth, debug PNGs."""
        files = [self.relpath(k, frame) for k in (FRAME, *self.kinds)]
        files += [amodal.relpath(frame)] if self.amodal else []
        return files + [k.debug_relpath(frame) for k in self.debug_kinds]

    def make_folders(self) -> None:
        for kind in (FRAME, *self.kinds):
            (self.root / kind.folder).mkdir(exist_ok=True)
        for kind in self.debug_kinds:
            (self.root / "debug" / kind.folder).mkdir(parents=True, exist_ok=True)
        if self.amodal:
            (self.root / amodal.FOLDER).mkdir(exist_ok=True)

    def frame_is_complete(
        self, frame: int, verify: bool = False, checksums: dict[str, str] | None = None
    ) -> bool:
        """True when every file of the frame is whole: the cheap check (present, not cut short: see
        fileio.looks_whole), or with `verify` a full decode and, where one was recorded, the same checksum."""
        for rel in self.expected_files(frame):
            path = self.root / rel
            if not looks_whole(path):
                return False
            if not verify:
                continue
            try:
                if path.suffix == ".exr":
                    read_exr_parts(path)
                elif path.suffix == ".npz":
                    amodal.read_masks(path, 1 << 30, 1 << 30)
                elif read_image(path).size == 0:
                    return False
            except DatasetError:
                return False
            if checksums and rel in checksums and checksum(path) != checksums[rel]:
                return False
        return True

    def kept_checksums(self, previous: dict[str, Any] | None, frames: Iterable[int]) -> dict[str, str]:
        """Checksums of the files of frames a resume keeps: as recorded when they were written, else read now."""
        known = (previous or {}).get("checksums") or {}
        rels = [rel for f in frames for rel in self.expected_files(f)]
        return {rel: known.get(rel) or checksum(self.root / rel) for rel in rels}

    # ---------------------------------------------------------------------------------------- writing

    def write_ground_truth(self, frame: int, arrays: dict[Pass, np.ndarray]) -> None:
        """Write each kind's array as its EXR (named channels, in its encoding), then the debug PNGs."""
        for kind, arr in arrays.items():
            enc = self.encoding(kind)
            write_exr(self.root / self.relpath(kind, frame), enc.channels(kind, arr), enc.codec)
        if self.debug:
            for kind, arr in arrays.items():
                if kind.debug_png and kind.colorize is not None:
                    write_image(self.root / kind.debug_relpath(frame), kind.colorize(arr, None))

    def write_frame(
        self,
        frame: int,
        rgb_tmp: Path,
        exr_tmp: Path | None,
        layer: str,
        cams: FrameCameras,
        converted: Callable[[dict[Pass, np.ndarray]], None] | None = None,
    ) -> dict[str, str]:
        """Move a rendered frame into place: Blender's RGB image `rgb_tmp` and its multilayer EXR `exr_tmp`
        (view layer `layer`) converted into ground truth. Ground truth first, RGB frame last: a frame's image
        at its final path implies the rest is there. Returns the checksums of the frame's files (read back
        from the page cache: a few ms at 512x512). `converted(arrays)` is called with the frame's ground truth
        before it is written (the annotations read the segmentation there)."""
        # Blender reports no error when a save fails: a full disk leaves a truncated file behind. So the
        # frame must decode, and the passes must hold every channel, before anything reaches a final path.
        try:
            if not rgb_tmp.is_file() or read_image(rgb_tmp).size == 0:
                raise DatasetError(f"no image at {rgb_tmp}")
            strip_image_metadata(rgb_tmp)
            if cams.lens is not None and cams.lens.remap is not None:  # lens distortion: resample the frame
                write_image(rgb_tmp, remap_bilinear(read_image(rgb_tmp), cams.lens.remap))
            if exr_tmp is not None:
                arrays = convert_passes(exr_tmp, layer, self.kinds, cams)
                if converted is not None:
                    converted(arrays)
                self.write_ground_truth(frame, arrays)
        except (DatasetError, KeyError) as exc:
            raise OutputWriteError(self._unwritten(frame, exc)) from None
        if exr_tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(exr_tmp)
        move_into_place(rgb_tmp, self.root / self.relpath(FRAME, frame))
        return {rel: checksum(self.root / rel) for rel in self.expected_files(frame)}

    def _unwritten(self, frame: int, exc: BaseException) -> str:
        try:
            free = f"{shutil.disk_usage(self.root).free / 2**20:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        detail = f"missing channel {exc}" if isinstance(exc, KeyError) else str(exc)
        return (
            f"Blender could not write frame {frame} completely (disk full? {free} in {self.root}): {detail}"
        )
