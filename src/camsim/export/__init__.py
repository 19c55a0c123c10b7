"""Exporters: write a camsim sequence in another tool's layout, loadable by that tool as-is.

Each exporter plans first (reads transforms.json files, checks every input, touches nothing on disk) and
then writes into a staging folder that replaces the output folder only when everything succeeded.
"""

from __future__ import annotations

from camsim.export.nerfstudio import (
    NerfstudioExport,
    NerfstudioPlan,
    choose_depth_unit,
    export_nerfstudio,
    nerfstudio_transforms,
    plan_nerfstudio,
    quantise_depth,
    train_command,
)

__all__ = [
    "NerfstudioExport",
    "NerfstudioPlan",
    "choose_depth_unit",
    "export_nerfstudio",
    "nerfstudio_transforms",
    "plan_nerfstudio",
    "quantise_depth",
    "train_command",
]
