"""The Blender side of a camsim worker. Runs INSIDE Blender (the `bpy` module or `blender -b --python`).

Standalone on purpose: it imports only bpy and the standard library, so it runs unchanged in an
installed Blender 3.4+ that knows nothing of camsim. It connects back to the host over an
authenticated `multiprocessing.connection` (UNIX socket or loopback TCP); the key arrives on stdin,
never on the command line. When stdin closes (the host exited, even by SIGKILL) it exits at once,
so a worker never outlives its host.

The messages are the dataclasses of protocol.py, loaded from this file's folder (the service runs as a
script; camsim itself need not be importable here). One handler per request type, listed in HANDLERS; no
reflection. The host computes the time scaling (frame range, time remapping) and sends the results.

One file of almost 1000 lines on purpose: an installed Blender runs it as a script, so everything it needs
beyond bpy and the standard library is here or in protocol.py beside it.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import math
import os
import re
import sys
import threading
import time
import traceback
from multiprocessing.connection import Client

import bpy


def _load_protocol():
    """protocol.py from this script's folder, as a module of its own name (dataclasses look it up)."""
    import importlib.util

    script = globals().get("__file__") or sys.argv[sys.argv.index("--python") + 1]
    path = os.path.join(os.path.dirname(os.path.abspath(script)), "protocol.py")
    if not os.path.isfile(path):
        raise SystemExit(f"[camsim-service] {path} is missing: service.py needs the protocol.py it came with")
    spec = importlib.util.spec_from_file_location("camsim_service_protocol", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


protocol = _load_protocol()

# Object types that can appear in a render and so get a segmentation id.
RENDERABLE_TYPES = {"MESH", "CURVE", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD", "CURVES", "GPENCIL"}
BACKGROUND_DEPTH = 1.0e9  # Cycles writes 1e10 for rays that hit nothing
GPU_ORDER = ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI")


class SceneProblem(Exception):
    """The scene cannot be used as asked (the user can fix it)."""


def log(msg: str) -> None:
    print(f"[camsim-service] {msg}", flush=True)


# ------------------------------------------------------------------------------------------ camera


def _normalized_c2w(matrix_world) -> list[list[float]]:
    """Camera-to-world without scale (Blender camera axes already are OpenGL's)."""
    m = [list(row) for row in matrix_world]
    for c in range(3):
        norm = math.sqrt(sum(m[r][c] ** 2 for r in range(3))) or 1.0
        for r in range(3):
            m[r][c] /= norm
    return [[float(v) for v in row] for row in m]


def camera_intrinsics(scene, cam_obj) -> dict[str, float]:
    """Pinhole intrinsics in pixels (top-left corner origin) for every sensor fit, pixel aspect and shift."""
    cam = cam_obj.data
    render = scene.render
    w = render.resolution_x * render.resolution_percentage / 100.0
    h = render.resolution_y * render.resolution_percentage / 100.0
    aspect_x, aspect_y = render.pixel_aspect_x, render.pixel_aspect_y
    fit = cam.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if aspect_x * w >= aspect_y * h else "VERTICAL"
        sensor = cam.sensor_width
    else:
        sensor = cam.sensor_width if fit == "HORIZONTAL" else cam.sensor_height
    pixel_aspect = aspect_y / aspect_x
    view_fac = w if fit == "HORIZONTAL" else pixel_aspect * h
    fx = cam.lens / sensor * view_fac
    fy = fx / pixel_aspect
    cx = w / 2.0 - cam.shift_x * view_fac
    cy = h / 2.0 + cam.shift_y * view_fac / pixel_aspect
    return {"fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": round(w), "h": round(h)}


def camera_state(scene, cam=None) -> dict:
    """The camera of a frame: intrinsics, pose (Blender units) and name. `cam`: that camera object
    instead of the active one (the same camera's pose next to a cut, for its flow)."""
    cam = cam if cam is not None else scene.camera
    if cam is None:
        raise SceneProblem(f"scene '{scene.name}' has no active camera at frame {scene.frame_current}")
    if cam.type != "CAMERA":
        raise SceneProblem(f"active camera '{cam.name}' is not a camera object")
    problem = camera_problem(cam)
    if problem:
        raise SceneProblem(problem)
    state = camera_intrinsics(scene, cam)
    if cam.data.type == "PANO":  # a fisheye camsim made (--render-config.lens); camera_problem refuses others
        state.update(fisheye_intrinsics(scene, cam))
    state["transform_matrix"] = _normalized_c2w(cam.matrix_world)
    state["camera"] = cam.name
    return state


def camera_problem(cam) -> str | None:
    """Why camsim refuses this camera object, or None."""
    if cam.data.type == "PERSP":
        return None
    if cam.data.type == "PANO" and cam.data.name in _FISHEYES:
        return None
    kind = {"ORTHO": "orthographic", "PANO": "panoramic"}.get(cam.data.type, cam.data.type.lower())
    return f"camera '{cam.name}' is {kind}; camsim renders perspective cameras"


# ------------------------------------------------------------------------------------------ lenses

_FISHEYES: set = set()  # names of the camera data camsim turned into fisheyes (--render-config.lens)
_PANORAMA = {
    "fisheye-equidistant": "FISHEYE_EQUIDISTANT",
    "fisheye-equisolid": "FISHEYE_EQUISOLID",
    "fisheye-polynomial": "FISHEYE_LENS_POLYNOMIAL",
}


def make_fisheyes(scene, lens: str, fov_degrees: float, polynomial=None) -> list[str]:
    """Turn every perspective camera into Cycles' fisheye `lens` seeing `fov_degrees` (the equisolid with the
    camera's focal length at this frame, the polynomial lens with the coefficients `polynomial` K0..K4); return
    what was changed (adjustments). Other cameras are left for camera_problem to refuse."""
    _FISHEYES.clear()
    if lens == "perspective":
        return []
    changed = []
    for obj in sorted((o for o in bpy.data.objects if o.type == "CAMERA"), key=lambda o: o.name):
        data = obj.data
        if data.type != "PERSP" or data.name in _FISHEYES:
            continue
        if scene.render.pixel_aspect_x != scene.render.pixel_aspect_y:
            raise SceneProblem(f"a fisheye needs square pixels; scene '{scene.name}' has non-square ones")
        data.type = "PANO"
        data.panorama_type = _PANORAMA[lens]
        data.fisheye_fov = math.radians(fov_degrees)
        data.fisheye_lens = data.lens
        if lens == "fisheye-polynomial":
            for i, k in enumerate(polynomial):
                setattr(data, f"fisheye_polynomial_k{i}", float(k))
        _FISHEYES.add(data.name)
        changed.append(obj.name)
    if not changed:
        return []
    return [f"cameras {', '.join(changed)} rendered as {lens} fisheyes of {fov_degrees:g} degrees"]


def fisheye_intrinsics(scene, cam_obj) -> dict[str, float]:
    """fl_x, fl_y, cx, cy of a fisheye in camsim.lenses' models (measured against Cycles 5.0: marker spheres).
    The equidistant image circle spans the frame (pixels per radian: width / fov across, height / fov down);
    the equisolid's focal length is fisheye_lens in pixels by the perspective rule (sensor fit), the polynomial
    lens's "focal length" pixels per millimetre of the sensor (the perspective rule for 1 mm). A panoramic
    camera's shift moves the image by shift_x x width and shift_y x height (a perspective one's by the larger
    side)."""
    data = cam_obj.data
    render = scene.render
    w = render.resolution_x * render.resolution_percentage / 100.0
    h = render.resolution_y * render.resolution_percentage / 100.0
    out = {"cx": w / 2.0 - data.shift_x * w, "cy": h / 2.0 + data.shift_y * h}
    if data.panorama_type == "FISHEYE_EQUIDISTANT":
        return {**out, "fl_x": w / data.fisheye_fov, "fl_y": h / data.fisheye_fov}
    scale = (1.0 if data.panorama_type == "FISHEYE_LENS_POLYNOMIAL" else data.fisheye_lens) / data.lens
    pinhole = camera_intrinsics(scene, cam_obj)
    return {**out, "fl_x": pinhole["fl_x"] * scale, "fl_y": pinhole["fl_y"] * scale}


_WINDOW_KEYS = ("resolution_x", "resolution_y", "resolution_percentage")
_WINDOW_CAMERA_KEYS = ("sensor_fit", "sensor_width", "sensor_height", "shift_x", "shift_y")


def _widen(scene, window: list[int]) -> tuple:
    """Make the scene camera render the pinhole window [left, top, width, height] of its frame (camsim.lens_render:
    the same focal length in pixels, pixel (i, j) = frame pixel (left + i, top + j)); return what to restore.
    Refused when the camera's animation or drivers undo it (an animated shift or sensor)."""
    cam_obj = scene.camera
    data, render = cam_obj.data, scene.render
    base = camera_intrinsics(scene, cam_obj)
    saved = ([getattr(render, k) for k in _WINDOW_KEYS], [getattr(data, k) for k in _WINDOW_CAMERA_KEYS])
    left, top, width, height = (int(v) for v in window)
    pixel_aspect = render.pixel_aspect_y / render.pixel_aspect_x
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = data.lens * width / base["fl_x"]
    data.shift_x = (width / 2.0 - (base["cx"] - left)) / width
    data.shift_y = (base["cy"] - top - height / 2.0) * pixel_aspect / width
    if data.animation_data is not None:  # does the camera's own animation (or a driver) undo the change?
        scene.frame_set(scene.frame_current)
    got = camera_intrinsics(scene, cam_obj)
    want = {"fl_x": base["fl_x"], "fl_y": base["fl_y"], "cx": base["cx"] - left, "cy": base["cy"] - top}
    if (got["w"], got["h"]) != (width, height) or any(abs(got[k] - v) > 1e-3 for k, v in want.items()):
        _narrow(scene, saved)
        raise SceneProblem(
            f"camera '{cam_obj.name}' cannot render the larger pinhole image lens distortion needs (wanted "
            f"{want} at {width}x{height}, got {got}): its animation or drivers set the lens shift or sensor"
        )
    return saved


def _narrow(scene, saved: tuple) -> None:
    """Undo `_widen`."""
    for key, value in zip(_WINDOW_KEYS, saved[0], strict=True):
        setattr(scene.render, key, value)
    for key, value in zip(_WINDOW_CAMERA_KEYS, saved[1], strict=True):
        setattr(scene.camera.data, key, value)


def _render(scene, window: list[int] | None) -> None:
    """One Cycles render of the scene camera, through the pinhole `window` when given (lens distortion). The
    render result keeps its size after the scene is set back, and is saved from there."""
    saved = _widen(scene, window) if window else None
    try:
        bpy.ops.render.render(write_still=False, scene=scene.name)
    finally:
        if saved is not None:
            _narrow(scene, saved)


def _marker_camera(markers: list[tuple[int, object]], ctime: float):
    """The camera that Blender's marker camera switching shows at `ctime` (BKE_scene_camera_switch_find:
    the bound marker at or before int(ctime), else the earliest bound marker)."""
    t = int(ctime)
    best = first = None
    for frame, cam in markers:
        if frame <= t and (best is None or frame > best[0]):
            best = (frame, cam)
        if first is None or frame < first[0]:
            first = (frame, cam)
    chosen = best or first
    return chosen[1] if chosen else None


def camera_cuts(scene) -> tuple[list[int], list]:
    """Frames (inside frame_start+1..frame_end) where timeline markers switch the active camera, and
    every camera object the range shows."""
    markers = [
        (m.frame, m.camera)
        for m in scene.timeline_markers
        if m.camera is not None and not m.camera.hide_render
    ]
    if not markers:
        return [], [scene.camera] if scene.camera is not None else []
    ratio = scene.render.frame_map_old / scene.render.frame_map_new
    cuts, used, previous = [], [], None
    for f in range(scene.frame_start, scene.frame_end + 1):
        cam = _marker_camera(markers, f * ratio)
        if cam is not None and cam not in used:
            used.append(cam)
        if previous is not None and cam is not previous:
            cuts.append(f)
        previous = cam
    return cuts, used


def rig_cameras(scene, names: list[str]) -> list:
    """The camera objects of a rig, in render order: those named, or every camera object of the scene
    sorted by name (["all"]); refused (SceneProblem) when one is missing, not a camera or not perspective."""
    if list(names) == ["all"]:
        cams = sorted((o for o in scene.objects if o.type == "CAMERA"), key=lambda o: o.name)
        if not cams:
            raise SceneProblem(f"scene '{scene.name}' has no camera objects (--render-config.cameras all)")
    else:
        known = sorted(o.name for o in scene.objects if o.type == "CAMERA")
        cams = []
        for name in names:
            obj = scene.objects.get(name)
            if obj is None or obj.type != "CAMERA":
                why = f"'{name}' is a {obj.type.lower()}, not a camera" if obj else f"no object '{name}'"
                raise SceneProblem(f"{why} in scene '{scene.name}' (cameras: {', '.join(known) or 'none'})")
            cams.append(obj)
    for cam in cams:
        problem = camera_problem(cam)
        if problem:
            raise SceneProblem(problem)
    return cams


def _use_rig(scene, rig: list) -> list[str]:
    """Render through the rig's cameras only: timeline markers' camera bindings are dropped (in memory), so
    no frame switches the camera; the scene camera becomes the rig's first. Returns the adjustment made."""
    bound = sorted({m.camera.name for m in scene.timeline_markers if m.camera is not None})
    for marker in scene.timeline_markers:
        marker.camera = None
    scene.camera = rig[0]
    if not bound:
        return []
    return [f"timeline markers' camera switches ({', '.join(bound)}) ignored: --render-config.cameras "
            "renders every frame through each rig camera"]  # fmt: skip


# ----------------------------------------------------------------------------------------- setup


def _setup_device(scene, device_type: str, gpu_index: int | None) -> str:
    """Pick the Cycles device. Falls back to the CPU (and says so) when the asked GPU is absent."""
    if device_type == "cpu":
        scene.cycles.device = "CPU"
        return "CPU"
    prefs = bpy.context.preferences.addons["cycles"].preferences
    backends = GPU_ORDER if device_type == "auto" else (device_type.upper(),)
    for backend in backends:
        try:
            prefs.compute_device_type = backend
            prefs.refresh_devices()
        except (TypeError, ValueError, RuntimeError):
            continue  # backend not compiled into this Blender
        gpus = [d for d in prefs.devices if d.type == backend]
        if not gpus:
            continue
        chosen = [gpus[gpu_index % len(gpus)]] if gpu_index is not None else gpus
        for d in prefs.devices:
            d.use = d in chosen
        scene.cycles.device = "GPU"
        return f"{backend}:" + ",".join(d.name for d in chosen)
    if device_type != "auto":
        log(f"WARNING: no {device_type.upper()} device found; falling back to the CPU")
    scene.cycles.device = "CPU"
    return "CPU"


VIEW_LAYER_PASSES = {
    "Depth": "use_pass_z",
    "Normal": "use_pass_normal",
    "Vector": "use_pass_vector",
    "Object Index": "use_pass_object_index",
    "Diffuse Color": "use_pass_diffuse_color",
}
"""Blender's view-layer switch of each pass the host may ask for (the names the render result gives them)."""


def _colour_management(scene) -> dict:
    """How Cycles' linear light became the RGB frames: the scene's own view and display settings."""
    view = scene.view_settings
    return {
        "display_device": str(scene.display_settings.display_device),
        "view_transform": str(view.view_transform),
        "look": str(view.look),
        "exposure": float(view.exposure),
        "gamma": float(view.gamma),
        "use_curve_mapping": bool(view.use_curve_mapping),
        "dither_intensity": float(scene.render.dither_intensity),
    }


def _has_denoiser() -> bool:
    """Some Blender builds (e.g. Debian's) lack OpenImageDenoise; render noisy rather than fail."""
    try:
        import _cycles

        ok = bool(getattr(_cycles, "with_openimagedenoise", True))
    except ImportError:
        ok = True
    if not ok:
        log("WARNING: this Blender has no OpenImageDenoise; rendering without denoising")
    return ok


def qualified_name(obj) -> str:
    """An object's name that is unique in the file: linked objects carry their library's path."""
    return obj.name if obj.library is None else f"{obj.name} [{obj.library.filepath}]"


def _node_references(tree, seen: set) -> tuple[list, list]:
    """Objects and collections that a (geometry) node tree can instance, nested groups included."""
    objects, collections = [], []
    if tree is None or tree in seen:
        return objects, collections
    seen.add(tree)
    for node in tree.nodes:
        if getattr(node, "node_tree", None) is not None:
            o, c = _node_references(node.node_tree, seen)
            objects += o
            collections += c
        for sock in node.inputs:
            value = getattr(sock, "default_value", None)
            if isinstance(value, bpy.types.Object):
                objects.append(value)
            elif isinstance(value, bpy.types.Collection):
                collections.append(value)
    return objects, collections


def _drawn_objects(scene) -> dict:
    """Every object that can put geometry into the render -> the objects that instance it.

    The scene's own objects, and what collection instances, particle systems and geometry-nodes
    modifiers instance (recursively, linked libraries included)."""
    found: dict = {}
    todo = [(o, None) for o in scene.objects]
    while todo:
        obj, by = todo.pop()
        first = obj not in found
        entry = found.setdefault(obj, [])
        if by is not None and by not in entry:
            entry.append(by)
        if not first:
            continue
        more: list = []
        if obj.instance_type == "COLLECTION" and obj.instance_collection is not None:
            more += obj.instance_collection.all_objects
        for mod in obj.modifiers:
            if mod.type == "PARTICLE_SYSTEM":
                ps = mod.particle_system.settings
                if ps.instance_object is not None:
                    more.append(ps.instance_object)
                if ps.instance_collection is not None:
                    more += ps.instance_collection.all_objects
            elif mod.type == "NODES":
                objs, cols = _node_references(mod.node_group, set())
                for key in mod.keys():  # noqa: SIM118 (ID properties: the modifier's own inputs)
                    value = mod.get(key)
                    if isinstance(value, bpy.types.Object):
                        objs.append(value)
                    elif isinstance(value, bpy.types.Collection):
                        cols.append(value)
                more += objs
                for col in cols:
                    more += col.all_objects
        todo += [(o, obj) for o in more]
    return found


def _assign_ids(scene) -> tuple[dict[int, str], dict[int, dict], dict[int, object]]:
    """Stable ids: every object that can be drawn, sorted by qualified name, gets 1, 2, ...

    Instances (collection, particle, geometry nodes) draw their object, so they carry its id; linked
    objects are told apart from local ones of the same name by their library."""
    drawn = _drawn_objects(scene)
    objs = sorted((o for o in drawn if o.type in RENDERABLE_TYPES), key=qualified_name)
    if len(objs) > 32767:
        raise SceneProblem(f"scene has {len(objs)} objects; segmentation supports 32767")
    ids, described, by_id = {}, {}, {}
    for i, obj in enumerate(objs, start=1):
        by_id[i] = obj
        obj.pass_index = i  # also on linked objects: only in memory, never saved
        ids[i] = qualified_name(obj)
        described[i] = {
            "name": obj.name,
            "library": obj.library.filepath if obj.library else None,
            "type": obj.type,
            "instanced_by": sorted(qualified_name(o) for o in drawn[obj]),
        }
    return ids, described, by_id


# Modifiers that do not move a mesh's surface over time: an object with only these is rigid.
STATIC_MODIFIERS = {
    "ARRAY", "BEVEL", "DECIMATE", "EDGE_SPLIT", "MIRROR", "MULTIRES", "REMESH", "SCREW", "SOLIDIFY",
    "SUBSURF", "TRIANGULATE", "WEIGHTED_NORMAL", "WELD", "WIREFRAME", "SKIN", "NORMAL_EDIT", "UV_PROJECT",
    "UV_WARP", "VERTEX_WEIGHT_EDIT", "VERTEX_WEIGHT_MIX", "VERTEX_WEIGHT_PROXIMITY", "DATA_TRANSFER",
}  # fmt: skip


def _animated_paths(idblock) -> list[str]:
    """Data paths that an ID's action (its NLA strips' too) and drivers animate."""
    ad = getattr(idblock, "animation_data", None)
    if ad is None:
        return []
    paths = [d.data_path for d in ad.drivers]
    actions = [ad.action, *(s.action for t in ad.nla_tracks for s in t.strips)]
    for action in (a for a in actions if a is not None):
        try:  # Blender 4.4+: layered actions
            bags = [bag for layer in action.layers for strip in layer.strips for bag in strip.channelbags]
            curves = [fc for bag in bags for fc in bag.fcurves]
        except AttributeError:
            curves = list(action.fcurves)
        paths += [fc.data_path for fc in curves]
    return paths


# Modifier settings naming another object whose motion relative to this one reshapes the surface.
MODIFIER_OBJECTS = {"ARRAY": ("offset_object", "start_cap", "end_cap"), "MIRROR": ("mirror_object",),
                    "SCREW": ("object",)}  # fmt: skip


def _is_rigid(obj) -> bool:
    """Its surface moves only with its object matrix (no shape keys, armatures, simulations, nodes, animated
    geometry data or modifier settings, modifiers following other objects, metaballs...)."""
    data = getattr(obj, "data", None)
    if getattr(data, "shape_keys", None) is not None or obj.type == "META":  # metaballs melt into one surface
        return False
    if obj.parent is not None and obj.parent_type in ("ARMATURE", "LATTICE"):  # deformed by its parent
        return False
    if _animated_paths(data) or any(p.startswith("modifiers[") for p in _animated_paths(obj)):
        return False
    if any(getattr(data, a, None) is not None for a in ("bevel_object", "taper_object")):  # curves
        return False
    return all(
        m.type in STATIC_MODIFIERS and not any(getattr(m, a, None) for a in MODIFIER_OBJECTS.get(m.type, ()))
        for m in obj.modifiers
    )


def _draws(scene) -> tuple[set, set]:
    """The objects drawn at the current frame, and those of them drawn through an instance of another object
    (collection, particles, geometry nodes, vertex/face instancing): such a draw has the instancer's matrix,
    not the object's own matrix_world. The mesh a curve, text, surface or metaball object evaluates to comes
    as an instance of that object itself: a draw as itself."""
    drawn: set = set()
    instanced: set = set()
    override = getattr(bpy.context, "temp_override", None)  # the rendered scene, not the window's
    layer = _SCENE_LAYER[0] if _SCENE_LAYER else scene.view_layers[0]
    with override(scene=scene, view_layer=layer) if override else contextlib.nullcontext():
        for inst in bpy.context.evaluated_depsgraph_get().object_instances:
            obj = inst.object.original
            drawn.add(obj)
            if inst.is_instance and (inst.parent is None or inst.parent.original != obj):
                instanced.add(obj)
    return drawn, instanced


# ------------------------------------------------------------------------------------------ labels
# Categories, and what the host needs to annotate each object per frame (camsim.annotations).

MESH_LIKE = {"MESH", "CURVE", "SURFACE", "META", "FONT"}  # to_mesh() is the surface Cycles renders
_ID_OF: dict = {}  # object -> id, of the open scene
_UNPROJECTABLE: dict = {}  # id -> why its rendered surface is not its evaluated mesh
_STATIC_GEOMETRY: set = set()  # ids whose evaluated geometry does not change over the sequence
_SENT: set = set()  # of those, the ids whose geometry the host has (reset per sequence by set_timing)


def _deforms(obj) -> bool:
    """Its surface can change in its own frame: shape keys, armature or lattice parenting, or a modifier
    outside STATIC_MODIFIERS (armature, hook, lattice, simulations, geometry nodes, ...)."""
    if getattr(getattr(obj, "data", None), "shape_keys", None) is not None:
        return True
    if obj.parent is not None and obj.parent_type in ("ARMATURE", "LATTICE"):
        return True
    return not all(m.type in STATIC_MODIFIERS for m in obj.modifiers)


def _category(obj, masters: set, warnings: list[str]) -> str:
    """The custom property `category` (a string) of the object, else of its data; else the first collection
    it is linked to (not a scene's master collection); else "object"."""
    for owner in (obj, getattr(obj, "data", None)):
        value = owner.get("category") if owner is not None and hasattr(owner, "get") else None
        if isinstance(value, str) and value:
            return value
        if value is not None:
            warnings.append(f"object '{obj.name}': custom property 'category' is not a text ({value!r})")
    for coll in obj.users_collection:
        if coll not in masters:
            return coll.name
    return "object"


def _label_objects(by_id: dict, described: dict) -> list[str]:
    """Add `category` and `deforming` to each id's description; the warnings about category properties."""
    masters = {s.collection for s in bpy.data.scenes}
    warnings: list[str] = []
    for i, obj in by_id.items():
        described[i]["category"] = _category(obj, masters, warnings)
        described[i]["deforming"] = _deforms(obj)
    _ID_OF.clear()
    _ID_OF.update({obj: i for i, obj in by_id.items()})
    return warnings


def _set(owner, attr: str, value) -> None:
    """Set an attribute where Blender allows it (linked data may refuse)."""
    if getattr(owner, attr, value) != value:
        with contextlib.suppress(AttributeError, TypeError, ValueError, RuntimeError):
            setattr(owner, attr, value)


def _viewport_as_render(scene, layer) -> None:
    """Make the viewport evaluation, which the annotations read (the render builds its own), show what the
    render shows: render visibility, modifiers and subdivision levels, particle amounts, curve and metaball
    resolutions, simplify. Only in memory; the render itself is unchanged."""
    render = scene.render
    _set(render, "simplify_subdivision", render.simplify_subdivision_render)
    _set(render, "simplify_child_particles", render.simplify_child_particles_render)
    for coll in bpy.data.collections:
        _set(coll, "hide_viewport", coll.hide_render)
    todo = [layer.layer_collection]
    while todo:
        lc = todo.pop()
        _set(lc, "hide_viewport", False)
        todo += list(lc.children)
    for obj in bpy.data.objects:
        _set(obj, "hide_viewport", obj.hide_render)
        _set(obj, "show_instancer_for_viewport", obj.show_instancer_for_render)
        with contextlib.suppress(RuntimeError):  # raised for objects outside the view layer
            if obj.hide_get(view_layer=layer):  # hidden in the viewport only (the eye): rendered
                obj.hide_set(False, view_layer=layer)
        for mod in obj.modifiers:
            _set(mod, "show_viewport", mod.show_render)
            if mod.type in ("SUBSURF", "MULTIRES"):
                _set(mod, "levels", mod.render_levels)
            elif mod.type == "OCEAN":
                _set(mod, "viewport_resolution", mod.resolution)
    for ps in bpy.data.particles:
        _set(ps, "display_percentage", 100)
        _set(ps, "child_percent", ps.rendered_child_count)
    for cu in bpy.data.curves:
        for axis in ("u", "v"):
            if getattr(cu, f"render_resolution_{axis}", 0):
                _set(cu, f"resolution_{axis}", getattr(cu, f"render_resolution_{axis}"))
    for mb in bpy.data.metaballs:
        if mb.render_resolution:
            _set(mb, "resolution", mb.render_resolution)


def _uses_node(tree, idname: str, seen: set) -> bool:
    if tree is None or tree in seen:
        return False
    seen.add(tree)
    return any(n.bl_idname == idname or _uses_node(getattr(n, "node_tree", None), idname, seen)
               for n in tree.nodes)  # fmt: skip


def _displaced(mat) -> bool:
    """Cycles moves the surface of this material (true displacement), so its mesh is not what renders."""
    if mat is None or mat.node_tree is None:
        return False
    method = getattr(mat, "displacement_method", None)  # Blender 4.1+; before: in the Cycles settings
    method = method or getattr(getattr(mat, "cycles", None), "displacement_method", "BUMP")
    if method == "BUMP":
        return False
    return any(n.bl_idname == "ShaderNodeOutputMaterial" and n.inputs["Displacement"].is_linked
               for n in mat.node_tree.nodes)  # fmt: skip


def _unprojectable(obj) -> str | None:
    """Why the surface Cycles renders for `obj` is not the mesh of its evaluated geometry, or None."""
    if obj.type not in MESH_LIKE:
        return f"a {obj.type.lower()} object"
    if not getattr(obj, "visible_camera", True):
        return "hidden from camera rays"
    if getattr(getattr(obj, "cycles", None), "use_adaptive_subdivision", False):  # before Blender 4.5
        return "adaptive subdivision"
    for mod in obj.modifiers:
        settings = mod.particle_system.settings if mod.type == "PARTICLE_SYSTEM" else None
        if settings is not None and settings.type == "HAIR" and settings.render_type == "PATH":
            return "hair particles"
        if getattr(mod, "use_adaptive_subdivision", False):
            return "adaptive subdivision"
        if mod.type == "NODES" and _uses_node(mod.node_group, "GeometryNodeIsViewport", set()):
            return "geometry nodes that ask 'Is Viewport'"
    if any(_displaced(slot.material) for slot in obj.material_slots):
        return "true displacement"
    return None


def _prepare_labels(scene, layer, annotations: bool) -> None:
    """Per scene, when annotations are asked for: the viewport evaluated as the render, and what cannot be
    projected. Per sequence (set_timing) the static geometry is found again."""
    _UNPROJECTABLE.clear()
    _STATIC_GEOMETRY.clear()
    _SENT.clear()
    if not annotations:
        return
    _viewport_as_render(scene, layer)
    for obj, i in _ID_OF.items():
        why = _unprojectable(obj)
        if why:
            _UNPROJECTABLE[i] = why


def _find_static_geometry() -> None:
    _SENT.clear()
    _STATIC_GEOMETRY.clear()
    _STATIC_GEOMETRY.update(
        i for obj, i in _ID_OF.items() if obj.type == "MESH" and _is_rigid(obj) and not _deforms(obj)
    )


def _triangles(ev) -> tuple[bytes, int, bytes, int] | None:
    """Vertices (float32 x, y, z in the object's frame) and triangles (int32 indices) of an evaluated object."""
    if ev.type not in MESH_LIKE:
        return None
    try:
        mesh = ev.to_mesh()
    except RuntimeError:
        return None
    if mesh is None:
        return None
    try:
        mesh.calc_loop_triangles()
        nv, nt = len(mesh.vertices), len(mesh.loop_triangles)
        co = array.array("f", bytes(12 * nv))
        mesh.vertices.foreach_get("co", co)
        tri = array.array("i", bytes(12 * nt))
        mesh.loop_triangles.foreach_get("vertices", tri)
    finally:
        ev.to_mesh_clear()
    return co.tobytes(), nv, tri.tobytes(), nt


def frame_objects(scene, path: str) -> dict:
    """What the host annotates each object with at the current frame (camsim.annotations): per id drawn,
    how many times, the first draw's matrix and evaluated bound_box, and its geometry, written to `path`."""
    found: dict = {}
    chunks: list[bytes] = []
    size = 0
    override = getattr(bpy.context, "temp_override", None)
    layer = _SCENE_LAYER[0] if _SCENE_LAYER else scene.view_layers[0]
    with override(scene=scene, view_layer=layer) if override else contextlib.nullcontext():
        for inst in bpy.context.evaluated_depsgraph_get().object_instances:
            i = _ID_OF.get(inst.object.original)
            if i is None:
                continue
            rec = found.get(i)
            if rec is not None:
                rec["instances"] += 1
                continue
            ev = inst.object
            rec = found[i] = {"instances": 1, "matrix_world": _matrix(inst.matrix_world),
                              "bound_box": [[float(v) for v in c] for c in ev.bound_box], "geometry": None}  # fmt: skip
            if i in _UNPROJECTABLE:
                continue
            if i in _SENT:
                rec["geometry"] = "cached"
                continue
            geom = _triangles(ev)
            if geom is None:
                continue
            verts, nv, tris, nt = geom
            rec["geometry"] = {"vertices": [size, nv], "triangles": [size + len(verts), nt]}
            chunks += [verts, tris]
            size += len(verts) + len(tris)
            if i in _STATIC_GEOMETRY and not inst.is_instance:
                rec["geometry"]["static"] = True
                _SENT.add(i)
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
    cam = scene.camera.data
    clip = [float(cam.clip_start), float(cam.clip_end)]
    return {"clip": clip, "ids": {str(i): found[i] for i in sorted(found)}}


# ----------------------------------------------------------------------------------- simulations


def _simulations(scene) -> list[dict]:
    """Every point-cache simulation and simulation zone of the scene: what it is, whether it is baked,
    and the frame it starts from. Blender advances these only when frames are stepped one by one."""
    sims = []

    def add(kind: str, owner: str, cache) -> None:
        sims.append({"kind": kind, "owner": owner, "baked": bool(getattr(cache, "is_baked", False)),
                     "frame_start": int(getattr(cache, "frame_start", scene.frame_start))})  # fmt: skip

    rbw = scene.rigidbody_world
    if rbw is not None and rbw.enabled and rbw.collection is not None:
        add("rigid body", rbw.collection.name, rbw.point_cache)
    for obj in scene.objects:
        for mod in obj.modifiers:
            if mod.type in ("CLOTH", "SOFT_BODY"):
                add(mod.type.lower().replace("_", " "), obj.name, mod.point_cache)
            elif mod.type == "PARTICLE_SYSTEM":
                psys = mod.particle_system
                if psys.settings.type == "EMITTER" or psys.use_hair_dynamics:
                    add("particles", obj.name, psys.point_cache)
            elif mod.type == "DYNAMIC_PAINT" and mod.canvas_settings is not None:
                for surface in mod.canvas_settings.canvas_surfaces:
                    add("dynamic paint", obj.name, surface.point_cache)
            elif mod.type == "FLUID" and mod.fluid_type == "DOMAIN":
                d = mod.domain_settings
                sims.append({"kind": "fluid", "owner": obj.name, "baked": bool(getattr(d, "has_cache_baked_any", False)),
                             "frame_start": int(d.cache_frame_start)})  # fmt: skip
            elif (
                mod.type == "NODES"
                and mod.node_group is not None
                and _has_simulation_zone(mod.node_group, set())
            ):
                sims.append({"kind": "geometry nodes simulation", "owner": obj.name, "baked": False,
                             "frame_start": scene.frame_start})  # fmt: skip
    return sims


def _has_simulation_zone(tree, seen: set) -> bool:
    if tree in seen:
        return False
    seen.add(tree)
    for node in tree.nodes:
        if node.bl_idname == "GeometryNodeSimulationOutput":
            return True
        sub = getattr(node, "node_tree", None)
        if sub is not None and _has_simulation_zone(sub, seen):
            return True
    return False


class _Stepper:
    """Frame changes that keep simulations right: an unbaked simulation is advanced by stepping every
    frame from its start (Blender keeps the stepped frames in memory, so going back is exact); a frame
    past the last stepped one is reached by stepping on, never by jumping."""

    def __init__(self) -> None:
        self.start: int | None = None  # first frame to step from; None: nothing to step
        self.reached: int | None = None
        self.steps = 0
        self.seconds = 0.0

    def reset(self, start: int | None) -> None:
        self.start, self.reached, self.steps, self.seconds = start, None, 0, 0.0

    def go(self, scene, frame: int) -> None:
        frame = int(frame)
        if self.start is not None and frame > self.start:
            first = self.start if self.reached is None else self.reached + 1
            if first <= frame:
                t0 = time.perf_counter()
                for f in range(first, frame):
                    scene.frame_set(f)
                self.steps += frame - first
                self.seconds += time.perf_counter() - t0
                self.reached = frame
        scene.frame_set(frame)


STEPPER = _Stepper()


# -------------------------------------------------------------------------------------- warnings


def _missing_files() -> list[str]:
    """Libraries, images and caches that the file points to but that are not on disk."""
    out = []
    for lib in bpy.data.libraries:
        if not lib.packed_file and not os.path.exists(bpy.path.abspath(lib.filepath, library=lib.parent)):
            out.append(f"missing library {lib.filepath}: its objects and materials are not rendered")
    missing_ids = [
        i for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.collections)
        for i in coll if getattr(i, "is_missing", False)
    ]  # fmt: skip
    if missing_ids:
        names = ", ".join(sorted(i.name for i in missing_ids)[:5])
        out.append(f"{len(missing_ids)} linked data-blocks are missing ({names})")
    for img in bpy.data.images:
        if img.users == 0 or img.packed_file or img.source not in ("FILE", "SEQUENCE", "TILED", "MOVIE"):
            continue
        path = bpy.path.abspath(img.filepath, library=img.library)
        if "<UDIM>" in path or img.source in ("SEQUENCE", "TILED"):
            continue  # file patterns: not checked here
        if not os.path.exists(path):
            out.append(f"missing texture '{img.name}' ({img.filepath}): rendered magenta")
    for cache in getattr(bpy.data, "cache_files", ()):
        if not os.path.exists(bpy.path.abspath(cache.filepath, library=cache.library)):
            out.append(f"missing cache file {cache.filepath}")
    for vol in getattr(bpy.data, "volumes", ()):
        if (
            vol.users
            and not vol.packed_file
            and not os.path.exists(bpy.path.abspath(vol.filepath, library=vol.library))
        ):
            out.append(f"missing volume file {vol.filepath}")
    return out


def _emulate_backface_culling(layer) -> list[str]:
    """Eevee hides the back faces of materials with backface culling; Cycles ignores the setting. Make
    those back faces transparent to camera rays (shadows unchanged, as in Eevee)."""
    done = []
    for mat in bpy.data.materials:
        if not getattr(mat, "use_backface_culling", False) or mat.node_tree is None:
            continue
        tree = mat.node_tree
        outputs = [
            n
            for n in tree.nodes
            if n.bl_idname == "ShaderNodeOutputMaterial" and n.target in ("ALL", "CYCLES")
        ]
        out = next((n for n in outputs if n.is_active_output), outputs[0] if outputs else None)
        if out is None or not out.inputs["Surface"].is_linked:
            continue
        try:
            _cull_back_faces(tree, out)
        except RuntimeError as exc:  # e.g. a material whose nodes cannot be edited
            raise SceneProblem(
                f"cannot reproduce Eevee backface culling of material '{mat.name}': {exc}"
            ) from None
        done.append(mat.name)
    if done and layer.pass_alpha_threshold <= 0.0:
        layer.pass_alpha_threshold = 0.5  # ground truth comes from the surface behind a culled face
    return done


def _cull_back_faces(tree, out) -> None:
    """Mix the material's surface with a transparent BSDF where a camera ray meets a back face."""
    source = out.inputs["Surface"].links[0].from_socket
    geometry = tree.nodes.new("ShaderNodeNewGeometry")
    path = tree.nodes.new("ShaderNodeLightPath")
    both = tree.nodes.new("ShaderNodeMath")
    both.operation = "MULTIPLY"
    clear = tree.nodes.new("ShaderNodeBsdfTransparent")
    mix = tree.nodes.new("ShaderNodeMixShader")
    tree.links.new(geometry.outputs["Backfacing"], both.inputs[0])
    tree.links.new(path.outputs["Is Camera Ray"], both.inputs[1])
    tree.links.new(both.outputs[0], mix.inputs["Fac"])
    tree.links.new(source, mix.inputs[1])
    tree.links.new(clear.outputs[0], mix.inputs[2])
    tree.links.new(mix.outputs[0], out.inputs["Surface"])


def _engine_notes(scene, engine: str) -> list[str]:
    """What Cycles renders differently from the engine the scene was made for (ground truth unaffected)."""
    notes = []
    eevee = getattr(scene, "eevee", None)
    if engine.startswith("BLENDER_EEVEE") and eevee is not None:
        for attr, what in (("use_bloom", "bloom"), ("use_ssr", "screen-space reflections"),
                           ("use_gtao", "ambient occlusion"), ("use_motion_blur", "motion blur")):  # fmt: skip
            if getattr(eevee, attr, False):
                notes.append(f"Eevee {what} is not reproduced by Cycles")
    blended = [
        m.name for m in bpy.data.materials if getattr(m, "blend_method", "OPAQUE") == "BLEND" and m.users
    ]
    if blended:
        notes.append(
            f"{len(blended)} materials use Eevee alpha blending; Cycles renders their alpha physically"
        )
    if any(o.type == "LIGHT_PROBE" for o in scene.objects):
        notes.append("light probes are Eevee-only and ignored by Cycles")
    return notes


def _unbind_camera(scene) -> None:
    cam = scene.camera
    if cam is None:
        return
    scene.frame_set(scene.frame_start)
    world = cam.matrix_world.copy()
    cam.animation_data_clear()
    for c in list(cam.constraints):
        cam.constraints.remove(c)
    cam.parent = None
    cam.matrix_world = world


def _freeze_animations(scene, rig: list = ()) -> None:
    """Stop every animation but the camera's, or the rig cameras' (a static scene seen by moving cameras)."""
    keep = set()
    for cam in rig or [scene.camera]:
        while cam is not None:
            keep.add(cam.name)
            cam = cam.parent
    for obj in scene.objects:
        if obj.name in keep:
            continue
        if obj.animation_data is not None:
            obj.animation_data_clear()
        data = getattr(obj, "data", None)
        if data is not None and getattr(data, "animation_data", None) is not None:
            data.animation_data_clear()
        shape_keys = getattr(data, "shape_keys", None)
        if shape_keys is not None and shape_keys.animation_data is not None:
            shape_keys.animation_data_clear()


def _open(path: str, autoexec: bool) -> None:
    _FISHEYES.clear()  # the cameras camsim made fisheyes were the last file's
    bpy.context.preferences.filepaths.use_scripts_auto_execute = bool(autoexec)
    try:
        bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=bool(autoexec))
    except RuntimeError as exc:
        saved = _saved_by(path)
        if saved is not None and saved > tuple(bpy.app.version[:2]):  # Blender itself says "not a blend file"
            raise SceneProblem(
                f"cannot open {path}: saved by Blender {saved[0]}.{saved[1]}, whose file format this Blender "
                f"{bpy.app.version_string} cannot read; render it with Blender {saved[0]}.{saved[1]} or newer"
            ) from None
        raise SceneProblem(f"cannot open {path}: {str(exc).strip().splitlines()[-1]}") from None


