"""The messages between the host and the Blender service, and the version of that protocol.

Standard library only: the service runs inside Blender (the `bpy` module or an installed `blender -b
--python service.py`) and loads this file from its own folder, so both ends read one definition.

On the wire the host sends `{"cmd": NAME, **fields of the request}` and the service answers
`{"ok": True, "result": fields of the reply}` or `{"ok": False, "kind": "scene" | "render", "error": text}`
(`kind` "scene": the user can fix the scene; "render": anything else). Every field holds JSON values only
(str, int, float, bool, None, lists, dicts with str keys), so a message equals itself after a JSON round
trip; `from_json` refuses a missing or unknown field by name.

Order: `hello` first (the host refuses a service that answers another PROTOCOL_VERSION), then per scene
`open_scene` and `set_timing` before `cameras` and `render_frame`. The host computes the time scaling
(the scaled frame range and Blender's time remapping, `camsim.sampling`) and sends the results; the
service applies them as given.

No defaults here: the host sends every setting, so a render setting's default is stated once, in
`camsim.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, TypeVar

PROTOCOL_VERSION = 2
"""Raise it with every change of a message or of what a command does. Services from before versions
(no `protocol` in their hello) count as none."""

M = TypeVar("M", bound="Message")


class MessageError(ValueError):
    """A message that does not match its definition: an unknown command, a missing or unknown field."""


@dataclass(frozen=True)
class Message:
    """A request or reply: a frozen dataclass of JSON values, nested messages named in NESTED."""

    NESTED: ClassVar[Mapping[str, type[Message]]] = {}

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls: type[M], data: Any) -> M:
        if not isinstance(data, Mapping):
            raise MessageError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        missing = [
            n
            for n, f in known.items()
            if n not in data and f.default is MISSING and f.default_factory is MISSING
        ]
        if unknown or missing:
            what = [f"unknown field(s) {', '.join(unknown)}"] if unknown else []
            what += [f"missing field(s) {', '.join(missing)}"] if missing else []
            raise MessageError(f"{cls.__name__}: {'; '.join(what)}")
        return cls(**{k: cls.NESTED[k].from_json(v) if k in cls.NESTED else v for k, v in data.items()})

    @classmethod
    def pick(cls: type[M], values: Mapping[str, Any]) -> M:
        """This message's fields taken by name from a larger mapping (other keys are ignored)."""
        return cls.from_json({f.name: values[f.name] for f in fields(cls) if f.name in values})


def _plain(value: Any) -> Any:
    return value.to_json() if isinstance(value, Message) else value


@dataclass(frozen=True)
class Request(Message):
    CMD: ClassVar[str] = ""

    def to_message(self) -> dict[str, Any]:
        """What the host sends."""
        return {"cmd": self.CMD, **self.to_json()}


# ------------------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Hello(Request):
    """First request on a new connection. Reply: HelloReply."""

    CMD: ClassVar[str] = "hello"


@dataclass(frozen=True)
class Shutdown(Request):
    """Answer, close the connection and exit. Reply: None."""

    CMD: ClassVar[str] = "shutdown"


@dataclass(frozen=True)
class SceneSettings(Message):
    """What the service needs of the render settings (`camsim.config` documents each; the host fills every
    field, `render.worker_settings`)."""

    autoexec: bool
    """Let scripts embedded in the .blend run."""
    addons: list[str]
    """Add-on modules to enable."""
    scene: str | None
    """Scene of the file to render; None: the file's active scene."""
    width: int | None
    """Frame width in pixels; None: the scene's own."""
    height: int | None
    """Frame height in pixels; None: the scene's own."""
    threads: int
    """Cycles CPU threads."""
    device_type: str
    """auto, cpu or a GPU backend (config.DeviceType)."""
    gpu_index: int | None
    """Which GPU of the backend; None: all of them."""
    max_samples: int
    adaptive_threshold: float
    """0 turns adaptive sampling off."""
    use_denoising: bool
    passes: list[str]
    """Blender passes to write besides Combined, by their names in the render result ("Depth", "Normal",
    "Vector", "Object Index"; the host takes them from camsim.passes). "Vector" turns motion blur off."""
    use_motion_blur: bool | None
    """None: the scene's own (when flows are off)."""
    depth_of_field: bool
    unbind_camera: bool
    use_animations: bool
    lens: str
    """perspective, or the Cycles fisheye every perspective camera becomes: fisheye-equidistant, fisheye-equisolid,
    fisheye-polynomial (config.RenderSettings.lens)."""
    fisheye_fov: float
    """The fisheye's field of view, degrees."""
    cameras: list[str]
    """Camera objects to render (a rig), or ["all"]: every camera object of the scene, sorted by name; empty:
    the scene camera (timeline markers switch it). With a rig, markers' camera bindings are dropped."""
    annotations: bool
    """Per-object annotations will be asked for (render_frame's objects_path): the viewport evaluation, which
    they read, is made to show what the render shows."""
    fisheye_polynomial: list[float] | None = None
    """K0..K4 of the polynomial fisheye (lens fisheye-polynomial), else None."""


