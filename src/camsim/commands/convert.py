"""`camsim convert img-to-npy|npy-to-img SRC DST`: switch a sequence (or a folder of them) between layouts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Union

import tyro


def _frames(path: Path) -> int:
    from camsim.loader import find_sequences
    from camsim.transforms import read

    return sum(len(read(p)["frames"]) for p in find_sequences(path))


@dataclass
class ImgToNpy:
    """IMG (a file per frame) to NPY (one memory-mappable (N,H,W,C) array per modality)."""

    src: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A sequence folder, or a folder of sequences (converted one by one, paths mirrored)."""
    dst: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output folder."""
    bitpack: bool = False
    """Pack binary frames (values 0/1 or 0/255, e.g. SPAD) 8 to a byte with numpy.packbits."""
    bitpack_dim: int = 2
    """Axis of (N, H, W, C) to pack along (0 = time, 2 = width)."""
    overwrite: bool = False
    """Replace an existing transforms.json in DST."""

    def run(self) -> int:
        from camsim.convert import convert_tree, img_to_npy
        from camsim.progress import progress_bar

        total = _frames(self.src)  # reads every transforms.json: a bad input fails before a bar is drawn
        with progress_bar("frames") as bar:
            task = bar.add_task("img-to-npy", total=total)
            out = convert_tree(
                self.src,
                self.dst,
                img_to_npy,
                bitpack=self.bitpack,
                bitpack_dim=self.bitpack_dim,
                overwrite=self.overwrite,
                progress=lambda n: bar.update(task, advance=n),
            )
        print(f"converted {len(out)} sequence(s) to NPY under {self.dst}")
        return 0


@dataclass
class NpyToImg:
    """NPY (bit-packed or not) to IMG: PNG frames and EXR ground truth, as `render-animation` writes them."""

    src: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="INPUT")]
    """A sequence folder, or a folder of sequences (converted one by one, paths mirrored)."""
    dst: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUTPUT")]
    """Output folder."""
    overwrite: bool = False
    """Replace an existing transforms.json in DST."""

    def run(self) -> int:
        from camsim.convert import convert_tree, npy_to_img
        from camsim.progress import progress_bar

        total = _frames(self.src)
        with progress_bar("frames") as bar:
            task = bar.add_task("npy-to-img", total=total)
            out = convert_tree(
                self.src,
                self.dst,
                npy_to_img,
                overwrite=self.overwrite,
                progress=lambda n: bar.update(task, advance=n),
            )
        print(f"converted {len(out)} sequence(s) to IMG under {self.dst}")
        return 0


Convert = Union[  # noqa: UP007 - tyro reads the Annotated members of a typing.Union
    Annotated[ImgToNpy, tyro.conf.subcommand("img-to-npy")],
    Annotated[NpyToImg, tyro.conf.subcommand("npy-to-img")],
]
"""`camsim convert <direction>`: one registry entry; tyro builds the nested subcommands from this union."""

__all__ = ["Convert", "ImgToNpy", "NpyToImg"]