_HEADER = re.compile(rb"BLENDER(?:\d\d-\d\d[vV](\d{4})|[_-][vV](\d{3}))")


def _saved_by(path: str) -> tuple[int, int] | None:
    """(major, minor) of the Blender that saved `path`, from its header: `BLENDER-v304` (3.4; `_` for 32-bit
    pointers, `V` for big-endian) or `BLENDER17-01v0500` (the header of Blender 5). None where the header is
    not in the first bytes as written (a compressed file whose first zstd block does not keep it literally)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    m = _HEADER.search(head)
    if m is None:
        return None
    version = int(m.group(1) or m.group(2))
    return version // 100, version % 100


_SCENE: list[str] = []  # name of the scene being rendered (the file's active one unless asked)
_SCENE_LAYER: list = []  # its view layer that renders


def _scene():
    return bpy.data.scenes[_SCENE[0]] if _SCENE and _SCENE[0] in bpy.data.scenes else bpy.context.scene


def _select_scene(name: str | None, path: str):
    """The scene to render: `name`, or the file's active scene."""
    if name:
        if name not in bpy.data.scenes:
            names = ", ".join(sorted(sc.name for sc in bpy.data.scenes))
            raise SceneProblem(f"no scene '{name}' in {os.path.basename(path)} (it has: {names})")
        scene = bpy.data.scenes[name]
        window = bpy.context.window or next(iter(bpy.context.window_manager.windows), None)
        if window is not None:
            window.scene = scene
    else:
        scene = bpy.context.scene
    _SCENE[:] = [scene.name]
    return scene


