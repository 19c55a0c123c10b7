"""The `transforms.json` schema: a superset of nerfstudio's, with every convention written down.

A sequence folder is complete when its `transforms.json` exists and validates; it is written last
and atomically. Paths inside it are relative to the folder holding it and may not escape it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from camsim import lenses, passes
from camsim.errors import DatasetError
from camsim.fileio import write_json_atomic
from camsim.lenses import Camera as Camera  # re-exported: every lens model's projection (camsim.lenses)
from camsim.lenses import Lens as Lens
from camsim.lenses import camera_of as camera_of
from camsim.lenses import lens_of as lens_of

FORMAT_VERSION = "camsim/1"

CONVENTIONS: dict[str, str] = {
    "camera_axes": "OpenGL/Blender: +X right, +Y up, +Z toward the viewer (the camera looks along -Z)",
    "transform_matrix": "camera-to-world, 4x4, row-major (translation in the last column), rotation "
    "orthonormal (the camera object's scale removed), translation in metres",
    "world_axes": "Blender world: +Z up, right-handed; lengths in metres (Blender units x metres_per_unit)",
    "pixel_origin": "top-left corner of the top-left pixel; pixel centres at integer + 0.5; x right, y down",
    "intrinsics": "pinhole, no distortion (k1 = k2 = p1 = p2 = 0): u = fl_x * X/(-Z) + cx, "
    "v = -fl_y * Y/(-Z) + cy for camera-frame (X, Y, Z); the top-level values are the first frame's, and "
    "every frame carries its own when the lens (focal length, shift, sensor) is animated",
    "depth": "planar z-depth (distance along the optical axis, not along the ray) in metres; float32, "
    "EXR channel Y; background (no surface at the pixel centre) +inf",
    "normal": "unit surface normals in the camera frame (+X right, +Y up, +Z toward the viewer), of the side "
    "facing the camera (back faces flipped toward the camera); float32, EXR channels R, G, B = x, y, z; "
    "background 0",
    "flow": "pixels, x right, y down; float32, EXR channels R, G = forward flow (dx, dy) from this frame to "
    "the next, B, A = backward flow (dx, dy) from this frame to the previous; where the pixel-centre sample "
    "hit no surface (depth +inf) the exact flow of points at infinity (camera rotation and intrinsics only); "
    "the first and last frame's flow uses the same camera one frame outside the sequence, as Blender "
    "evaluates it there (also beyond the scene's range, and across a camera cut)",
    "segmentation": "EXR channel Y, uint32 object ids, 0 = background (no surface at the pixel centre); one "
    "id per object, shared by all its instances (collection, particle, geometry-nodes instances); ids "
    "1..N over the sorted names, stable for a scene; names in segmentation_ids (linked objects as "
    "'name [library path]')",
    "scene_flow": "metres, in this frame's camera axes (+X right, +Y up, +Z toward the viewer); float32, EXR "
    "channels forward.X, forward.Y, forward.Z = the motion of the surface point seen at the pixel centre from "
    "this frame to the next, backward.X, backward.Y, backward.Z = from this frame to the previous; with X the "
    "pixel centre unprojected at its depth (camera frame), X + forward is that point at the next frame (in this "
    "frame's camera coordinates): moved into the next frame's camera and projected with its intrinsics, it lands "
    "on the pixel plus the forward optical flow; exact: static surfaces do not move, a rigid object's point "
    "moves by M(next) M(this)^-1 (objects.json matrices); NaN where the pixel-centre sample hit no surface and "
    "on objects objects.json marks rigid: false (deforming, instanced), which the warnings name; the first and "
    "last frame use the same neighbours as the flow",
    "time": "seconds since the scene's first frame: (frame_number - frame_start x keyframe_multiplier) / fps "
    "with the scene's frame_start and fps = scene fps x keyframe_multiplier; the same instant has the same "
    "time at every multiplier",
    "frame_number": "Blender frame number after keyframe scaling (frame n shows the scene's frame "
    "n / keyframe_multiplier); it numbers the files, e.g. frames/frame_000123.png",
    "camera": "frames[i].camera names the scene camera of the frame (as timeline markers select it); a "
    "sequence never crosses a camera cut (a render asked to is refused)",
    "rgb": "8- or 16-bit PNG (or JPEG) of Cycles' Combined pass through the scene's own colour management "
    "as saved in the .blend and recorded in colour_management (display device, view transform, look, "
    "exposure, gamma, curves; Blender's default view transform is AgX), with Blender's dither noise; only under view transform Standard with "
    "no look, exposure 0, gamma 1, no curves and display sRGB is a frame the sRGB OETF of the scene-linear "
    "light in linear/ (within one code value of dither)",
    "sampling": "depth and segmentation come from one camera sample at the pixel centre (never a blend), "
    "and so does the background mask of normals and flow; normals and flow are averaged over the pixel's "
    "samples, so on silhouettes they mix the surfaces, and samples that hit the world background do not "
    "count; colours are anti-aliased with pixel_filter",
}

LENS_CONVENTIONS: dict[str, dict[str, str]] = {
    "distortion": {
        "intrinsics": "OpenCV's radial-tangential lens (camera_model OPENCV with k1, k2, k3, p1, p2 as written): "
        "for camera-frame (X, Y, Z), a = X/(-Z), b = -Y/(-Z), s = a^2 + b^2, g = 1 + k1 s + k2 s^2 + k3 s^3; "
        "u = fl_x * (a g + 2 p1 a b + p2 (s + 2 a^2)) + cx, v = fl_y * (b g + p1 (s + 2 b^2) + 2 p2 a b) + cy "
        "(camsim.lenses.project; camsim.lenses.unproject inverts it to 1e-9 px); the top-level values are the "
        "first frame's, and every frame carries its own when the lens (focal length, shift, sensor) is animated",
        "sampling": "Cycles renders the larger pinhole image render_window (the undistorted image at the frame's "
        "own fl_x, fl_y, cx, cy) as a pinhole render samples: depth and segmentation from one camera sample at "
        "each pixel centre, normals and flow averaged over the pixel's samples (samples that hit the world "
        "background do not count), colours anti-aliased with pixel_filter; each distorted pixel then takes, at "
        "its undistorted position, the colours (RGB frame, linear) bilinearly and every other ground truth "
        "(depth, normals, segmentation, ...) from the one pinhole pixel nearest to that position, never a blend",
        "flow": "pixels, x right, y down; float32, EXR channels R, G = forward flow (dx, dy) from this frame to "
        "the next, B, A = backward flow (dx, dy) from this frame to the previous; a distorted pixel's flow is "
        "distort(p + f) - its centre, with p its undistorted position, f the pinhole flow of the nearest pinhole "
        "pixel and distort the other frame's lens; where that pinhole sample hit no surface (depth +inf) the "
        "exact flow of points at infinity (camera rotation and intrinsics only) at the pixel centre (0 for a "
        "direction behind the other camera); 0 where the other position lies beyond the lens's valid radius "
        "(where OpenCV's model folds back); the first and last "
        "frame's flow uses the same camera one frame outside the sequence, as Blender evaluates it there (also "
        "beyond the scene's range, and across a camera cut)",
    },
    "fisheye": {
        "intrinsics": "a fisheye (camera_model OPENCV_FISHEYE with k1 = k2 = k3 = k4 = 0: equidistant, r = theta; "
        "FISHEYE_EQUISOLID: r = 2 sin(theta/2); FISHEYE_POLYNOMIAL: theta = -(k0 + k1 r + k2 r^2 + k3 r^3 + k4 r^4) "
        "with r in millimetres on the sensor and fl_x = fl_y pixels per millimetre, on its increasing part): a "
        "camera-frame point (X, Y, Z) at angle theta = "
        "atan2(sqrt(X^2 + Y^2), -Z) from the optical axis has u = fl_x * r * X/sqrt(X^2 + Y^2) + cx, "
        "v = -fl_y * r * Y/sqrt(X^2 + Y^2) + cy (camsim.lenses.project); pixels farther than fisheye_fov / 2 "
        "from the axis have no ray (outside the image circle); the top-level values are the first frame's, and "
        "every frame carries its own when the lens is animated",
        "depth": "distance along the ray from the camera centre to the surface (radial, not planar z: a fisheye "
        "sees beyond 90 degrees) in metres; float32, EXR channel Y; background (no surface at the pixel "
        "centre, or outside the image circle) +inf",
        "flow": "pixels, x right, y down; float32, EXR channels R, G = forward flow (dx, dy) from this frame to "
        "the next, B, A = backward flow (dx, dy) from this frame to the previous; where the pixel-centre sample "
        "hit no surface (depth +inf) the exact flow of points at infinity (camera rotation only) through the "
        "fisheye, 0 where such a direction leaves the other frame's field of view; 0 outside the image circle; "
        "the first and last frame's flow uses the same camera one frame outside the sequence, as Blender "
        "evaluates it there (also beyond the scene's range, and across a camera cut)",
    },
}
"""The sentences of CONVENTIONS that a lens other than the pinhole replaces (`conventions_for`): "distortion"
(camera_model OPENCV with distortion) and "fisheye" (OPENCV_FISHEYE, FISHEYE_EQUISOLID, FISHEYE_POLYNOMIAL)."""


def lens_family(lens: Lens) -> str | None:
    """The LENS_CONVENTIONS entry of a lens: "fisheye", "distortion", or None for the pinhole."""
    return "fisheye" if lens.is_fisheye else None if lens.is_pinhole else "distortion"


def conventions_for(lens: Lens) -> dict[str, str]:
    """CONVENTIONS as they hold for a render through `lens` (the pinhole's are CONVENTIONS themselves)."""
    family = lens_family(lens)
    return dict(CONVENTIONS) if family is None else {**CONVENTIONS, **LENS_CONVENTIONS[family]}


FILE_KEYS = ("checksums", "encodings")
"""Top-level keys that describe the bytes of exactly these files (`checksums`: relative path -> `crc32:...`;
`encodings`: each kind's codec, precision and error bound, camsim.encoding): every writer that writes other files
(a conversion, an interpolation) drops them."""

SIDECAR_KEYS = tuple(f.key for f in passes.SEQUENCE_FILES)
"""Top-level keys naming per-sequence files that describe the source frames (objects.json, events.h5): a
lossless conversion copies them, a derived dataset with other frames (interpolation) drops them."""

_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy")


def resolve_path(root: str | os.PathLike[str], rel: str) -> Path:
    """Resolve a path written in transforms.json against its folder, refusing escapes.

    Absolute paths, drive letters, `..` components and symbolic links that lead outside are
    rejected: a dataset from someone else must not make a reader open files outside the dataset.
    """
    if not isinstance(rel, str) or not rel:
        raise DatasetError(f"bad file path {rel!r} in transforms.json")
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DatasetError(f"file path {rel!r} in transforms.json escapes the dataset folder")
    full = Path(root) / Path(*pure.parts)
    base = os.path.realpath(root)
    if os.path.commonpath([os.path.realpath(full), base]) != base:
        raise DatasetError(f"file path {rel!r} in transforms.json leads outside the dataset folder (a link)")
    return full


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise DatasetError(msg)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_matrix(m: Any, where: str) -> None:
    ok = (
        isinstance(m, list)
        and len(m) == 4
        and all(isinstance(r, list) and len(r) == 4 and all(_is_number(v) for v in r) for r in m)
    )
    _require(ok, f"{where}: transform_matrix must be a 4x4 list of finite numbers")


def validate(meta: Any, source: str = "transforms.json") -> dict[str, Any]:
    """Check the structure of a parsed transforms.json; return it unchanged or raise DatasetError."""
    _require(isinstance(meta, dict), f"{source}: top level must be an object")
    frames = meta.get("frames")
    _require(isinstance(frames, list), f"{source}: 'frames' must be a list")
    for key in ("w", "h"):
        if key in meta:
            _require(
                isinstance(meta[key], int) and not isinstance(meta[key], bool) and meta[key] > 0,
                f"{source}: '{key}' must be a positive integer",
            )
    for key in (*_INTRINSIC_KEYS, "fps"):
        if key in meta:
            _require(_is_number(meta[key]), f"{source}: '{key}' must be a finite number")
    if "fps" in meta:
        _require(meta["fps"] > 0, f"{source}: 'fps' must be positive")
    has_top_intrinsics = all(k in meta for k in _INTRINSIC_KEYS)
    seen_numbers: set[int] = set()
    for i, fr in enumerate(frames):
        where = f"{source}: frames[{i}]"
        _require(isinstance(fr, dict), f"{where} must be an object")
        _check_matrix(fr.get("transform_matrix"), where)
        for key in passes.KEYS:  # the RGB frame's and every other kind's file
            if key in fr:
                resolve_path(".", fr[key])
        for key in _INTRINSIC_KEYS:
            if key in fr:
                _require(_is_number(fr[key]), f"{where}: '{key}' must be a finite number")
        if not has_top_intrinsics and "file_path" in fr:
            _require(all(k in fr for k in _INTRINSIC_KEYS), f"{where}: no intrinsics (fl_x, fl_y, cx, cy)")
        if "time" in fr:
            _require(_is_number(fr["time"]), f"{where}: 'time' must be a finite number")
        if "frame_number" in fr:
            n = fr["frame_number"]
            _require(
                isinstance(n, int) and not isinstance(n, bool), f"{where}: 'frame_number' must be an integer"
            )
            _require(n not in seen_numbers, f"{where}: frame_number {n} appears twice")
            seen_numbers.add(n)
    for key in (*passes.KEYS, *SIDECAR_KEYS):  # NPY arrays, objects.json, events.h5
        if key in meta:
            resolve_path(".", meta[key])
    sums = meta.get("checksums", {})
    _require(
        isinstance(sums, dict) and all(isinstance(v, str) for v in sums.values()),
        f"{source}: 'checksums' must map file paths to checksum strings",
    )
    for rel in sums:
        resolve_path(".", rel)
    ids = meta.get("segmentation_ids", {})
    _require(
        isinstance(ids, dict) and all(str(k).isdigit() and isinstance(v, str) for k, v in ids.items()),
        f"{source}: 'segmentation_ids' must map integer ids to object names",
    )
    return meta


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a transforms.json (or the one inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "transforms.json"
    try:
        text = p.read_bytes()  # json decodes (and rejects) the bytes: bad UTF-8 is a DatasetError too
    except FileNotFoundError:
        raise DatasetError(f"no transforms.json at {p}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {p}: {exc.strerror}") from None
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetError(f"{p} is not valid JSON: {exc}") from None
    return validate(meta, str(p))


def write(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Validate then write atomically (temporary file + rename)."""
    validate(meta, str(path))
    write_json_atomic(path, meta)


def intrinsics(meta: dict[str, Any], index: int | None = None) -> np.ndarray:
    """The 3x3 pinhole matrix K (top-left pixel-corner origin) for a frame, honouring per-frame values."""
    fr = meta["frames"][index] if index is not None else {}
    fx, fy, cx, cy = (float(fr.get(k, meta.get(k))) for k in _INTRINSIC_KEYS)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def pose(meta: dict[str, Any], index: int) -> np.ndarray:
    """Camera-to-world 4x4 (OpenGL camera axes) of frame `index`."""
    return np.asarray(meta["frames"][index]["transform_matrix"], dtype=np.float64)


def project(points_world: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (N,3) to pixel coordinates (N,2) and planar depths (N,) for an OpenGL camera."""
    w2c = np.linalg.inv(c2w)
    pc = points_world @ w2c[:3, :3].T + w2c[:3, 3]
    z = -pc[:, 2]
    u = K[0, 0] * pc[:, 0] / z + K[0, 2]
    v = -K[1, 1] * pc[:, 1] / z + K[1, 2]
    return np.stack([u, v], axis=1), z


def unproject(depth: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> np.ndarray:
    """World points (H,W,3) of every pixel centre from planar depth (H,W)."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = -(v - K[1, 2]) / K[1, 1] * depth
    pc = np.stack([x, y, -depth], axis=-1)
    return pc @ c2w[:3, :3].T + c2w[:3, 3]


def project_points(
    points_world: np.ndarray, c2w: np.ndarray, camera: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points (N,3) through `camera` and its lens (camsim.lenses, any camera_model; `camera_of` reads it
    from transforms.json): pixels (N,2), depths (N,) in the lens's convention (planar z for OPENCV, the distance
    along the ray for fisheyes) and whether each point has an image."""
    w2c = np.linalg.inv(np.asarray(c2w, dtype=np.float64))
    pc = np.asarray(points_world, dtype=np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    uv, valid = lenses.project(pc, camera)
    depth = np.linalg.norm(pc, axis=-1) if lenses.depth_is_radial(camera.lens) else -pc[:, 2]
    return uv, depth, valid


def unproject_depth(depth: np.ndarray, c2w: np.ndarray, camera: Camera) -> np.ndarray:
    """World points (H,W,3) of every pixel centre from a depth map (H,W) in the lens's convention; NaN where the
    pixel has no ray or the depth is not finite."""
    pc = lenses.points_from_depth(depth, camera)
    c2w = np.asarray(c2w, dtype=np.float64)
    return pc @ c2w[:3, :3].T + c2w[:3, 3]


# ------------------------------------------------------------------------------------------------ reading
# Every reader of a sequence (loader, emulators, interpolation, preview) takes frame times, frame numbers,
# poses and the frame rate from these functions, so a sequence reads the same everywhere. Values are checked
# here too (a caller may pass a dict that never went through `validate`): a bad one is a DatasetError.

TIME_RULE = (
    "a frame's time is its `time` when every frame has one; otherwise (frame_number - the first frame's "
    "frame_number) / fps, a frame's index standing in for a missing frame_number (so index / fps when no frame "
    "has one); a sequence with neither times nor fps has no time (a DatasetError for readers that need one)"
)
"""The one rule for frame times (`frame_times`), as documented in docs/FORMAT.md."""


def fps(meta: dict[str, Any]) -> float | None:
    """The sequence's frame rate (top-level `fps`, frames per second); None when it has none."""
    value = meta.get("fps")
    if value is None:
        return None
    _require(_is_number(value) and value > 0, f"'fps' must be a positive finite number, got {value!r}")
    return float(value)


def frame_numbers(meta: dict[str, Any]) -> np.ndarray:
    """Every frame's `frame_number` (int64); a frame without one is numbered by its index."""
    numbers = []
    for i, fr in enumerate(meta["frames"]):
        n = fr.get("frame_number", i)
        _require(
            isinstance(n, int | np.integer) and not isinstance(n, bool),
            f"frames[{i}]: 'frame_number' must be an integer, got {n!r}",
        )
        numbers.append(int(n))
    return np.array(numbers, dtype=np.int64)


def has_frame_times(meta: dict[str, Any]) -> bool:
    """Whether the sequence has frame times under TIME_RULE: every frame has `time`, or there is an fps."""
    return all("time" in fr for fr in meta["frames"]) or meta.get("fps") is not None


def frame_times(meta: dict[str, Any], increasing: bool = False) -> np.ndarray:
    """Every frame's time in seconds (float64) by TIME_RULE, the one rule of every reader.

    DatasetError when a time, frame_number or fps is not a valid number, when the sequence has neither
    times nor fps, and (`increasing`) unless the times strictly increase. Without `increasing` the order
    is not checked: a dataset may list its frames in any order.
    """
    frames = meta["frames"]
    if all("time" in fr for fr in frames):
        for i, fr in enumerate(frames):
            _require(
                _is_number(fr["time"]), f"frames[{i}]: 'time' must be a finite number, got {fr['time']!r}"
            )
        times = np.array([float(fr["time"]) for fr in frames], dtype=np.float64)
    else:
        rate = fps(meta)
        _require(rate is not None, "frames have no 'time' and transforms.json has no 'fps'")
        numbers = frame_numbers(meta).astype(np.float64)
        times = (numbers - (numbers[0] if len(numbers) else 0.0)) / rate
    later = np.flatnonzero(np.diff(times) <= 0) + 1 if increasing else ()
    if len(later):
        i = int(later[0])
        raise DatasetError(
            f"frame times must strictly increase (frames[{i}] at {times[i]:g} s, the frame before at "
            f"{times[i - 1]:g} s)"
        )
    return times


def poses(meta: dict[str, Any]) -> np.ndarray:
    """Every frame's camera-to-world 4x4 (OpenGL camera axes) as an (N, 4, 4) float64 array."""
    frames = meta["frames"]
    for i, fr in enumerate(frames):
        _check_matrix(fr.get("transform_matrix"), f"frames[{i}]")
    if not frames:
        return np.zeros((0, 4, 4))
    return np.stack([pose(meta, i) for i in range(len(frames))])
