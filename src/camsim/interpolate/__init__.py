"""Frame interpolation from the renderer's exact flow and depth (issue 6).

`interpolate_sequence(input_dir, output_dir, factor)` turns a rendered sequence into one with
factor − 1 new frames between each pair; `warp.PairWarper` is the per-pair core.
"""

from camsim.interpolate.sequence import interpolate_sequence

__all__ = ["interpolate_sequence"]