def _file_warnings() -> list[str]:
    out = []
    saved, running = tuple(bpy.data.version[:2]), tuple(bpy.app.version[:2])
    if saved > running:
        out.append(
            f"file saved by Blender {saved[0]}.{saved[1]}, newer than this Blender {bpy.app.version_string}: "
            "features added since may be missing or wrong"
        )
    return out + _missing_files()


def open_scene(req: protocol.OpenScene) -> protocol.OpenSceneReply:
    """Open a .blend and configure it for camsim; return what the host needs to time, plan and write.
    Its time stays as the file has it until `set_timing`.

    `warnings` are things that may make the render differ from what the scene's author saw (missing
    files, a newer file version, another engine); `adjustments` are what camsim changed so that the
    ground truth is exact (depth of field, motion blur, backface culling)."""
    path, settings = req.path, req.settings
    _STAGE[0] = ""
    _open(path, settings.autoexec)
    for addon in settings.addons:
        import addon_utils

        if not addon_utils.enable(addon, default_set=True):
            raise SceneProblem(f"add-on '{addon}' could not be enabled")

    scene = _select_scene(settings.scene, path)
    if scene.camera is None and not settings.cameras:
        raise SceneProblem(f"scene '{scene.name}' in {os.path.basename(path)} has no camera")
    original_range = (scene.frame_start, scene.frame_end)
    warnings = _file_warnings()
    adjustments: list[str] = []

    # One view layer, no compositor or sequencer: the RGB frame is exactly the Combined pass.
    layers = [vl for vl in scene.view_layers if vl.use] or list(scene.view_layers)
    layer = layers[0]
    for vl in scene.view_layers:
        vl.use = vl == layer
    _SCENE_LAYER[:] = [layer]
    render = scene.render
    render.use_compositing = False
    render.use_sequencer = False
    if render.use_stamp:  # "Burn Into Image": text drawn over the frames the ground truth does not have
        render.use_stamp = False
        adjustments.append("metadata stamp burnt into the frames turned off")
    render.use_persistent_data = True  # keep Cycles' scene data between the frames of a sequence

    engine = render.engine
    if engine != "CYCLES":
        warnings.append(f"scene was made for {engine}; camsim renders it with Cycles")
        warnings += _engine_notes(scene, engine)
    culled = _emulate_backface_culling(layer)
    if culled:
        adjustments.append(
            f"backface culling of {len(culled)} materials reproduced in Cycles ({', '.join(culled[:5])})"
        )
    render.engine = "CYCLES"
    if settings.width:
        render.resolution_x = settings.width
    if settings.height:
        render.resolution_y = settings.height
    if settings.width or settings.height:
        render.resolution_percentage = 100
    render.threads_mode = "FIXED"
    render.threads = settings.threads
    device = _setup_device(scene, settings.device_type, settings.gpu_index)

    cycles = scene.cycles
    cycles.samples = settings.max_samples
    threshold = float(settings.adaptive_threshold)
    cycles.use_adaptive_sampling = threshold > 0
    if threshold > 0:
        cycles.adaptive_threshold = threshold
    cycles.use_denoising = settings.use_denoising and _has_denoiser()
    if hasattr(layer, "cycles") and hasattr(layer.cycles, "denoising_store_passes"):
        layer.cycles.denoising_store_passes = False

    unknown = sorted(set(settings.passes) - set(VIEW_LAYER_PASSES))
    if unknown:
        raise SceneProblem(f"this service cannot write the Blender passes {unknown}")
    flows = "Vector" in settings.passes
    blur = settings.use_motion_blur
    if flows:
        if render.use_motion_blur:
            adjustments.append("motion blur turned off (flow needs it off)")
        render.use_motion_blur = False
    elif blur is not None:
        if render.use_motion_blur and not blur:
            adjustments.append("motion blur turned off")
        render.use_motion_blur = bool(blur)
    layer.use_pass_combined = True
    for name, flag in VIEW_LAYER_PASSES.items():  # Depth always: it also marks the background for the others
        setattr(layer, flag, name == "Depth" or name in settings.passes)

    rig = rig_cameras(scene, settings.cameras) if settings.cameras else []
    if rig:
        if settings.unbind_camera:
            raise SceneProblem("--render-config.unbind-camera frees one camera; a rig's cameras keep theirs")
        adjustments += _use_rig(scene, rig)
    adjustments += make_fisheyes(scene, settings.lens, settings.fisheye_fov, settings.fisheye_polynomial)
    _, shown = camera_cuts(scene)
    for cam in shown:
        problem = camera_problem(cam)
        if problem:
            raise SceneProblem(problem)
    dof_cameras = sorted(c.name for c in bpy.data.objects if c.type == "CAMERA" and c.data.dof.use_dof)
    keep_dof = settings.depth_of_field
    _DOF[:] = dof_cameras if keep_dof else []
    if dof_cameras and not keep_dof:
        for name in dof_cameras:
            bpy.data.objects[name].data.dof.use_dof = False
        adjustments.append(
            f"depth of field turned off ({', '.join(dof_cameras)}): frames are pinhole like the ground truth"
        )
    elif dof_cameras:
        adjustments.append(
            "depth of field kept in the RGB frames; ground truth rendered without it (two renders a frame)"
        )

    ids, objects, by_id = _assign_ids(scene)
    warnings += _label_objects(by_id, objects)
    _prepare_labels(scene, layer, settings.annotations)
    if settings.unbind_camera:
        _unbind_camera(scene)
    if not settings.use_animations:
        _freeze_animations(scene, rig)

    unbaked = [sim for sim in _simulations(scene) if not sim["baked"]]
    _UNBAKED[:] = unbaked
    _BY_ID.clear()
    _BY_ID.update(by_id)
    _STAGE[0] = "opened"
    return protocol.OpenSceneReply(
        scene=scene.name,
        layer=layer.name,
        original_frame_start=original_range[0],
        original_frame_end=original_range[1],
        fps=scene.render.fps / scene.render.fps_base,
        frame_map=[render.frame_map_old, render.frame_map_new],
        segmentation_ids={str(i): name for i, name in ids.items()},
        segmentation_objects={str(i): info for i, info in objects.items()},
        unbaked_simulations=unbaked,
        device=device,
        width=int(render.resolution_x * render.resolution_percentage / 100),
        height=int(render.resolution_y * render.resolution_percentage / 100),
        blender_version=bpy.app.version_string,
        pixel_filter={"type": str(cycles.pixel_filter_type), "width": float(cycles.filter_width)},
        colour_management=_colour_management(scene),
        metres_per_unit=float(scene.unit_settings.scale_length) or 1.0,
        source_engine=engine,
        warnings=warnings,
        adjustments=adjustments,
        rig=[{"name": c.name, "parent": qualified_name(c.parent) if c.parent else None} for c in rig],
    )