@dataclass(frozen=True)
class OpenScene(Request):
    """Open a .blend and configure it for camsim, time left as the file has it. Reply: OpenSceneReply.
    The scene cannot be rendered before `set_timing`."""

    CMD: ClassVar[str] = "open_scene"
    NESTED: ClassVar[Mapping[str, type[Message]]] = {"settings": SceneSettings}

    path: str
    settings: SceneSettings


@dataclass(frozen=True)
class SetTiming(Request):
    """Stretch the open scene's time: Blender's time remapping (ctime = frame * old / new) and the frame
    range that goes with it, both computed by the host (camsim.sampling). Reply: SetTimingReply."""

    CMD: ClassVar[str] = "set_timing"

    frame_start: int
    frame_end: int
    frame_map: list[int]
    """[frame_map_old, frame_map_new], each in 1..900."""


@dataclass(frozen=True)
class SceneRange(Request):
    """What planning reads of a scene, nothing changed. Reply: SceneRangeReply."""

    CMD: ClassVar[str] = "scene_range"

    path: str
    autoexec: bool
    scene: str | None
    """None: the file's active scene."""


@dataclass(frozen=True)
class Cameras(Request):
    """Camera state per frame, and the rigid objects' motion over the frames. Reply: CamerasReply."""

    CMD: ClassVar[str] = "cameras"

    frames: list[int]
    camera: str | None
    """That camera object instead of the active one (a neighbour frame across a cut); None: the active."""


@dataclass(frozen=True)
class RenderFrame(Request):
    """Render one frame: the RGB image, and every pass as one multilayer EXR. Reply: RenderFrameReply."""

    CMD: ClassVar[str] = "render_frame"

    frame: int
    rgb_path: str
    exr_path: str | None
    """None: no passes are saved."""
    file_format: str
    """PNG or JPEG."""
    bit_depth: int
    """8 or 16 (PNG)."""
    camera: str | None
    """Render through that camera object (a rig's); None: the scene camera."""
    objects_path: str | None = None
    """Where to write the frame's object geometry for the annotations (the reply's `objects` says what is
    where); None: no object data."""
    window: list[int] | None = None
    """[left, top, width, height]: render the pinhole image whose pixel (i, j) is pixel (left + i, top + j) of
    the frame's own, at the same focal length in pixels (camsim.lens_render.RenderWindow: lens distortion);
    None: the frame as it is."""


@dataclass(frozen=True)
class FrameObjects(Request):
    """What render_frame reports of the objects (and writes to `objects_path`), for a frame that is not
    rendered (a resumed sequence's). Reply: FrameObjectsReply."""

    CMD: ClassVar[str] = "frame_objects"

    frame: int
    objects_path: str
    camera: str | None
    """As RenderFrame.camera."""


@dataclass(frozen=True)
class BuildScene(Request):
    """Run a script's `build(**kwargs)` on an empty file and save it. Reply: the dict `build` returned."""

    CMD: ClassVar[str] = "build_scene"

    script: str
    output: str
    kwargs: dict[str, Any]


REQUESTS: dict[str, type[Request]] = {
    cls.CMD: cls
    for cls in (
        Hello,
        Shutdown,
        OpenScene,
        SetTiming,
        SceneRange,
        Cameras,
        RenderFrame,
        FrameObjects,
        BuildScene,
    )
}


def parse_request(message: Any) -> Request:
    """The typed request of a message as the host sends it."""
    cmd = message.get("cmd") if isinstance(message, Mapping) else None
    if cmd not in REQUESTS:
        raise MessageError(f"unknown command {cmd!r}")
    return REQUESTS[cmd].from_json({k: v for k, v in message.items() if k != "cmd"})


# -------------------------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class HelloReply(Message):
    protocol: int
    """The service's PROTOCOL_VERSION."""
    blender_version: str
    pid: int
    python: str
    service: str
    """Path of the running service script."""


