"""Per-object annotations of a rendered frame, and the category (class) ids of a sequence's objects.

Pure functions of what the Blender service reports and of the segmentation; `Annotator` holds a sequence's
state (the category lookup, the geometry of objects whose surface does not change, the frames annotated).

What the service reports per frame (`RenderFrameReply.objects`, `FrameObjectsReply.objects`):
`{"clip": [clip_start, clip_end], "ids": {id: {"instances", "matrix_world", "bound_box", "geometry"}}}`
with Blender units; `geometry` is `{"vertices": [byte offset, count], "triangles": [byte offset, count]}` into
the frame's geometry file (float32 x, y, z in the object's own frame, then uint32 vertex indices), "cached"
(the object's geometry does not change and was sent before in this sequence) or None (its rendered surface
is not its mesh: hair, volumes, point clouds, true displacement, adaptive subdivision, or hidden from camera
rays). Ids the service does not list are not drawn at that frame.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from camsim import amodal
from camsim.errors import RenderFailure
from camsim.lens_remap import Remap, remap_plan
from camsim.lens_render import RenderWindow
from camsim.lens_render import camera as lens_camera
from camsim.lenses import Camera, Lens
from camsim.lenses import project as lens_project
from camsim.passes import SEGMENTATION, Pass
from camsim.raster import clip_depth, coverage, project

DEFAULT_CATEGORY = "object"
"""The category of an object with neither a `category` custom property nor a collection."""


# -------------------------------------------------------------------------------------------- categories


def category_table(objects: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, int]]:
    """`categories` ({"1": name}: ids 1..K over the sorted names, 0 = background) and each object id's
    category id, from the `category` the service found for each object (segmentation_objects)."""
    names = sorted({str(o.get("category") or DEFAULT_CATEGORY) for o in objects.values()})
    number = {name: k for k, name in enumerate(names, start=1)}
    of_object = {str(i): number[str(o.get("category") or DEFAULT_CATEGORY)] for i, o in objects.items()}
    return {str(k): name for name, k in number.items()}, of_object


def category_lookup(of_object: Mapping[str, int]) -> tuple[int, ...]:
    """Category id per segmentation id (index = id; 0 -> 0): the semantic map is lookup[segmentation]."""
    top = max((int(i) for i in of_object), default=0)
    table = [0] * (top + 1)
    for i, c in of_object.items():
        table[int(i)] = int(c)
    return tuple(table)


def semantic_map(segmentation: np.ndarray, lookup: tuple[int, ...]) -> np.ndarray:
    """(H,W) uint32 category ids of an (H,W) segmentation; an id the lookup lacks is an error (KeyError)."""
    seg = np.asarray(segmentation)
    table = np.asarray(lookup, dtype=np.uint32)
    if seg.size and int(seg.max()) >= len(table):
        raise KeyError(f"segmentation id {int(seg.max())} has no category")
    return table[seg]


# ------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Geometry:
    """An object's evaluated surface in its own frame (Blender units)."""

    vertices: np.ndarray
    """(V,3) float32."""
    triangles: np.ndarray
    """(T,3) vertex indices."""


def read_geometry(blob: bytes, spec: Mapping[str, Any]) -> Geometry:
    """One object's geometry out of a frame's geometry file (`spec`: the reply's `geometry` entry)."""
    (vo, nv), (to, nt) = spec["vertices"], spec["triangles"]
    verts = np.frombuffer(blob, dtype="<f4", count=3 * nv, offset=vo).reshape(nv, 3)
    tris = np.frombuffer(blob, dtype="<u4", count=3 * nt, offset=to).reshape(nt, 3)
    if nt and int(tris.max()) >= nv:
        raise RenderFailure("the Blender service sent a triangle with a vertex it did not send")
    return Geometry(verts, tris)


# ------------------------------------------------------------------------------------ frame annotations