def set_timing(req: protocol.SetTiming) -> protocol.SetTimingReply:
    """Stretch the open scene's time as the host computed it (Blender's time remapping, which every
    time-driven thing honours: actions, NLA, shape keys, drivers, constraints; ctime = frame * old / new),
    then find the rigid objects at the first frame."""
    if _STAGE[0] not in ("opened", "timed"):
        raise RuntimeError("no scene is open: send open_scene before set_timing")
    scene = _scene()
    render = scene.render
    render.frame_map_old, render.frame_map_new = req.frame_map
    scene.frame_start = req.frame_start
    scene.frame_end = req.frame_end
    unbaked = _UNBAKED
    STEPPER.reset(min(x["frame_start"] for x in unbaked) if unbaked else None)
    adjustments = []
    if unbaked:
        adjustments.append(
            "unbaked simulations ("
            + ", ".join(f"{x['kind']} {x['owner']}" for x in unbaked)
            + ") are stepped "
            f"frame by frame from frame {STEPPER.start} before each sequence"
        )
    scene.frame_set(scene.frame_start)
    camera_state(scene)  # fail early on ortho/panoramic cameras
    drawn, instanced = _draws(scene)
    _RIGID.clear()  # drawn only as itself (an instance moves with its instancer, not with its own matrix)
    _RIGID.update({i: o for i, o in _BY_ID.items() if _is_rigid(o) and o in drawn and o not in instanced})
    _find_static_geometry()
    _STAGE[0] = "timed"
    return protocol.SetTimingReply(rigid=[str(i) for i in sorted(_RIGID)], adjustments=adjustments)


