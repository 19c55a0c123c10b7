"""Rendered-like sequences with objects, categories and per-object annotations, written without Blender (a
test helper module for the COCO and BOP exports).

Objects are flat rectangular cards (local z = 0, |x| <= hx, |y| <= hy) with known object-to-world matrices
(rotation, translation, per-axis scale); every pixel-centre ray is intersected with every card, so depth
(planar z), segmentation, each object's unoccluded coverage (projected_pixels, bbox_amodal) and the poses
are known exactly. objects.json carries the agreed "camsim-objects/2" fields: `category`, `category_id`,
`deforming` per object, and per frame `annotations` (pose_camera, box_3d, bbox_visible, bbox_amodal,
visible_pixels, projected_pixels, visibility, truncated).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from camsim import transforms
from camsim.fileio import write_exr, write_image

W, H, FOCAL = 48, 40, 40.0


def rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    m = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
         "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]  # fmt: skip
    return np.array(m, dtype=np.float64)


def matrix(translation, rotation=None, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = (np.eye(3) if rotation is None else np.asarray(rotation)) @ np.diag(scale)
    m[:3, 3] = translation
    return m


@dataclass(frozen=True)
class Card:
    """A rectangle in its local z = 0 plane, half sizes (hx, hy), placed per frame by `pose(i)`."""

    id: int
    name: str
    category: str
    half: tuple[float, float]
    translation: tuple[float, float, float]
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt: tuple[str, float, float] = ("y", 0.0, 0.0)
    """(axis, angle at frame 0, angle per frame)."""
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def pose(self, i: int) -> np.ndarray:
        axis, a0, da = self.tilt
        t = np.add(self.translation, np.multiply(self.velocity, i))
        return matrix(t, rot(axis, a0 + da * i), self.scale)

    def corners_local(self) -> np.ndarray:
        hx, hy = self.half
        return np.array([[-hx, -hy, 0], [hx, -hy, 0], [hx, hy, 0], [-hx, hy, 0]], dtype=np.float64)


@dataclass
class Truth:
    """What a test needs to check an export against: the cards and the cameras of every frame."""

    folder: Path
    cards: tuple[Card, ...]
    c2w: list[np.ndarray] = field(default_factory=list)
    K: np.ndarray = field(default_factory=lambda: np.eye(3))
    depth: list[np.ndarray] = field(default_factory=list)
    seg: list[np.ndarray] = field(default_factory=list)
    projected: list[dict[int, np.ndarray]] = field(default_factory=list)
    """Per frame: object id -> its unoccluded coverage mask."""
    frame_numbers: list[int] = field(default_factory=list)


CARDS_A = (
    Card(1, "Box.A", "box", (1.0, 0.8), (0.2, 0.1, -5.0), velocity=(0.05, 0.0, 0.0), tilt=("y", 0.3, 0.05)),
    Card(2, "Mug.1", "mug", (0.3, 0.4), (-0.3, 0.0, -3.0), velocity=(0.0, 0.03, 0.0), scale=(2.0, 1.0, 1.0),
         tilt=("x", -0.2, 0.0)),
    Card(3, "Mug.2", "mug", (0.5, 0.5), (-2.5, 0.5, -4.0)),  # cut by the left edge of the frame
    Card(4, "Hidden", "box", (0.2, 0.2), (0.2, 0.1, -7.0)),  # right behind Box.A: in view, not visible
    Card(5, "Away", "plate", (0.5, 0.5), (0.0, 0.0, 5.0)),  # behind the camera
)  # fmt: skip
CARDS_B = (
    Card(1, "Plate", "plate", (0.6, 0.6), (0.5, -0.2, -3.5), tilt=("z", 0.4, 0.1)),
    Card(2, "Crate", "box", (0.8, 0.5), (-0.6, 0.3, -4.5), velocity=(0.0, 0.0, 0.1)),
)


def camera(i: int) -> np.ndarray:
    return matrix((0.03 * i, -0.02 * i, 0.0), rot("y", 0.02 * i) @ rot("x", 0.01 * i))


def render(cards: tuple[Card, ...], c2w: np.ndarray, K: np.ndarray, i: int):
    """Depth (planar, inf background), segmentation and every card's unoccluded coverage at frame i."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], -(v - K[1, 2]) / K[1, 1], -np.ones_like(u)], -1)
    d = d_cam @ c2w[:3, :3].T
    o = c2w[:3, 3]
    depth = np.full((H, W), np.inf)
    seg = np.zeros((H, W), np.uint32)
    cover = {}
    for card in cards:
        inv = np.linalg.inv(card.pose(i))
        o_l = inv[:3, :3] @ o + inv[:3, 3]
        d_l = d @ inv[:3, :3].T
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -o_l[2] / d_l[..., 2]
        x = o_l[0] + t * d_l[..., 0]
        y = o_l[1] + t * d_l[..., 1]
        hx, hy = card.half
        hit = np.isfinite(t) & (t > 0) & (np.abs(x) <= hx) & (np.abs(y) <= hy)
        cover[card.id] = hit
        nearer = hit & (t < depth)  # planar depth = t, since d_cam has z = -1
        depth[nearer] = t[nearer]
        seg[nearer] = card.id
    return depth, seg, cover


