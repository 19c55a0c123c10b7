"""An independent ground-truth oracle: ray-cast a .blend with the cameras a rendered sequence recorded.

Runs INSIDE a fresh Blender process (bpy + stdlib + numpy only; nothing from camsim):

    python tests/scenes/oracle_blender.py --blend F.blend --request REQ.json --out OUT.npz
    blender -b --factory-startup --python tests/scenes/oracle_blender.py -- --blend ... (same arguments)

REQ.json: {"scene": name or null, "w": W, "h": H, "frames": [f, ...] (the frames to cast),
           "cameras": {"f": {"c2w": 4x4 (Blender units), "fl_x", "fl_y", "cx", "cy"}, ...}}
`cameras` holds every frame the sequence recorded; frame f gets a forward flow only when f + 1 is there.

For each frame it evaluates the scene (stepping frame by frame from the scene's first frame, never
backwards, so unbaked simulations play as they would in a render), makes the viewport evaluation
equal the render's (visibility, modifiers, subdivision levels, particle amounts) so that
`Scene.ray_cast` sees what the render engine sees, and casts one ray per pixel centre:

  depth   planar camera depth of the hit (Blender units), inf where nothing is hit;
  names   index into `names` of the hit object's qualified name (`name`, or `name [library path]`
          for linked objects; an instance hit names the instanced object), -1 for no hit;
  flow    the hit surface point (barycentric on its loop triangle) carried to frame f + 1 by that
          frame's evaluated mesh and object matrix, projected with frame f + 1's recorded camera,
          minus the pixel centre; NaN for instances, changed topology or unresolvable hits. Where
          nothing is hit, the flow of a point at infinity (the ray rotated by the camera's rotation
          change, projected with the next intrinsics).

Rays start on the camera's near clipping plane and end on its far one (Cycles clips planar depth).
Objects with `visible_camera` off are passed through. When the file was saved for Eevee, faces of a
material with `use_backface_culling` seen from behind are passed through too (as Eevee draws them).

The npz also holds the oracle's own view of each frame's camera (active camera name, pose from
`matrix_world`, intrinsics from `Camera.view_frame`), to check what the sequence recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys

import bpy
import numpy as np
from mathutils import Vector

EEVEE_ENGINES = ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT")
MAX_PASS_THROUGH = 64  # hits skipped along one ray (culled faces, camera-invisible objects)


# ----------------------------------------------------------------------------- viewport == render


def _set(owner, attr, value) -> None:
    """Set a property where it differs; linked (read-only) data keeps its value."""
    try:
        if getattr(owner, attr) != value:
            setattr(owner, attr, value)
    except (AttributeError, TypeError, RuntimeError, ValueError):
        pass


def _layer_collections(lc):
    yield lc
    for child in lc.children:
        yield from _layer_collections(child)


def match_viewport_to_render(scene, view_layer) -> None:
    """Make the viewport depsgraph evaluate what a final render evaluates."""
    for coll in bpy.data.collections:
        _set(coll, "hide_viewport", coll.hide_render)
    for lc in _layer_collections(view_layer.layer_collection):
        _set(lc, "hide_viewport", False)  # the per-layer eye: viewport only (exclude applies to both)
    for obj in bpy.data.objects:
        _set(obj, "hide_viewport", obj.hide_render)
        _set(obj, "show_instancer_for_viewport", obj.show_instancer_for_render)
        if obj.display_type in ("BOUNDS", "WIRE"):
            _set(obj, "display_type", "TEXTURED")
        for mod in obj.modifiers:
            _set(mod, "show_viewport", mod.show_render)
            if mod.type in ("SUBSURF", "MULTIRES"):
                _set(mod, "levels", mod.render_levels)
        for psys in getattr(obj, "particle_systems", ()):
            part = psys.settings
            _set(part, "display_percentage", 100)
            _set(part, "child_percentage", part.rendered_child_count)
            _set(part, "display_method", "RENDER")
    for obj in view_layer.objects:
        with contextlib.suppress(RuntimeError, TypeError):
            obj.hide_set(False, view_layer=view_layer)
    for curve in bpy.data.curves:
        if getattr(curve, "render_resolution_u", 0):
            _set(curve, "resolution_u", curve.render_resolution_u)
        if getattr(curve, "render_resolution_v", 0):
            _set(curve, "resolution_v", curve.render_resolution_v)
    for mball in bpy.data.metaballs:
        _set(mball, "resolution", mball.render_resolution)
    render = scene.render
    if render.use_simplify:
        _set(render, "simplify_subdivision", render.simplify_subdivision_render)
        _set(render, "simplify_child_particles", render.simplify_child_particles_render)


# ----------------------------------------------------------------------------------------- meshes


def qualified_name(obj) -> str:
    obj = obj.original
    return f"{obj.name} [{obj.library.filepath}]" if obj.library is not None else obj.name


class MeshInfo:
    """An object's evaluated mesh at one frame, as arrays (local coordinates)."""

    def __init__(self, obj_eval):
        mesh = obj_eval.to_mesh()
        try:
            n = len(mesh.vertices)
            self.verts = np.empty(n * 3, dtype=np.float32)
            mesh.vertices.foreach_get("co", self.verts)
            self.verts = self.verts.reshape(n, 3).astype(np.float64)
            t = len(mesh.loop_triangles)
            self.tris = np.empty(t * 3, dtype=np.int32)
            mesh.loop_triangles.foreach_get("vertices", self.tris)
            self.tris = self.tris.reshape(t, 3)
            self.tri_poly = np.empty(t, dtype=np.int32)
            mesh.loop_triangles.foreach_get("polygon_index", self.tri_poly)
            p = len(mesh.polygons)
            self.poly_mat = np.empty(p, dtype=np.int32)
            mesh.polygons.foreach_get("material_index", self.poly_mat)
        finally:
            obj_eval.to_mesh_clear()
        self.culled = [
            bool(slot.material is not None and slot.material.use_backface_culling)
            for slot in obj_eval.material_slots
        ]
        self.by_poly: dict[int, np.ndarray] = {}

    def triangles_of(self, poly: int) -> np.ndarray:
        if poly not in self.by_poly:
            self.by_poly[poly] = np.nonzero(self.tri_poly == poly)[0]
        return self.by_poly[poly]

    def locate(self, poly: int, p_local: np.ndarray):
        """(triangle index, barycentric (3,), local geometric normal) of a point on polygon `poly`, or None."""
        if poly < 0 or poly >= len(self.poly_mat):
            return None
        best = None
        for ti in self.triangles_of(poly):
            a, b, c = self.verts[self.tris[ti]]
            v0, v1, v2 = b - a, c - a, p_local - a
            d00, d01, d11 = v0 @ v0, v0 @ v1, v1 @ v1
            d20, d21 = v2 @ v0, v2 @ v1
            den = d00 * d11 - d01 * d01
            if den <= 0:
                continue
            bv = (d11 * d20 - d01 * d21) / den
            bw = (d00 * d21 - d01 * d20) / den
            bary = np.array([1.0 - bv - bw, bv, bw])
            normal = np.cross(v0, v1)
            off = abs(v2 @ normal) / math.sqrt(normal @ normal)
            size = math.sqrt(max(d00, d11))
            score = bary.min()
            if off <= 1e-3 * size + 1e-6 and score >= -1e-3 and (best is None or score > best[3]):
                best = (ti, bary, normal, score)
        return None if best is None else best[:3]