_DOF: list[str] = []  # cameras whose depth of field is kept in the RGB frames
_RIGID: dict = {}  # id -> object drawn only as itself whose surface moves only with its matrix
_BY_ID: dict = {}  # id -> object, of the open scene
_UNBAKED: list[dict] = []  # the open scene's simulations that are not baked
_STAGE = [""]  # "opened" by open_scene, then "timed" by set_timing; "" after anything else opens a file


def _timed_scene():
    """The open scene, once its time is set (open_scene, then set_timing)."""
    if _STAGE[0] != "timed":
        raise RuntimeError("no scene is ready: send open_scene, then set_timing")
    return _scene()


def _matrix(m) -> list[list[float]]:
    return [[float(v) for v in row] for row in m]


def cameras(req: protocol.Cameras) -> protocol.CamerasReply:
    """Camera state per frame; `camera`: that camera, not the active one.

    `object_motion`: the matrices of the rigid objects (drawn only as themselves), as {"static": {id: M}} for
    those that do not move over the frames and {"moving": {id: [M per frame]}}."""
    scene = _timed_scene()
    cam = bpy.data.objects[req.camera] if req.camera else None
    out, mats = [], []
    for f in req.frames:
        STEPPER.go(scene, int(f))
        state = camera_state(scene, cam)
        state["frame"] = int(f)
        out.append(state)
        mats.append({i: _matrix(o.matrix_world) for i, o in _RIGID.items()})
    moving = {i for i in _RIGID if any(m[i] != mats[0][i] for m in mats[1:])} if mats else set()
    motion = {
        "static": {str(i): mats[0][i] for i in _RIGID if i not in moving} if mats else {},
        "moving": {str(i): [m[i] for m in mats] for i in sorted(moving)},
    }
    return protocol.CamerasReply(states=out, object_motion=motion)


