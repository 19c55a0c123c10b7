"""Ground truth checked against itself: depth + poses + intrinsics (+ the rigid objects' matrices of
objects.json) predict the forward flow of interior surface pixels, and forward-backward flow cycles close.

`check_consistency` is what `camsim validate --consistency` runs per sequence; the pure pieces
(reprojection, interior mask, pair judgement, objects.json parsing) are tested on their own.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camsim import transforms
from camsim.errors import DatasetError
from camsim.loader import SequenceDataset

log = logging.getLogger(__name__)


@dataclass
class Consistency:
    """Ground truth checked against itself: depth + poses + intrinsics (+ the object poses of
    objects.json) vs forward flow, and flow cycles."""

    pairs: int
    """Consecutive frame pairs compared."""
    epe: float
    """Mean end-point error (px) between forward flow and reprojected depth, on pixels whose motion is
    known: surfaces judged static and objects with recorded poses."""
    epe_median: float
    static_fraction: float
    """Share of checked pixels whose motion is known: on segments judged static (median error small)
    or on objects with recorded poses."""
    cycle_median: float
    """Median |forward + backward(next)| (px): 0 for a consistent flow pair."""
    cycle_outliers: float
    """Share of pixels whose forward-backward cycle misses by more than 1 px (occlusions add some)."""
    ok: bool
    bad_pairs: list[tuple[int, str]] = field(default_factory=list)
    """(index of the first frame, why) for every inconsistent frame pair."""
    reason: str = ""
    """Why nothing was checked (then `checked` is 0 and `ok` stays true), or a summary of the failures."""
    checked: int = 0
    """Interior surface pixels judged, over all pairs."""
    rigid_fraction: float = 0.0
    """Share of checked pixels on objects whose motion objects.json records."""
    excluded: int = 0
    """Interior pixels left out: objects that objects.json lists without a pose (deforming, instanced)."""


# ------------------------------------------------------------------------------------- objects.json


@dataclass(frozen=True)
class ObjectPoses:
    """A sequence's objects.json: the ids it describes and, per frame, the object-to-world matrix of
    each object that moves rigidly and is drawn once (translation in metres, like depth and poses)."""

    ids: frozenset[int]
    """Every id objects.json lists; those without a matrix (deforming, instanced) are not judged."""
    matrices: tuple[dict[int, np.ndarray], ...]
    """One {id: 4x4 object-to-world} per frame of transforms.json, same order."""

    def motions(self, i: int, j: int) -> dict[int, np.ndarray]:
        """World-space motion M(j) @ inv(M(i)) of every id with an invertible matrix at frames i and j."""
        a, b = self.matrices[i], self.matrices[j]
        out = {}
        for k in sorted(a.keys() & b.keys()):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[k] = b[k] @ np.linalg.inv(a[k])
        return out


def _matrix(m: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (4, 4) or not np.isfinite(arr).all():
        raise DatasetError(f"{where} must be a 4x4 list of finite numbers")
    return arr


def _by_id(mapping: Any, what: str) -> dict[int, Any]:
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and k.isdigit() for k in mapping):
        raise DatasetError(f"{what} must map integer ids to values")
    return {int(k): v for k, v in mapping.items()}


def parse_objects(data: Any, frame_numbers: list[Any]) -> ObjectPoses:
    """Check a parsed objects.json against the frames of its transforms.json and collect the matrices.

    A rigid object's matrix comes from `frames[i].matrix_world` or, for one that does not move, once
    from its `objects` entry (`matrix_world`); an object marked `"rigid": false` gets none.
    """
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("camsim-objects/"):
        raise DatasetError("not a camsim-objects file (no 'format': 'camsim-objects/1' or '/2')")
    objects = _by_id(data.get("objects"), "'objects'")
    fixed: dict[int, np.ndarray] = {}
    not_rigid: set[int] = set()
    for k, entry in objects.items():
        if not isinstance(entry, dict):
            raise DatasetError(f"objects[{k}] must be an object")
        if entry.get("rigid") is False:
            not_rigid.add(k)
        elif "matrix_world" in entry:
            fixed[k] = _matrix(entry["matrix_world"], f"objects[{k}].matrix_world")
    frames = data.get("frames")
    if not isinstance(frames, list) or len(frames) != len(frame_numbers):
        got = len(frames) if isinstance(frames, list) else "no"
        raise DatasetError(f"{got} frames, transforms.json has {len(frame_numbers)}")
    ids = set(objects)
    matrices = []
    for i, (fr, number) in enumerate(zip(frames, frame_numbers, strict=True)):
        if not isinstance(fr, dict):
            raise DatasetError(f"frames[{i}] must be an object")
        if isinstance(number, int) and fr.get("frame_number", number) != number:
            raise DatasetError(
                f"frames[{i}] is frame {fr.get('frame_number')}, transforms.json says {number}"
            )
        own = _by_id(fr.get("matrix_world", {}), f"frames[{i}].matrix_world")
        frame = dict(fixed)
        frame.update({k: _matrix(m, f"frames[{i}].matrix_world[{k}]") for k, m in own.items()})
        ids.update(own)
        matrices.append({k: m for k, m in frame.items() if k not in not_rigid})
    return ObjectPoses(frozenset(ids), tuple(matrices))


# ------------------------------------------------------------------------------------- consistency


def reprojection_flow(
    depth: np.ndarray,
    c2w_a: np.ndarray,
    k_a: np.ndarray,
    c2w_b: np.ndarray,
    k_b: np.ndarray,
    labels: np.ndarray | None = None,
    motions: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flow (HxWx2, px) that surfaces seen with `depth` in camera a have into camera b, and a mask of
    pixels in front of camera b. Surfaces are static, except pixels whose id in `labels` has a world
    motion in `motions` (4x4, X_b = T @ X_a). `k_a`, `k_b`: pinhole matrices K, or `transforms.Camera`s
    with their lens (a distortion, a fisheye: its depth convention and projection)."""
    h, w = depth.shape
    d = np.where(np.isfinite(depth), depth, 1.0)
    if isinstance(k_a, transforms.Camera) and isinstance(k_b, transforms.Camera):
        pts = np.nan_to_num(transforms.unproject_depth(d, c2w_a, k_a)).reshape(-1, 3)
        if labels is not None and motions:
            flat = labels.reshape(-1)
            for lab, t in motions.items():
                sel = flat == lab
                pts[sel] = pts[sel] @ t[:3, :3].T + t[:3, 3]
        uv, _, seen = transforms.project_points(pts, c2w_b, k_b)
        flow = uv.reshape(h, w, 2) - k_a.pixel_centres()
        return flow, seen.reshape(h, w)
    pts = transforms.unproject(d, c2w_a, k_a).reshape(-1, 3)
    if labels is not None and motions:
        flat = labels.reshape(-1)
        for lab, t in motions.items():
            sel = flat == lab
            pts[sel] = pts[sel] @ t[:3, :3].T + t[:3, 3]
    uv, z = transforms.project(pts, c2w_b, k_b)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    flow = uv.reshape(h, w, 2) - np.stack([u, v], axis=-1)
    return flow, (z.reshape(h, w) > 1e-9)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample HxWxC `img` at continuous pixel coordinates (pixel centres at +0.5); returns values, inside."""
    h, w = img.shape[:2]
    fx, fy = x - 0.5, y - 0.5
    inside = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
    fx, fy = np.clip(fx, 0, w - 1), np.clip(fy, 0, h - 1)
    x0, y0 = (
        np.minimum(np.floor(fx).astype(int), w - 2).clip(0),
        np.minimum(np.floor(fy).astype(int), h - 2).clip(0),
    )
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    top = img[y0, x0] * (1 - ax) + img[y0, x1] * ax
    bottom = img[y1, x0] * (1 - ax) + img[y1, x1] * ax
    return top * (1 - ay) + bottom * ay, inside


def interior_mask(depth: np.ndarray, seg: np.ndarray | None, curvature: float = 0.02) -> np.ndarray:
    """Pixels inside a surface: finite depth, the same id as their 4 neighbours, and smooth inverse depth.

    On a plane 1/z is affine in pixel coordinates, so its second difference through a pixel (along x
    and along y) is zero however steep the plane is: grazing floors at low resolution stay in. A
    silhouette or a step puts a jump on one side only, which shows as a second difference beyond
    `curvature` times 1/z, and takes the pixel out (flow there mixes two surfaces). Image borders,
    which lack a neighbour, are out too.
    """
    ok = np.isfinite(depth) & (depth > 0)
    q = np.zeros(depth.shape)
    q[ok] = 1.0 / depth[ok].astype(np.float64)
    out = ok.copy()
    out[[0, -1], :] = False
    out[:, [0, -1]] = False
    for axis in (0, 1):
        before, after = np.roll(q, 1, axis=axis), np.roll(q, -1, axis=axis)
        out &= np.roll(ok, 1, axis=axis) & np.roll(ok, -1, axis=axis)
        out &= np.abs(before - 2.0 * q + after) <= curvature * q
        if seg is not None:
            out &= (np.roll(seg, 1, axis=axis) == seg) & (np.roll(seg, -1, axis=axis) == seg)
    return out


@dataclass
class PairJudgement:
    """How the checked pixels of one frame pair split (see `judge_pair`)."""

    checked: int
    """Interior pixels judged (objects without recorded poses left out)."""
    known: np.ndarray
    """End-point errors of the pixels whose motion is known (static segments and objects with poses);
    inf where the prediction left the next camera's front."""
    rigid: int
    """Of those, pixels on objects with recorded poses."""
    excluded: int
    """Interior pixels of objects listed without a pose (deforming, instanced): not judged."""


