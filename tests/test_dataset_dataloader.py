"""A torch DataLoader with 2 worker processes reads every frame of a rendered demo sequence exactly."""

from __future__ import annotations

import numpy as np
import pytest

from camsim import transforms
from camsim.config import RenderConfig
from camsim.convert import img_to_npy
from camsim.fileio import read_exr, read_image
from camsim.loader import Dataset

# torch is not in camsim[test] (PyPI's Linux wheel is the CUDA build, gigabytes); `make test` installs the CPU one.
torch = pytest.importorskip(
    "torch", reason="the DataLoader test needs torch: pip install torch (a CPU build is enough)"
)

TINY = RenderConfig(
    width=32, height=24, max_samples=4, adaptive_threshold=0.0, use_denoising=False, threads=2, debug=False
)


@pytest.fixture(scope="module")
def demo_sequence(render, demo_scenes):
    return render(demo_scenes[0], "loader-demo", config=TINY, frame_start=1, frame_end=6)


def _expected(root, meta, i):
    fr = meta["frames"][i]
    return {
        "frame": read_image(root / fr["file_path"]),
        "depth": read_exr(root / fr["depth_file_path"], ("Y",)),
        "normal": read_exr(root / fr["normal_file_path"], ("R", "G", "B")),
        "flow": read_exr(root / fr["flow_file_path"], ("R", "G", "B", "A")),
        "segmentation": read_exr(root / fr["segmentation_file_path"], ("Y",)),
        "pose": np.array(fr["transform_matrix"]),
        "K": transforms.intrinsics(meta, i),
    }


@pytest.mark.blender
@pytest.mark.parametrize("layout", ["IMG", "NPY"])
def test_dataset_dataloader_two_workers_reads_every_frame_exactly(demo_sequence, tmp_path, layout):
    root = demo_sequence if layout == "IMG" else img_to_npy(demo_sequence, tmp_path / "npy")
    ds = Dataset.from_path(root)
    meta = transforms.read(demo_sequence)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    seen = []
    for batch in loader:
        for b, idx in enumerate(batch["index"].tolist()):
            seen.append(idx)
            want = _expected(demo_sequence, meta, idx)
            for key, value in want.items():
                got = batch[key][b].numpy()
                assert got.dtype == value.dtype or key in ("pose", "K"), key
                np.testing.assert_array_equal(got.reshape(value.shape), value, err_msg=key)
    assert seen == list(range(len(meta["frames"]))) == list(range(6))


@pytest.mark.blender
def test_dataset_dataloader_chosen_modalities_and_crops(demo_sequence, tmp_path):
    """Workers get only the chosen modalities; crops of a rendered frame equal the cropped files."""
    meta = transforms.read(demo_sequence)
    ds = Dataset.from_path(demo_sequence, modalities=("rgb", "depth"))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [3, 3]
    for batch in batches:
        assert not batch.keys() & {"normal", "flow", "segmentation"}
        for b, idx in enumerate(batch["index"].tolist()):
            want = _expected(demo_sequence, meta, idx)
            np.testing.assert_array_equal(batch["frame"][b].numpy(), want["frame"])
            np.testing.assert_array_equal(batch["depth"][b].numpy(), want["depth"])
    crops = Dataset.from_path(demo_sequence)[[0, 5], 4:20, 8:24]
    for item in crops:
        want = _expected(demo_sequence, meta, item["index"])
        for key in ("frame", "depth", "normal", "flow", "segmentation"):
            np.testing.assert_array_equal(item[key], want[key][4:20, 8:24], err_msg=key)
        K = want["K"].copy()
        K[0, 2] -= 8
        K[1, 2] -= 4
        np.testing.assert_allclose(item["K"], K)
