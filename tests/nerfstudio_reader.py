"""Read an export with nerfstudio's own code and dump what its training would see (run with nerfstudio's Python).

    python nerfstudio_reader.py EXPORT_FOLDER OUT.npz

Used by tests/test_export_nerfstudio.py when CAMSIM_TEST_NERFSTUDIO_PYTHON names a Python that has
nerfstudio installed. Imports nothing from camsim: the dataparser, the depth dataset (`get_metadata`, the
function depth-nerfacto's data manager calls) and the cameras' ray generation are nerfstudio's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(folder: str, out: str) -> None:
    import nerfstudio
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.data.datasets.depth_dataset import DepthDataset

    scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3  # what `--depth-unit-scale-factor` would pass
    config = NerfstudioDataParserConfig(data=Path(folder), eval_mode="all", depth_unit_scale_factor=scale)
    outputs = config.setup().get_dataparser_outputs(split="train")
    dataset = DepthDataset(outputs)
    cams = outputs.cameras
    arrays: dict[str, np.ndarray] = {
        "dataparser_transform": outputs.dataparser_transform.numpy(),
        "dataparser_scale": np.array(outputs.dataparser_scale),
        "names": np.array([Path(p).relative_to(folder).as_posix() for p in outputs.image_filenames]),
        "fx": cams.fx.numpy()[:, 0],
        "fy": cams.fy.numpy()[:, 0],
        "cx": cams.cx.numpy()[:, 0],
        "cy": cams.cy.numpy()[:, 0],
        "version": np.array(getattr(nerfstudio, "__version__", "") or _dist_version()),
    }
    depths, images, origins, directions, norms = [], [], [], [], []
    for i in range(len(dataset)):
        depths.append(dataset.get_metadata({"image_idx": i})["depth_image"].numpy()[..., 0])
        images.append(dataset.get_numpy_image(i))
        rays = cams.generate_rays(camera_indices=i)
        origins.append(rays.origins.numpy())
        directions.append(rays.directions.numpy())
        norms.append(rays.metadata["directions_norm"].numpy()[..., 0])
    arrays.update(
        depth=np.stack(depths),
        image=np.stack(images),
        origins=np.stack(origins),
        directions=np.stack(directions),
        directions_norm=np.stack(norms),
    )
    np.savez(out, **arrays)


def _dist_version() -> str:
    from importlib.metadata import version

    return version("nerfstudio")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