def _save(
    path: str, media: str, fmt: str, depth: str, codec: str | None = None, mode: str | None = None
) -> None:
    scene = _scene()
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5: media type before file format (absent before 5.0)
        settings.media_type = media
    settings.file_format = fmt
    settings.color_depth = depth
    if mode:
        settings.color_mode = mode
    if codec:
        settings.exr_codec = codec
    bpy.data.images["Render Result"].save_render(filepath=path, scene=scene)


def _set_dof(on: bool) -> None:
    for name in _DOF:
        bpy.data.objects[name].data.dof.use_dof = on


_RIG_CAMERA: list = [None]  # the rig camera of the last request that named one


def _use_camera(scene, name: str | None) -> None:
    """Make the rig camera `name` the scene camera (None: leave the scene camera). A rig renders its cameras one
    after the other, each into a sequence of its own on the host: moving to the next camera starts a sequence,
    so the geometry the host was sent (`_SENT`) is sent again."""
    if name is None:
        return
    scene.camera = scene.objects[name]
    if name != _RIG_CAMERA[0]:
        _RIG_CAMERA[0] = name
        _SENT.clear()


def render_frame(req: protocol.RenderFrame) -> protocol.RenderFrameReply:
    """One Cycles render; the RGB frame and (if asked) every pass as one multilayer EXR.

    With depth of field kept (`_DOF`), the RGB frame is rendered with it and the passes by a second
    render without it, so the ground truth stays pinhole-exact."""
    frame, rgb_path, exr_path = req.frame, req.rgb_path, req.exr_path
    scene = _timed_scene()
    if STEPPER.start is not None:  # the Vector pass looks one frame ahead: step a simulation there
        STEPPER.go(scene, int(frame) + 1)
    scene.frame_set(int(frame))
    _use_camera(scene, req.camera)
    state = camera_state(scene)
    objects = frame_objects(scene, req.objects_path) if req.objects_path else None
    t0 = time.perf_counter()
    _render(scene, req.window)
    t1 = time.perf_counter()
    if req.file_format == "JPEG":
        _save(rgb_path, "IMAGE", "JPEG", "8", mode="RGB")
    else:
        _save(rgb_path, "IMAGE", "PNG", str(req.bit_depth), mode="RGB")
    if exr_path:
        if _DOF:
            _set_dof(False)
            try:
                _render(scene, req.window)
            finally:
                _set_dof(True)
        _save(exr_path, "MULTI_LAYER_IMAGE", "OPEN_EXR_MULTILAYER", "32", codec="NONE")
    state["frame"] = int(frame)
    return protocol.RenderFrameReply(
        camera=state,
        render_seconds=time.perf_counter() - t0 if _DOF else t1 - t0,
        save_seconds=time.perf_counter() - t1,
        simulation_steps=STEPPER.steps,
        simulation_seconds=STEPPER.seconds,
        objects=objects,
    )