# --------------------------------------------------------------------------------------- cameras


def oracle_camera(scene, w: int, h: int) -> dict:
    """The active camera as Blender reports it (pose from matrix_world, intrinsics from view_frame)."""
    cam = scene.camera
    m = np.array(cam.matrix_world, dtype=np.float64)
    m[:3, :3] /= np.linalg.norm(m[:3, :3], axis=0)
    corners = np.array([tuple(c) for c in cam.data.view_frame(scene=scene)], dtype=np.float64)
    depth = -corners[0, 2]
    xmin, xmax = corners[:, 0].min(), corners[:, 0].max()
    ymin, ymax = corners[:, 1].min(), corners[:, 1].max()
    fx = w * depth / (xmax - xmin)
    fy = h * depth / (ymax - ymin)
    return {
        "name": cam.name,
        "c2w": m,
        "K": np.array([fx, fy, -fx * xmin / depth, fy * ymax / depth]),
        "clip": (cam.data.clip_start, cam.data.clip_end),
    }


def _pixel_rays(cam: dict, w: int, h: int) -> np.ndarray:
    """(H, W, 3) camera-frame rays with z = -1 through the pixel centres."""
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.stack(
        [(u - cam["cx"]) / cam["fl_x"], -(v - cam["cy"]) / cam["fl_y"], -np.ones_like(u)], axis=-1
    )


def _project(points: np.ndarray, cam: dict) -> np.ndarray:
    c2w = np.asarray(cam["c2w"], dtype=np.float64)
    pc = (points - c2w[:3, 3]) @ c2w[:3, :3]
    z = -pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack(
            [cam["fl_x"] * pc[..., 0] / z + cam["cx"], -cam["fl_y"] * pc[..., 1] / z + cam["cy"]], -1
        )
    uv[~(z > 1e-9)] = np.nan
    return uv


