"""The Blender side of a camsim worker. Runs INSIDE Blender (the `bpy` module or `blender -b --python`).

Standalone on purpose: it imports only bpy and the standard library, so it runs unchanged in an
installed Blender 3.4+ that knows nothing of camsim. It connects back to the host over an
authenticated `multiprocessing.connection` (UNIX socket or loopback TCP); the key arrives on stdin,
never on the command line. When stdin closes (the host exited, even by SIGKILL) it exits at once,
so a worker never outlives its host.

Protocol: the host sends `{"cmd": NAME, **args}`; the service answers `{"ok": True, "result": ...}`
or `{"ok": False, "kind": "scene" | "render", "error": message}`. One handler per command, listed in
HANDLERS; no reflection.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import traceback
from fractions import Fraction
from multiprocessing.connection import Client

import bpy

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


def camera_state(scene) -> dict:
    cam = scene.camera
    if cam is None:
        raise SceneProblem(f"scene '{scene.name}' has no active camera at frame {scene.frame_current}")
    if cam.type != "CAMERA":
        raise SceneProblem(f"active camera '{cam.name}' is not a camera object")
    if cam.data.type != "PERSP":
        raise SceneProblem(
            f"camera '{cam.name}' is {cam.data.type.lower()}; camsim renders perspective cameras"
        )
    state = camera_intrinsics(scene, cam)
    state["transform_matrix"] = _normalized_c2w(cam.matrix_world)
    state["camera"] = cam.name
    return state


# ----------------------------------------------------------------------------------------- setup


def _frame_map(scene, multiplier: float) -> None:
    """Stretch time with Blender's time remapping, which every time-driven thing honours
    (actions, NLA, shape keys, drivers, constraints): ctime = frame * old / new."""
    ratio = Fraction(scene.render.frame_map_old, scene.render.frame_map_new) / Fraction(
        multiplier
    ).limit_denominator(900)
    ratio = ratio.limit_denominator(900)
    while ratio.numerator > 900:  # both terms must lie in 1..900
        ratio = Fraction(round(ratio.numerator / 2), max(1, round(ratio.denominator / 2)))
    scene.render.frame_map_old = max(1, ratio.numerator)
    scene.render.frame_map_new = max(1, ratio.denominator)


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


def _assign_ids(scene) -> dict[int, str]:
    """Stable ids: renderable objects sorted by name get 1, 2, ... (same scene, same ids)."""
    names = sorted(o.name for o in scene.objects if o.type in RENDERABLE_TYPES)
    if len(names) > 32767:
        raise SceneProblem(f"scene has {len(names)} objects; segmentation supports 32767")
    ids = {}
    for i, name in enumerate(names, start=1):
        scene.objects[name].pass_index = i
        ids[i] = name
    return ids


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


def _freeze_animations(scene) -> None:
    """Stop every animation but the camera's (a static scene seen by a moving camera)."""
    keep = set()
    cam = scene.camera
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


def open_scene(path: str, settings: dict) -> dict:
    """Open a .blend and configure it for camsim; return what the host needs to plan and write."""
    prefs = bpy.context.preferences
    prefs.filepaths.use_scripts_auto_execute = bool(settings.get("autoexec", False))
    try:
        bpy.ops.wm.open_mainfile(
            filepath=path, load_ui=False, use_scripts=bool(settings.get("autoexec", False))
        )
    except RuntimeError as exc:
        raise SceneProblem(f"cannot open {path}: {str(exc).strip().splitlines()[-1]}") from None
    for addon in settings.get("addons", ()):
        import addon_utils

        if not addon_utils.enable(addon, default_set=True):
            raise SceneProblem(f"add-on '{addon}' could not be enabled")

    scene = bpy.context.scene
    if scene.camera is None:
        raise SceneProblem(f"scene '{scene.name}' in {os.path.basename(path)} has no camera")
    original_range = (scene.frame_start, scene.frame_end)

    # One view layer, no compositor or sequencer: the RGB frame is exactly the Combined pass.
    layers = [vl for vl in scene.view_layers if vl.use] or list(scene.view_layers)
    layer = layers[0]
    for vl in scene.view_layers:
        vl.use = vl == layer
    render = scene.render
    render.use_compositing = False
    render.use_sequencer = False
    render.use_persistent_data = True  # keep Cycles' scene data between the frames of a sequence

    render.engine = "CYCLES"
    if settings.get("width"):
        render.resolution_x = int(settings["width"])
    if settings.get("height"):
        render.resolution_y = int(settings["height"])
    if settings.get("width") or settings.get("height"):
        render.resolution_percentage = 100
    render.threads_mode = "FIXED"
    render.threads = int(settings.get("threads") or os.cpu_count() or 1)
    device = _setup_device(scene, settings.get("device_type", "auto"), settings.get("gpu_index"))

    cycles = scene.cycles
    cycles.samples = int(settings.get("max_samples", 128))
    threshold = float(settings.get("adaptive_threshold", 0.05))
    cycles.use_adaptive_sampling = threshold > 0
    if threshold > 0:
        cycles.adaptive_threshold = threshold
    cycles.use_denoising = bool(settings.get("use_denoising", True)) and _has_denoiser()
    if hasattr(layer, "cycles") and hasattr(layer.cycles, "denoising_store_passes"):
        layer.cycles.denoising_store_passes = False

    flows = bool(settings.get("flows", True))
    blur = settings.get("use_motion_blur")
    if flows:
        render.use_motion_blur = False
    elif blur is not None:
        render.use_motion_blur = bool(blur)
    layer.use_pass_combined = True
    layer.use_pass_z = True  # also marks the background for the other passes
    layer.use_pass_normal = bool(settings.get("normals", True))
    layer.use_pass_vector = flows
    layer.use_pass_object_index = bool(settings.get("segmentations", True))

    ids = _assign_ids(scene)
    if settings.get("unbind_camera"):
        _unbind_camera(scene)
    if not settings.get("use_animations", True):
        _freeze_animations(scene)

    multiplier = float(settings.get("keyframe_multiplier", 1.0))
    if multiplier != 1.0:
        _frame_map(scene, multiplier)
        scene.frame_start = math.ceil(original_range[0] * multiplier - 1e-9)
        scene.frame_end = math.floor(original_range[1] * multiplier + 1e-9)
    fps = scene.render.fps / scene.render.fps_base * multiplier
    scene.frame_set(scene.frame_start)
    camera_state(scene)  # fail early on ortho/panoramic cameras
    return {
        "scene": scene.name,
        "layer": layer.name,
        "frame_start": scene.frame_start,
        "frame_end": scene.frame_end,
        "original_frame_start": original_range[0],
        "original_frame_end": original_range[1],
        "fps": fps,
        "segmentation_ids": ids,
        "device": device,
        "width": int(render.resolution_x * render.resolution_percentage / 100),
        "height": int(render.resolution_y * render.resolution_percentage / 100),
        "blender_version": bpy.app.version_string,
        "frame_map": [render.frame_map_old, render.frame_map_new],
        "pixel_filter": {"type": str(cycles.pixel_filter_type), "width": float(cycles.filter_width)},
    }