def visible_extents(segmentation: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Pixel count per id (index = id) and, per id 1..max, its slices (None where absent)."""
    seg = np.asarray(segmentation)
    counts = np.bincount(seg.ravel().astype(np.int64), minlength=1)
    return counts, ndimage.find_objects(seg.astype(np.int64)) if seg.size else []


# Small products by hand: numpy hands `@` and `linalg.inv` to OpenBLAS, whose threads then spin for a while
# after each call, taking a core from Cycles (measured: 60 ms of CPU a frame for the few 4x4 and Nx3 products
# of a frame's annotations, 6 ms without them).


def transform(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(N,3) points through the affine 4x4 (or 3x4) `m`: m[:3, :3] p + m[:3, 3], float64."""
    p = np.asarray(points, dtype=np.float64)
    return p[:, 0:1] * m[:3, 0] + p[:, 1:2] * m[:3, 1] + p[:, 2:3] * m[:3, 2] + m[:3, 3]


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 4x4 product a b."""
    return (np.asarray(a, dtype=np.float64)[:, :, None] * np.asarray(b, dtype=np.float64)[None, :, :]).sum(
        axis=1
    )


def rigid_inverse(c2w: np.ndarray) -> np.ndarray:
    """The inverse of a 4x4 rotation-and-translation (transform_matrix: its rotation is orthonormal)."""
    r, t = c2w[:3, :3], c2w[:3, 3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -(r * t[:, None]).sum(axis=0)
    return out


def _box(rows: slice, cols: slice) -> list[int]:
    return [int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)]


def _matrix(m: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in m]


@dataclass(frozen=True)
class View:
    """The camera of one frame as the annotations need it (metres)."""

    w2c: np.ndarray
    """4x4 world-to-camera (OpenGL axes), translation in metres."""
    fx: float
    fy: float
    cx: float
    cy: float
    w: int
    h: int
    near: float
    """Planar clip distances, metres."""
    far: float

    @classmethod
    def of(cls, cam: Mapping[str, Any], clip: list[float], scale: float) -> View:
        """From a camera state (transform_matrix already in metres) and the service's clip (Blender units)."""
        c2w = np.asarray(cam["transform_matrix"], dtype=np.float64)
        return cls(rigid_inverse(c2w), float(cam["fl_x"]), float(cam["fl_y"]), float(cam["cx"]),
                   float(cam["cy"]), int(cam["w"]), int(cam["h"]), clip[0] * scale, clip[1] * scale)  # fmt: skip


@dataclass(frozen=True)
class Projection:
    """An object's amodal silhouette in a frame: the pixels whose centres its geometry covers with nothing in
    front of it."""

    count: int
    box: list[int] | None
    """[x0, y0, x1, y1] pixel edges of those pixels; None when there are none."""
    outside: bool
    """Part of the geometry lies outside the view (annotations' `truncated`)."""
    mask: np.ndarray | None = None
    """(y1 - y0, x1 - x0) bool: the pixels inside `box`."""


@dataclass(frozen=True)
class LensView:
    """What the annotations of a distorted frame need besides the window's pinhole `View`: where each distorted
    pixel takes its sample (the nearest window pixel, as the segmentation: lens_remap.remap_nearest), and which
    window pixel centres lie inside the frame."""

    camera: Camera
    """The frame's camera with its distortion."""
    row: np.ndarray
    """(h, w) window row of each distorted pixel's nearest sample."""
    col: np.ndarray
    """(h, w) its window column."""
    inside: np.ndarray
    """(window h, window w) bool: the window pixel centre's ray is in the lens model's valid radius and
    distorts into the frame."""
    row_span: np.ndarray
    """(h, 2) the least and greatest window row the distorted pixels of each frame row sample."""
    col_span: np.ndarray
    """(w, 2) the least and greatest window column the pixels of each frame column sample."""

    def candidates(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice]:
        """Frame rows and columns holding every distorted pixel whose sample lies in the window box [lo, hi)
        (x, y): a pixel's row samples rows within its row's span, and likewise for columns."""
        rows = np.flatnonzero((self.row_span[:, 0] < hi[1]) & (self.row_span[:, 1] >= lo[1]))
        cols = np.flatnonzero((self.col_span[:, 0] < hi[0]) & (self.col_span[:, 1] >= lo[0]))
        if not len(rows) or not len(cols):
            return slice(0, 0), slice(0, 0)
        return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)

    @classmethod
    def of(cls, camera: Camera, remap: Remap) -> LensView:
        win = remap.window
        row, col = np.divmod(remap.nearest, win.width)
        jj, ii = np.mgrid[0 : win.height, 0 : win.width]
        a = (ii + 0.5 + win.left - camera.cx) / camera.fl_x
        b = (jj + 0.5 + win.top - camera.cy) / camera.fl_y
        uv, ok = lens_project(np.stack([a, -b, -np.ones(a.shape)], -1), camera)
        inside = (
            ok & (uv[..., 0] >= 0) & (uv[..., 0] <= camera.w) & (uv[..., 1] >= 0) & (uv[..., 1] <= camera.h)
        )
        row_span = np.stack([row.min(axis=1), row.max(axis=1)], -1)
        col_span = np.stack([col.min(axis=0), col.max(axis=0)], -1)
        return cls(camera, row.astype(np.int32), col.astype(np.int32), inside, row_span, col_span)


def _cropped(mask: np.ndarray, lo: tuple[int, int]) -> tuple[int, list[int] | None, np.ndarray | None]:
    """Pixel count, box (frame pixel edges) and the mask cropped to it, of a mask whose (0, 0) is `lo`."""
    count = int(mask.sum())
    if not count:
        return 0, None, None
    rows, cols = ndimage.find_objects(mask.astype(np.int8))[0]
    box = [int(cols.start + lo[0]), int(rows.start + lo[1]), int(cols.stop + lo[0]), int(rows.stop + lo[1])]
    return count, box, mask[rows, cols]