def objects_at(req: protocol.FrameObjects) -> protocol.FrameObjectsReply:
    """What `render_frame` reports of the objects (`frame_objects`), for a frame that is not rendered."""
    scene = _timed_scene()
    STEPPER.go(scene, int(req.frame))
    _use_camera(scene, req.camera)
    return protocol.FrameObjectsReply(objects=frame_objects(scene, req.objects_path))


def scene_range(req: protocol.SceneRange) -> protocol.SceneRangeReply:
    """What planning needs, with no settings changed: frame range, fps, camera cuts and cameras."""
    _STAGE[0] = ""
    _open(req.path, req.autoexec)
    scene = _select_scene(req.scene, req.path)
    cuts, shown = camera_cuts(scene)
    problems = [p for p in (camera_problem(c) for c in shown) if p]
    return protocol.SceneRangeReply(
        scene=scene.name,
        frame_start=scene.frame_start,
        frame_end=scene.frame_end,
        fps=scene.render.fps / scene.render.fps_base,
        has_camera=scene.camera is not None,
        cuts=cuts,
        cameras={c.name: c.data.type for c in shown},
        camera_problem=problems[0] if problems else None,
    )


def build_scene(req: protocol.BuildScene) -> dict:
    """Run a scene-building script's `build(**kwargs)` on an empty file and save it to `output`."""
    import runpy

    _STAGE[0] = ""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    namespace = runpy.run_path(req.script)
    info = namespace["build"](**req.kwargs) or {}
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups of the file we replace
    bpy.ops.wm.save_as_mainfile(filepath=req.output, compress=True)
    return info


