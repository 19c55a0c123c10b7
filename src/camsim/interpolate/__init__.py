"""Frame interpolation from the renderer's exact flow and depth (issue 6).

`interpolate_sequence(input_dir, output_dir, factor)` turns a rendered sequence into one with
factor − 1 new frames between each pair; `warp.PairWarper` is the per-pair core; `interpolate_tree`
does it for every sequence below a dataset folder (mirrored, in parallel, resumable).
"""

from camsim.interpolate.sequence import interpolate_sequence
from camsim.interpolate.tree import interpolate_tree

__all__ = ["interpolate_sequence", "interpolate_tree"]