@dataclass(frozen=True)
class OpenSceneReply(Message):
    """The scene as opened and configured, before its time is stretched."""

    scene: str
    layer: str
    """The view layer that renders (the only one left on)."""
    original_frame_start: int
    original_frame_end: int
    fps: float
    """The scene's own frames per second (fps / fps_base)."""
    frame_map: list[int]
    """The scene's own time remapping [old, new]."""
    segmentation_ids: dict[str, str]
    """id -> qualified object name."""
    segmentation_objects: dict[str, dict[str, Any]]
    """id -> {name, library, type, instanced_by}."""
    unbaked_simulations: list[dict[str, Any]]
    """Simulations Blender advances only frame by frame: {kind, owner, baked, frame_start}."""
    device: str
    width: int
    height: int
    blender_version: str
    pixel_filter: dict[str, Any]
    colour_management: dict[str, Any]
    metres_per_unit: float
    source_engine: str
    warnings: list[str]
    """What may make the render differ from what the scene's author saw."""
    adjustments: list[str]
    """What camsim changed so that the ground truth is exact."""
    rig: list[dict[str, Any]]
    """The cameras of SceneSettings.cameras, in render order: {name, parent (qualified name or None)}; empty
    without a rig."""


@dataclass(frozen=True)
class SetTimingReply(Message):
    rigid: list[str]
    """Ids of the objects drawn only as themselves (no instance of another object draws them) whose surface
    moves only with their matrix (at the first frame)."""
    adjustments: list[str]
    """What the timing made camsim do (stepping unbaked simulations)."""


@dataclass(frozen=True)
class SceneRangeReply(Message):
    scene: str
    frame_start: int
    frame_end: int
    """The scene's own range (not time-stretched)."""
    fps: float
    has_camera: bool
    cuts: list[int]
    """Frames where timeline markers switch the camera."""
    cameras: dict[str, str]
    """Every camera the range shows -> its type (PERSP, ORTHO, PANO)."""
    camera_problem: str | None
    """Why camsim refuses one of those cameras, or None."""


@dataclass(frozen=True)
class CamerasReply(Message):
    states: list[dict[str, Any]]
    """Per frame: fl_x, fl_y, cx, cy, w, h (pixels), transform_matrix (camera to world, Blender units,
    no scale), camera (object name), frame."""
    object_motion: dict[str, Any]
    """Matrices of the rigid objects: {"static": {id: M}, "moving": {id: [M per frame]}}."""


@dataclass(frozen=True)
class RenderFrameReply(Message):
    camera: dict[str, Any]
    """The frame's camera state (as in CamerasReply.states)."""
    render_seconds: float
    save_seconds: float
    simulation_steps: int
    """Frames stepped so far to bring unbaked simulations to the frames asked for."""
    simulation_seconds: float
    objects: dict[str, Any] | None = None
    """With RenderFrame.objects_path: {"clip": [clip_start, clip_end], "ids": {id: {"instances", "matrix_world",
    "bound_box", "geometry"}}} (camsim.annotations reads it); None without."""


@dataclass(frozen=True)
class FrameObjectsReply(Message):
    objects: dict[str, Any]
    """As RenderFrameReply.objects."""


# ------------------------------------------------------------------------- what the host assembles


@dataclass(frozen=True)
class SceneInfo(Message):
    """What the host knows of an open, timed scene: OpenSceneReply and SetTimingReply with the timing the
    host sent (never sent itself; `to_json()` is a sequence's `scene_info`)."""

    scene: str
    layer: str
    frame_start: int
    """First frame after time stretching."""
    frame_end: int
    original_frame_start: int
    original_frame_end: int
    fps: float
    """Frames per second after time stretching (the scene's fps x keyframe multiplier)."""
    frame_map: list[int]
    segmentation_ids: dict[str, str]
    segmentation_objects: dict[str, dict[str, Any]]
    """id -> {name, library, type, instanced_by, rigid}."""
    device: str
    width: int
    height: int
    blender_version: str
    pixel_filter: dict[str, Any]
    colour_management: dict[str, Any]
    metres_per_unit: float
    source_engine: str
    warnings: list[str]
    adjustments: list[str]
    rig: list[dict[str, Any]]
    """The rig's cameras (OpenSceneReply.rig); empty without one."""

    @classmethod
    def of(cls, opened: OpenSceneReply, timing: SetTiming, fps: float, timed: SetTimingReply) -> SceneInfo:
        values = opened.to_json()
        values.update(timing.to_json())
        rigid = set(timed.rigid)
        values["segmentation_objects"] = {
            i: {**o, "rigid": i in rigid} for i, o in opened.segmentation_objects.items()
        }
        values["adjustments"] = [*opened.adjustments, *timed.adjustments]
        values["fps"] = fps
        return cls.pick(values)