def projected(geom: Geometry, to_camera: np.ndarray, view: View, lens: LensView | None = None) -> Projection:
    """The pixels whose centres the geometry covers with nothing in front of it, and whether any of it lies
    outside the view (beside or behind the frame, nearer than clip_start or farther than clip_end).
    `to_camera`: object frame (Blender units) -> camera frame (metres). With `lens` (a distortion), `view` is
    the render window's pinhole: the triangles are rasterised at its pixel centres and each distorted pixel
    takes the sample of its nearest window pixel, as the segmentation does; beside the frame then means a
    vertex whose image through the lens is outside the frame (or has none), a covered window pixel centre
    outside it, or geometry beyond the window."""
    if not len(geom.triangles):
        return Projection(0, None, False)
    pts = transform(geom.vertices, to_camera)
    used = np.zeros(len(pts), dtype=bool)
    used[geom.triangles.ravel()] = True
    p = pts[used]
    d = -p[:, 2]
    outside = bool(((d < view.near) | (d > view.far)).any())
    if not outside:
        if lens is None:
            uv = project(p, view.fx, view.fy, view.cx, view.cy)
            outside = bool(((uv < 0) | (uv > (view.w, view.h))).any())
        else:
            uv, ok = lens_project(p, lens.camera)
            outside = not bool(ok.all()) or bool(((uv < 0) | (uv > (lens.camera.w, lens.camera.h))).any())
    tris = clip_depth(pts[geom.triangles], view.near, view.far)
    if not len(tris):
        return Projection(0, None, outside)
    uv = project(tris, view.fx, view.fy, view.cx, view.cy)
    lo_f, hi_f = np.floor(uv.reshape(-1, 2).min(axis=0)), np.ceil(uv.reshape(-1, 2).max(axis=0))
    lo = np.clip(lo_f, 0, (view.w, view.h)).astype(int)
    hi = np.clip(hi_f, 0, (view.w, view.h)).astype(int)
    if lens is not None:
        outside |= bool((lo_f < 0).any() or (hi_f > (view.w, view.h)).any())
    if (hi <= lo).any():
        return Projection(0, None, outside)
    mask = coverage(uv - lo, int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    if lens is None:
        count, box, crop = _cropped(mask, (int(lo[0]), int(lo[1])))
        return Projection(count, box, outside, crop)
    outside |= bool((mask & ~lens.inside[lo[1] : hi[1], lo[0] : hi[0]]).any())
    rs, cs = lens.candidates(lo, hi)
    row, col = lens.row[rs, cs], lens.col[rs, cs]
    sel = (row >= lo[1]) & (row < hi[1]) & (col >= lo[0]) & (col < hi[0])
    part = np.zeros(row.shape, dtype=bool)
    part[sel] = mask[row[sel] - lo[1], col[sel] - lo[0]]
    count, box, crop = _cropped(part, (cs.start, rs.start))
    return Projection(count, box, outside, crop)


def annotate_frame(
    ids: list[int],
    reported: Mapping[str, Any],
    geometry: Mapping[int, Geometry | None],
    segmentation: np.ndarray,
    view: View,
    scale: float,
    lens: LensView | None = None,
    silhouettes: dict[int, tuple[list[int], np.ndarray]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every id's annotation at one frame (docs/FORMAT.md, objects.json). Pose, 3-D box and the projected
    quantities need the object drawn exactly once (else null); the projected ones also its geometry. `view`:
    the frame's pinhole camera, or with `lens` (a distortion) its render window's (the pose and 3-D box are in
    the camera frame either way). `silhouettes`, when given, gets each id's amodal box and mask in it."""
    counts, slices = visible_extents(segmentation)
    drawn = reported.get("ids", {})
    out: dict[str, dict[str, Any]] = {}
    scaling = np.diag([scale, scale, scale, 1.0])
    for i in ids:
        rec = drawn.get(str(i))
        n = int(rec["instances"]) if rec else 0
        visible = int(counts[i]) if i < len(counts) else 0
        sl = slices[i - 1] if visible and i - 1 < len(slices) else None
        entry: dict[str, Any] = {
            "instances": n,
            "pose_camera": None,
            "box_3d": None,
            "bbox_visible": _box(*sl) if sl is not None else None,
            "bbox_amodal": None,
            "visible_pixels": visible,
            "projected_pixels": 0 if n == 0 else None,
            "visibility": None,
            "truncated": False if n == 0 else None,
        }
        if n == 1 and rec is not None:
            m = np.asarray(rec["matrix_world"], dtype=np.float64)
            pose = m.copy()
            pose[:3, 3] *= scale
            pose = compose(view.w2c, pose)
            corners = np.asarray(rec["bound_box"], dtype=np.float64)
            world = transform(corners, m) * scale
            cam = transform(world, view.w2c)
            entry["pose_camera"] = _matrix(pose)
            entry["box_3d"] = {"world": _matrix(world), "camera": _matrix(cam)}
            geom = geometry.get(i)
            if geom is not None:
                pr = projected(geom, compose(view.w2c, compose(scaling, m)), view, lens)
                entry.update(projected_pixels=pr.count, bbox_amodal=pr.box, truncated=pr.outside,
                             visibility=visible / pr.count if pr.count else None)  # fmt: skip
                if silhouettes is not None and pr.box is not None and pr.mask is not None:
                    silhouettes[i] = (pr.box, pr.mask)
        out[str(i)] = entry
    return out


class Annotator:
    """A sequence's annotations, frame by frame: keeps the geometry the service sends once (objects whose
    surface does not change) and the annotations made. Frames are annotated in the order they were asked
    for (one writer thread), so geometry sent with a frame is there for the frames after it."""

    def __init__(
        self,
        ids: list[int],
        scale: float,
        lens: Lens | None = None,
        window: RenderWindow | None = None,
        amodal_root: Path | None = None,
    ) -> None:
        """`lens` and `window`: a distortion's lens and the pinhole window Cycles renders for it (None: the
        pinhole); `amodal_root`: the sequence folder to write each frame's amodal masks into (camsim.amodal),
        None for none."""
        if (lens is None) != (window is None) or (lens is not None and lens.is_fisheye):
            raise ValueError("annotations project through a pinhole or a distortion's render window")
        self.ids = sorted(ids)
        self.scale = scale
        self.lens = lens
        self.window = window
        self.amodal_root = amodal_root
        self.static: dict[int, Geometry] = {}
        self.frames: dict[int, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._lens_views: dict[tuple[float, ...], LensView] = {}

    def lens_view(self, cam: Mapping[str, Any]) -> LensView | None:
        """The distorted frame's sampling for a camera state (cached by its intrinsics); None: the pinhole."""
        if self.lens is None or self.window is None:
            return None
        key = tuple(float(cam[k]) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h"))
        with self._lock:
            if key not in self._lens_views:
                camera = lens_camera(cam, self.lens)
                self._lens_views[key] = LensView.of(camera, remap_plan(camera, self.window))
            return self._lens_views[key]

    def geometry_of(self, reported: Mapping[str, Any], blob: bytes) -> dict[int, Geometry | None]:
        """Each reported id's geometry at this frame: read from `blob`, or kept from an earlier frame."""
        out: dict[int, Geometry | None] = {}
        for key, rec in reported.get("ids", {}).items():
            i, spec = int(key), rec.get("geometry")
            if spec == "cached":
                if i not in self.static:
                    raise RenderFailure(f"the Blender service did not send the geometry of object {i}")
                out[i] = self.static[i]
            elif spec is None:
                out[i] = None
            else:
                out[i] = read_geometry(blob, spec)
                if spec.get("static"):
                    self.static[i] = out[i]
        return out

    def annotate(
        self,
        frame: int,
        reported: Mapping[str, Any] | None,
        geometry_file: Path,
        segmentation: np.ndarray,
        cam: Mapping[str, Any],
    ) -> None:
        """Annotate one frame from the service's report, its geometry file (removed once read) and the frame's
        segmentation."""
        if reported is None and not self.ids:  # a scene without objects: nothing to annotate
            reported = {"clip": [0.0, 0.0], "ids": {}}
        if reported is None:
            raise RenderFailure(f"the Blender service reported no objects for frame {frame}")
        blob = geometry_file.read_bytes() if geometry_file.is_file() else b""
        with contextlib.suppress(OSError):
            geometry_file.unlink()
        lens = self.lens_view(cam)
        rendered = cam if self.window is None else self.window.state(cam)
        view = View.of(rendered, reported["clip"], self.scale)
        with self._lock:
            geometry = self.geometry_of(reported, blob)
        silhouettes: dict[int, tuple[list[int], np.ndarray]] | None = {} if self.amodal_root else None
        self.frames[frame] = annotate_frame(
            self.ids, reported, geometry, segmentation, view, self.scale, lens, silhouettes
        )
        if self.amodal_root is not None and silhouettes is not None:
            amodal.write(self.amodal_root / amodal.relpath(frame), silhouettes)

    def converted(
        self, frame: int, reported: Mapping[str, Any] | None, geometry_file: Path, cam: Mapping[str, Any]
    ) -> Callable[[Mapping[Pass, np.ndarray]], None]:
        """What the frame writer calls with the frame's converted ground truth (layout.write_frame)."""

        def annotate(arrays: Mapping[Pass, np.ndarray]) -> None:
            self.annotate(frame, reported, geometry_file, arrays[SEGMENTATION], cam)

        return annotate