def judge_pair(
    err: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    posed: set[int] | frozenset[int],
    unjudged: set[int] | frozenset[int],
    static_tolerance: float,
) -> PairJudgement:
    """Split the `mask` pixels of a pair by what is known of their motion.

    `err` is |flow - predicted flow| per pixel (inf where the prediction left the next camera's front).
    Pixels of `unjudged` ids are left out; pixels of `posed` ids (objects with recorded poses, whose
    prediction includes their own motion) are all known; every other segment counts as static, and
    known, when its median error is under `static_tolerance` px, else as a moving object.
    """
    excl = mask & np.isin(labels, list(unjudged))
    checked = mask & ~excl
    rigid = checked & np.isin(labels, list(posed))
    known = rigid.copy()
    rest = checked & ~rigid
    for lab in np.unique(labels[rest]):
        seg = rest & (labels == lab)
        if np.median(err[seg]) < static_tolerance:
            known |= seg
    return PairJudgement(
        checked=int(checked.sum()), known=err[known], rigid=int(rigid.sum()), excluded=int(excl.sum())
    )


def check_consistency(
    seq: SequenceDataset,
    objects: ObjectPoses | None = None,
    max_epe: float = 0.5,
    static_tolerance: float = 1.0,
    min_static_fraction: float = 0.25,
    max_cycle_outliers: float = 0.5,
) -> Consistency:
    """Compare forward flow with depth moved by the poses (of the camera and, from `objects`, of rigid
    objects); check flow cycles.

    Judged per frame pair, so one bad flow file is caught, on interior surface pixels (`interior_mask`;
    the world background has no depth to move). A pixel's motion is predicted from the camera poses and,
    when its id has recorded matrices at both frames, the object's own motion; ids that `objects` lists
    without matrices (deforming, instanced) are not judged. Ids it does not list (or every id, without
    objects.json) are judged by segment: static when the median error is under `static_tolerance` px,
    else a moving object that does not count against the sequence. A pair fails when the known pixels
    (static segments and posed objects) miss by more than `max_epe` px on average, or make up less than
    `min_static_fraction` of the judged pixels (flow that disagrees everywhere, a camera cut), or when
    its forward-backward cycles miss by >1 px on more than `max_cycle_outliers` of the pixels.
    """
    has_seg = "segmentation" in seq.modalities()
    errs_known: list[np.ndarray] = []
    n_interior = n_checked = n_known = n_rigid = n_excluded = 0
    cycles: list[np.ndarray] = []
    bad: list[tuple[int, str]] = []
    nxt = seq.read("flow", 0)
    for i in range(len(seq) - 1):
        flow, nxt = nxt, seq.read("flow", i + 1)
        depth = seq.read("depth", i)
        seg = seq.read("segmentation", i) if has_seg else None
        labels = seg if seg is not None else np.zeros(depth.shape, np.uint32)
        motions = objects.motions(i, i + 1) if objects is not None and seg is not None else {}
        unjudged = (objects.ids - set(motions)) if objects is not None and seg is not None else set()
        mask = interior_mask(depth, seg)
        pinhole = transforms.lens_of(seq.meta).is_pinhole  # else the lens projects (camsim.lenses)
        pred, front = reprojection_flow(
            depth,
            transforms.pose(seq.meta, i),
            transforms.intrinsics(seq.meta, i) if pinhole else transforms.camera_of(seq.meta, i),
            transforms.pose(seq.meta, i + 1),
            transforms.intrinsics(seq.meta, i + 1) if pinhole else transforms.camera_of(seq.meta, i + 1),
            labels,
            motions,
        )
        err = np.where(front, np.linalg.norm(flow[..., :2] - pred, axis=-1), np.inf)
        pair = judge_pair(err, mask, labels, frozenset(motions), unjudged, static_tolerance)
        known = pair.known[np.isfinite(pair.known)]  # surfaces that left the camera's front disagree
        h, w = depth.shape
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        back, inside = bilinear(nxt[..., 2:4], u + flow[..., 0], v + flow[..., 1])
        cyc = np.linalg.norm(flow[..., :2] + back, axis=-1)[mask & inside]
        reasons = []
        if pair.checked and known.size < min_static_fraction * pair.checked:
            reasons.append(
                f"flow disagrees with depth and poses on {1 - known.size / pair.checked:.0%} of pixels"
            )
        elif known.size and known.mean() > max_epe:
            what = "static and posed surfaces" if pair.rigid else "static surfaces"
            reasons.append(f"end-point error {known.mean():.3f} px on {what} (limit {max_epe})")
        if cyc.size and (cyc > 1.0).mean() > max_cycle_outliers:
            reasons.append(f"forward-backward cycle misses by >1 px on {(cyc > 1.0).mean():.0%} of pixels")
        if reasons:
            bad.append((i, "; ".join(reasons)))
        errs_known.append(known)
        n_interior += int(mask.sum())
        n_checked += pair.checked
        n_known += known.size
        n_rigid += pair.rigid
        n_excluded += pair.excluded
        cycles.append(cyc)
    known_all = np.concatenate(errs_known) if errs_known else np.zeros(0)
    cyc_all = np.concatenate(cycles) if cycles else np.zeros(0)
    res = Consistency(
        pairs=len(seq) - 1,
        epe=float(known_all.mean()) if known_all.size else float("nan"),
        epe_median=float(np.median(known_all)) if known_all.size else float("nan"),
        static_fraction=n_known / n_checked if n_checked else 0.0,
        cycle_median=float(np.median(cyc_all)) if cyc_all.size else float("nan"),
        cycle_outliers=float((cyc_all > 1.0).mean()) if cyc_all.size else 0.0,
        ok=not bad,
        bad_pairs=bad,
        checked=n_checked,
        rigid_fraction=n_rigid / n_checked if n_checked else 0.0,
        excluded=n_excluded,
    )
    if n_interior == 0:
        res.reason = "no interior surface pixels"
    elif n_checked == 0:
        res.reason = "only objects without recorded poses (deforming or instanced) in view"
    elif bad:
        res.reason = f"{len(bad)} of {res.pairs} frame pairs inconsistent"
    return res