# ----------------------------------------------------------------------------------------- casting


class Oracle:
    def __init__(self, scene, view_layer, w: int, h: int):
        self.scene = scene
        self.view_layer = view_layer
        self.w, self.h = w, h
        self.cull = scene.render.engine in EEVEE_ENGINES
        self.names: list[str] = []
        self.name_index: dict[str, int] = {}
        self.stats = {"culled": 0, "invisible": 0, "unresolved": 0, "instance_hits": 0, "topology_changed": 0}

    def _name(self, obj) -> int:
        q = qualified_name(obj)
        if q not in self.name_index:
            self.name_index[q] = len(self.names)
            self.names.append(q)
        return self.name_index[q]

    def cast(self, cam: dict, clip: tuple[float, float]):
        """Depth, name index and trackable hits of every pixel at the current frame."""
        dg = bpy.context.evaluated_depsgraph_get()
        direct, instanced = set(), set()
        for inst in dg.object_instances:
            (instanced if inst.is_instance else direct).add(inst.object.original.name_full)
        meshes: dict[str, MeshInfo | None] = {}

        def mesh_of(obj):
            key = obj.name_full
            if key not in meshes:
                try:
                    meshes[key] = MeshInfo(obj.evaluated_get(dg))
                except (RuntimeError, ReferenceError, AttributeError):
                    meshes[key] = None
            return meshes[key]

        c2w = np.asarray(cam["c2w"], dtype=np.float64)
        rot, origin0 = c2w[:3, :3], c2w[:3, 3]
        rays = _pixel_rays(cam, self.w, self.h) @ rot.T  # world rays, planar depth 1 per unit
        depth = np.full((self.h, self.w), np.inf)
        names = np.full((self.h, self.w), -1, dtype=np.int32)
        tracks: dict[str, list] = {}  # object -> [(row, col, triangle, bary)], with its matrix and mesh
        near, far = clip
        for row in range(self.h):
            for col in range(self.w):
                ray = rays[row, col]
                length = float(np.linalg.norm(ray))
                direction = Vector(ray / length)
                start = origin0 + ray * near
                origin = Vector(start)
                remaining = (far - near) * length
                for _ in range(MAX_PASS_THROUGH):
                    hit, loc, _n, poly, obj, matrix = self.scene.ray_cast(
                        dg, origin, direction, distance=remaining
                    )
                    if not hit:
                        break
                    mat = np.array(matrix, dtype=np.float64)
                    p_world = np.array(loc, dtype=np.float64)
                    info = mesh_of(obj)
                    where = None
                    if info is not None:
                        p_local = np.linalg.solve(mat, np.append(p_world, 1.0))[:3]
                        where = info.locate(poly, p_local)
                    skip = not obj.visible_camera
                    if skip:
                        self.stats["invisible"] += 1
                    elif self.cull and where is not None:
                        mi = int(info.poly_mat[poly])
                        if 0 <= mi < len(info.culled) and info.culled[mi]:
                            n_world = np.linalg.solve(mat[:3, :3].T, where[2])  # inverse-transpose
                            if n_world @ ray > 0:
                                skip = True
                                self.stats["culled"] += 1
                    if skip:
                        travelled = float(np.linalg.norm(p_world - start))
                        eps = 1e-5 * (1.0 + travelled)
                        origin = Vector(p_world + ray / length * eps)
                        remaining = (far - near) * length - travelled - eps
                        if remaining <= 0:
                            break
                        continue
                    depth[row, col] = -((p_world - origin0) @ rot[:, 2])
                    names[row, col] = self._name(obj)
                    key = obj.name_full
                    ob_eval = obj.evaluated_get(dg)
                    as_drawn = np.allclose(mat, np.array(ob_eval.matrix_world), atol=1e-6)
                    is_instance = key in instanced and not (key in direct and as_drawn)
                    if is_instance:
                        self.stats["instance_hits"] += 1
                    elif where is None:
                        self.stats["unresolved"] += 1
                    else:
                        entry = tracks.setdefault(key, [obj, info, []])
                        entry[2].append((row, col, where[0], where[1]))
                    break
        return depth, names, tracks

    def track(self, tracks: dict, cam0: dict, cam1: dict) -> np.ndarray:
        """Forward flow (H, W, 2) to the current frame (f + 1) for the hits `tracks` made at f."""
        dg = bpy.context.evaluated_depsgraph_get()
        flow = np.full((self.h, self.w, 2), np.nan)
        for obj, info0, hits in tracks.values():
            ob_eval = obj.evaluated_get(dg)
            info1 = MeshInfo(ob_eval)
            if info1.tris.shape != info0.tris.shape or not np.array_equal(info1.tris, info0.tris):
                self.stats["topology_changed"] += len(hits)
                continue
            rows = np.array([h[0] for h in hits])
            cols = np.array([h[1] for h in hits])
            tri = info1.tris[np.array([h[2] for h in hits])]  # (n, 3) vertex indices
            bary = np.array([h[3] for h in hits])  # (n, 3)
            local = np.einsum("nk,nkd->nd", bary, info1.verts[tri])
            m1 = np.array(ob_eval.matrix_world, dtype=np.float64)
            world = local @ m1[:3, :3].T + m1[:3, 3]
            uv = _project(world, cam1)
            flow[rows, cols] = uv - np.stack([cols + 0.5, rows + 0.5], -1)
        return flow

    def background_flow(self, cam0: dict, cam1: dict) -> np.ndarray:
        """(H, W, 2) flow of points at infinity from cam0 to cam1."""
        r0 = np.asarray(cam0["c2w"], dtype=np.float64)[:3, :3]
        rays = _pixel_rays(cam0, self.w, self.h) @ r0.T
        far_points = np.asarray(cam1["c2w"], dtype=np.float64)[:3, 3] + rays * 1e12
        uv = _project(far_points, cam1)
        u, v = np.meshgrid(np.arange(self.w) + 0.5, np.arange(self.h) + 0.5)
        return uv - np.stack([u, v], -1)