def edges(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, x1, y1] (x1, y1 exclusive) of a mask, None when empty."""
    if not mask.any():
        return None
    cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    return [int(cols[0]), int(rows[0]), int(cols[-1] + 1), int(rows[-1] + 1)]


def write_objects_sequence(
    folder: Path,
    cards: tuple[Card, ...] = CARDS_A,
    n: int = 3,
    *,
    first_number: int = 1,
    bit_depth: int = 8,
    categories: bool = True,
    annotations: bool = True,
) -> Truth:
    """Write an IMG sequence of `cards` (categories and annotations as the agreed format; `categories=False`
    writes a sequence rendered before categories existed: objects.json format 1, no `categories`)."""
    folder = Path(folder)
    for sub in ("frames", "depths", "segmentations"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    K = np.array([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1.0]])
    truth = Truth(folder, cards, K=K)
    names = sorted({c.category for c in cards})
    cat_id = {name: k + 1 for k, name in enumerate(names)}
    frames, obj_frames = [], []
    colours = {c.id: np.array([40 + 40 * c.id, 200 - 30 * c.id, 90 + 20 * c.id]) for c in cards}
    for i in range(n):
        num = first_number + i
        c2w = camera(i)
        depth, seg, cover = render(cards, c2w, K, i)
        rgb = np.full((H, W, 3), 30.0)
        for c in cards:
            rgb[seg == c.id] = colours[c.id]
        dtype = np.uint8 if bit_depth == 8 else np.uint16
        img = rgb.astype(dtype) if bit_depth == 8 else (rgb * 257 + 3).astype(dtype)
        fr = {
            "file_path": f"frames/frame_{num:06d}.png",
            "depth_file_path": f"depths/depth_{num:06d}.exr",
            "segmentation_file_path": f"segmentations/segmentation_{num:06d}.exr",
            "transform_matrix": c2w.tolist(),
            "frame_number": num,
            "time": i / 24.0,
            "camera": "Camera",
        }
        write_image(folder / fr["file_path"], img)
        write_exr(folder / fr["depth_file_path"], {"Y": depth.astype(np.float32)})
        write_exr(folder / fr["segmentation_file_path"], {"Y": seg})
        frames.append(fr)
        truth.c2w.append(c2w)
        truth.depth.append(depth.astype(np.float32).astype(np.float64))
        truth.seg.append(seg)
        truth.projected.append(cover)
        truth.frame_numbers.append(num)
        anns = {}
        w2c = np.linalg.inv(c2w)
        for c in cards:
            pose = c.pose(i)
            visible = seg == c.id
            corners = np.array([[x, y, z] for x in (-c.half[0], c.half[0]) for y in (-c.half[1], c.half[1])
                                for z in (0.0, 0.0)])  # fmt: skip
            world = corners @ pose[:3, :3].T + pose[:3, 3]
            uv, z = transforms.project(world, c2w, K)
            truncated = bool(cover[c.id].any()) and bool(
                (z <= 0).any() or (uv[:, 0] < 0).any() or (uv[:, 0] > W).any() or (uv[:, 1] < 0).any()
                or (uv[:, 1] > H).any()
            )  # fmt: skip
            projected = int(cover[c.id].sum())
            anns[str(c.id)] = {
                "instances": 1,
                "pose_camera": (w2c @ pose).tolist(),
                "box_3d": {"world": world.tolist(), "camera": (world @ w2c[:3, :3].T + w2c[:3, 3]).tolist()},
                "bbox_visible": edges(visible),
                "bbox_amodal": edges(cover[c.id]),
                "visible_pixels": int(visible.sum()),
                "projected_pixels": projected,
                "visibility": int(visible.sum()) / projected if projected else None,
                "truncated": truncated,
            }
        entry = {"frame_number": num, "matrix_world": {str(c.id): c.pose(i).tolist() for c in cards}}
        if annotations:
            entry["annotations"] = anns
        obj_frames.append(entry)
    objects = {}
    for c in cards:
        o = {"name": c.name, "library": None, "rigid": True}
        if categories:
            o.update({"category": c.category, "category_id": cat_id[c.category], "deforming": False})
        objects[str(c.id)] = o
    record = {
        "format": "camsim-objects/2" if categories else "camsim-objects/1",
        "objects": objects,
        "frames": obj_frames,
    }
    (folder / "objects.json").write_text(json.dumps(record))
    meta = {
        "format": transforms.FORMAT_VERSION,
        "camera_model": "OPENCV",
        "fl_x": FOCAL,
        "fl_y": FOCAL,
        "cx": W / 2,
        "cy": H / 2,
        "w": W,
        "h": H,
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "fps": 24.0,
        "metres_per_unit": 1.0,
        "conventions": transforms.CONVENTIONS,
        "segmentation_ids": {str(c.id): c.name for c in cards},
        "objects_file_path": "objects.json",
        "frames": frames,
    }
    if categories:
        meta["categories"] = {str(cat_id[n]): n for n in names}
    transforms.write(folder / "transforms.json", meta)
    return truth


DATASET_SCENES = {"alpha": (CARDS_A, "train"), "beta": (CARDS_B, "val"), "gamma": (CARDS_B, "train")}
"""Scene -> (its cards, its split) of `write_objects_datasets`."""


def write_objects_datasets(root: Path, frames: int = 2) -> dict[str, Truth]:
    """A create-datasets folder (render stage only, splits train/val/test) of card sequences, without
    Blender: DATASETS/renders/SCENE/000001-00000N-x1 and a dataset.json recording them complete. Returns the
    truth of each sequence by its manifest key."""
    from camsim.manifest import Manifest, SequenceRecord, Splits, StageState, sequence_key, write_manifest

    split_of = {scene: split for scene, (_, split) in DATASET_SCENES.items()}
    manifest = Manifest(
        config={}, stages=["render"], splits=Splits(["train", "val", "test"], [0.6, 0.2, 0.2], 0, split_of)
    )
    truths = {}
    for scene, (cards, split) in DATASET_SCENES.items():
        key = sequence_key(scene, f"000001-{frames:06d}-x1")
        truths[key] = write_objects_sequence(root / "renders" / key, cards, n=frames)
        manifest.sequences[key] = SequenceRecord(scene, split, 1, frames, {"render": StageState("complete")})
    write_manifest(root, manifest)
    return truths