def cameras(frames: list[int]) -> list[dict]:
    scene = bpy.context.scene
    out = []
    for f in frames:
        scene.frame_set(int(f))
        state = camera_state(scene)
        state["frame"] = int(f)
        out.append(state)
    return out


def _save(
    path: str, media: str, fmt: str, depth: str, codec: str | None = None, mode: str | None = None
) -> None:
    settings = bpy.context.scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5: media type before file format (absent before 5.0)
        settings.media_type = media
    settings.file_format = fmt
    settings.color_depth = depth
    if mode:
        settings.color_mode = mode
    if codec:
        settings.exr_codec = codec
    bpy.data.images["Render Result"].save_render(filepath=path)


def render_frame(frame: int, rgb_path: str, exr_path: str | None, file_format: str, bit_depth: int) -> dict:
    """One Cycles render; the RGB frame and (if asked) every pass as one multilayer EXR."""
    scene = bpy.context.scene
    scene.frame_set(int(frame))
    state = camera_state(scene)
    t0 = time.perf_counter()
    bpy.ops.render.render(write_still=False)
    t1 = time.perf_counter()
    if file_format == "JPEG":
        _save(rgb_path, "IMAGE", "JPEG", "8", mode="RGB")
    else:
        _save(rgb_path, "IMAGE", "PNG", str(bit_depth), mode="RGB")
    if exr_path:
        _save(exr_path, "MULTI_LAYER_IMAGE", "OPEN_EXR_MULTILAYER", "32", codec="NONE")
    state["frame"] = int(frame)
    state["render_seconds"] = t1 - t0
    state["save_seconds"] = time.perf_counter() - t1
    return state


def scene_range(path: str, autoexec: bool) -> dict:
    """Only read what planning needs: the frame range and fps, with no settings changed."""
    bpy.context.preferences.filepaths.use_scripts_auto_execute = bool(autoexec)
    try:
        bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=bool(autoexec))
    except RuntimeError as exc:
        raise SceneProblem(f"cannot open {path}: {str(exc).strip().splitlines()[-1]}") from None
    scene = bpy.context.scene
    return {
        "scene": scene.name,
        "frame_start": scene.frame_start,
        "frame_end": scene.frame_end,
        "fps": scene.render.fps / scene.render.fps_base,
        "has_camera": scene.camera is not None,
    }


def build_scene(script: str, output: str, kwargs: dict) -> dict:
    """Run a scene-building script's `build(**kwargs)` on an empty file and save it to `output`."""
    import runpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    namespace = runpy.run_path(script)
    info = namespace["build"](**kwargs) or {}
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups of the file we replace
    bpy.ops.wm.save_as_mainfile(filepath=output, compress=True)
    return info


def hello() -> dict:
    return {"blender_version": bpy.app.version_string, "pid": os.getpid(), "python": sys.version.split()[0]}


HANDLERS = {
    "hello": lambda msg: hello(),
    "open_scene": lambda msg: open_scene(msg["path"], msg["settings"]),
    "scene_range": lambda msg: scene_range(msg["path"], msg.get("autoexec", False)),
    "cameras": lambda msg: cameras(msg["frames"]),
    "render_frame": lambda msg: render_frame(
        msg["frame"],
        msg["rgb_path"],
        msg.get("exr_path"),
        msg.get("file_format", "PNG"),
        msg.get("bit_depth", 8),
    ),
    "build_scene": lambda msg: build_scene(msg["script"], msg["output"], msg.get("kwargs", {})),
}


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
        cmd = msg.get("cmd")
        if cmd == "shutdown":
            conn.send({"ok": True, "result": None})
            break
        handler = HANDLERS.get(cmd)
        try:
            if handler is None:
                raise ValueError(f"unknown command {cmd!r}")
            reply = {"ok": True, "result": handler(msg)}
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