def hello(req: protocol.Hello) -> protocol.HelloReply:
    return protocol.HelloReply(
        protocol=protocol.PROTOCOL_VERSION,
        blender_version=bpy.app.version_string,
        pid=os.getpid(),
        python=sys.version.split()[0],
        service=os.path.abspath(globals().get("__file__") or sys.argv[0]),
    )


HANDLERS = {
    protocol.Hello: hello,
    protocol.OpenScene: open_scene,
    protocol.SetTiming: set_timing,
    protocol.SceneRange: scene_range,
    protocol.Cameras: cameras,
    protocol.RenderFrame: render_frame,
    protocol.FrameObjects: objects_at,
    protocol.BuildScene: build_scene,
}
if set(HANDLERS) | {protocol.Shutdown} != set(protocol.REQUESTS.values()):
    raise SystemExit("[camsim-service] HANDLERS and protocol.REQUESTS disagree")


# ------------------------------------------------------------------------------------------- loop


def _watch_stdin() -> None:
    """Exit the moment the host goes away (its end of our stdin closes)."""
    try:
        while sys.stdin.buffer.read(1024):
            pass
    finally:
        os._exit(0)


def serve(address: str, family: str) -> None:
    key = bytes.fromhex(sys.stdin.buffer.readline().decode().strip())
    threading.Thread(target=_watch_stdin, daemon=True).start()
    if family == "AF_INET":
        host, port = address.rsplit(":", 1)
        addr: object = (host, int(port))
    else:
        addr = address
    conn = Client(addr, family=family, authkey=key)
    log(f"connected (pid {os.getpid()}, Blender {bpy.app.version_string})")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        cmd = msg.get("cmd") if isinstance(msg, dict) else None
        try:
            req = protocol.parse_request(msg)
            if isinstance(req, protocol.Shutdown):
                conn.send({"ok": True, "result": None})
                break
            result = HANDLERS[type(req)](req)
            reply = {
                "ok": True,
                "result": result.to_json() if isinstance(result, protocol.Message) else result,
            }
        except SceneProblem as exc:
            log(f"scene problem in {cmd}: {exc}")
            reply = {"ok": False, "kind": "scene", "error": str(exc)}
        except Exception as exc:
            log(f"error in {cmd}:\n{traceback.format_exc()}")
            reply = {"ok": False, "kind": "render", "error": f"{type(exc).__name__}: {exc}"}
        conn.send(reply)
    conn.close()
    log("shutting down")
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="camsim-service")
    parser.add_argument("--address", required=True)
    parser.add_argument("--family", choices=("AF_UNIX", "AF_INET"), required=True)
    args = parser.parse_args(argv)
    try:
        serve(args.address, args.family)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(3)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:])