def _cam(entry: dict) -> dict:
    return {
        "c2w": np.asarray(entry["c2w"], dtype=np.float64),
        **{k: float(entry[k]) for k in ("fl_x", "fl_y", "cx", "cy")},
    }


def run(blend: str, request: dict, out: str) -> None:
    bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False, use_scripts=False)
    scene = bpy.data.scenes[request["scene"]] if request.get("scene") else bpy.context.scene
    view_layer = next((vl for vl in scene.view_layers if vl.use), scene.view_layers[0])
    window = bpy.context.window  # None in `blender -b`: the context override below is what counts
    if window is not None:
        window.scene = scene
        window.view_layer = view_layer
    with bpy.context.temp_override(scene=scene, view_layer=view_layer):
        _run(scene, view_layer, request, out)


def _run(scene, view_layer, request: dict, out: str) -> None:
    w, h = int(request["w"]), int(request["h"])
    scene.render.resolution_x, scene.render.resolution_y = w, h
    scene.render.resolution_percentage = 100
    match_viewport_to_render(scene, view_layer)

    frames = sorted(int(f) for f in request["frames"])
    cams = {int(k): _cam(v) for k, v in request["cameras"].items()}
    last = max(f + 1 if f + 1 in cams else f for f in frames)
    oracle = Oracle(scene, view_layer, w, h)
    n = len(frames)
    depth = np.full((n, h, w), np.inf)
    names = np.full((n, h, w), -1, dtype=np.int32)
    flow = np.full((n, h, w, 2), np.nan)
    cam_names, cam_k, cam_c2w = [], np.zeros((n, 4)), np.zeros((n, 4, 4))
    pending = None  # (frame, index, tracks, background mask) of the frame whose flow needs this frame
    for f in range(min(scene.frame_start, frames[0]), last + 1):  # step forward, one frame at a time
        scene.frame_set(f)
        if pending is not None and pending[0] == f - 1:
            _, i, tracks, sky = pending
            fl = oracle.track(tracks, cams[f - 1], cams[f])
            fl[sky] = oracle.background_flow(cams[f - 1], cams[f])[sky]
            flow[i] = fl
            pending = None
        if f in frames:
            i = frames.index(f)
            own = oracle_camera(scene, w, h)
            cam_names.append(own["name"])
            cam_k[i], cam_c2w[i] = own["K"], own["c2w"]
            d, nm, tracks = oracle.cast(cams[f], own["clip"])
            depth[i], names[i] = d, nm
            if f + 1 in cams:
                pending = (f, i, tracks, nm < 0)
    np.savez_compressed(
        out,
        frames=np.array(frames),
        depth=depth,
        names=names,
        flow=flow,
        name_list=np.array(json.dumps(oracle.names)),
        camera_names=np.array(json.dumps(cam_names)),
        camera_k=cam_k,
        camera_c2w=cam_c2w,
        stats=np.array(json.dumps(oracle.stats)),
        engine=np.array(scene.render.engine),
        metres_per_unit=np.array(scene.unit_settings.scale_length),
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="oracle_blender")
    parser.add_argument("--blend", required=True)
    parser.add_argument("--request", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.request) as fh:
        request = json.load(fh)
    run(args.blend, request, args.out)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:])
