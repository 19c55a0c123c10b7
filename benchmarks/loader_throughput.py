"""Loader throughput (frames/s): camsim.loader vs reading the same files bare with the same libraries.

Writes a synthetic sequence (RGB PNG + depth/normal/flow/segmentation EXR), converts it to NPY and to
bit-packed NPY (binary frames), then reads every frame with every modality, in one run:

    python benchmarks/loader_throughput.py [--frames 128] [--size 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from camsim import transforms
from camsim.convert import img_to_npy
from camsim.fileio import write_exr, write_image
from camsim.loader import Dataset


def make_sequence(root: Path, n: int, size: int, binary: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("frames", "depths", "normals", "flows", "segmentations"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    h = w = size
    frames = []
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        rgb = ((np.stack([xx + i, yy, xx ^ yy], -1) * 7) % 256).astype(np.uint8)
        if binary:
            rgb = (rng.random((h, w)) < 0.3).astype(np.uint8)
        write_image(root / f"frames/frame_{i:06d}.png", rgb)
        write_exr(root / f"depths/depth_{i:06d}.exr", {"Y": (2 + np.sin(xx / 9.0 + i)).astype(np.float32)})
        nrm = rng.standard_normal((h, w, 3)).astype(np.float32)
        write_exr(root / f"normals/normal_{i:06d}.exr", {c: nrm[..., k] for k, c in enumerate("RGB")})
        flo = rng.standard_normal((h, w, 4)).astype(np.float32)
        write_exr(root / f"flows/flow_{i:06d}.exr", {c: flo[..., k] for k, c in enumerate("RGBA")})
        seg = (xx // 32 + yy // 32).astype(np.uint32)
        write_exr(root / f"segmentations/segmentation_{i:06d}.exr", {"Y": seg})
        frames.append(
            {
                "file_path": f"frames/frame_{i:06d}.png",
                "depth_file_path": f"depths/depth_{i:06d}.exr",
                "normal_file_path": f"normals/normal_{i:06d}.exr",
                "flow_file_path": f"flows/flow_{i:06d}.exr",
                "segmentation_file_path": f"segmentations/segmentation_{i:06d}.exr",
                "transform_matrix": np.eye(4).tolist(),
                "frame_number": i,
                "time": i / 30.0,
            }
        )
    meta = {
        "fl_x": 100.0,
        "fl_y": 100.0,
        "cx": w / 2,
        "cy": h / 2,
        "w": w,
        "h": h,
        "fps": 30.0,
        "frames": frames,
    }
    transforms.write(root / "transforms.json", meta)
    return root


def bare_img(root: Path) -> int:
    """The same arrays as the loader (RGB order, channels stacked HxWxC), straight from cv2 and OpenEXR."""
    meta = transforms.read(root)
    gt = {
        "depth_file_path": ("Y",),
        "normal_file_path": ("R", "G", "B"),
        "flow_file_path": ("R", "G", "B", "A"),
        "segmentation_file_path": ("Y",),
    }
    n = 0
    for fr in meta["frames"]:
        img = cv2.imread(str(root / fr["file_path"]), cv2.IMREAD_UNCHANGED)
        if img.ndim == 3:
            img = img[..., ::-1].copy()
        for key, names in gt.items():
            with OpenEXR.File(str(root / fr[key]), separate_channels=True) as f:
                ch = f.parts[0].channels
                _ = (
                    np.array(ch[names[0]].pixels)
                    if len(names) == 1
                    else np.stack([ch[c].pixels for c in names], -1)
                )
        n += 1
    return n


def bare_npy(root: Path, bitpack: bool) -> int:
    meta = transforms.read(root)
    keys = ("file_path", "depth_file_path", "normal_file_path", "flow_file_path", "segmentation_file_path")
    arrays = {k: np.load(root / meta[k], mmap_mode="r") for k in keys}
    n = len(meta["frames"])
    for i in range(n):
        for k, a in arrays.items():
            if k == "file_path" and bitpack:
                np.unpackbits(a[i], axis=1, count=meta["w"])
            else:
                np.array(a[i])
    return n


def loader(root: Path) -> int:
    ds = Dataset.from_path(root)
    for i in range(len(ds)):
        ds[i]
    return len(ds)


def timed_pair(a, b, repeat: int = 3) -> tuple[float, float]:
    """Best frames/s of `repeat` runs of each of two readers, alternating (a, b, a, b, ...), so neither
    benefits from running after the other (page cache and allocator state are shared)."""
    best = [0.0, 0.0]
    for _ in range(repeat):
        for k, (fn, args) in enumerate((a, b)):
            t = time.perf_counter()
            n = fn(*args)
            best[k] = max(best[k], n / (time.perf_counter() - t))
    return best[0], best[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        img = make_sequence(tmp / "img", args.frames, args.size)
        npy = img_to_npy(img, tmp / "npy")
        spad = make_sequence(tmp / "spad-img", args.frames, args.size, binary=True)
        packed = img_to_npy(spad, tmp / "spad-npy", bitpack=True, bitpack_dim=2)
        rows = [
            ("IMG (PNG + 4 EXR)", *timed_pair((loader, (img,)), (bare_img, (img,)))),
            ("NPY (5 memory maps)", *timed_pair((loader, (npy,)), (bare_npy, (npy, False)))),
            ("NPY bit-packed frames", *timed_pair((loader, (packed,)), (bare_npy, (packed, True)))),
        ]
    print(
        f"{args.frames} frames of {args.size}x{args.size}, every modality per item, best of 3, Python {sys.version.split()[0]}"
    )
    print(f"{'layout':24s} {'loader f/s':>11s} {'bare f/s':>9s} {'loader/bare':>12s}")
    for name, a, b in rows:
        print(f"{name:24s} {a:11.1f} {b:9.1f} {a / b:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
