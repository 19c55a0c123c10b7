"""The host <-> Blender protocol: typed messages that survive the wire, one time-scaling rule (on the host),
and a service of another protocol version refused in one line."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import psutil
import pytest
from conftest import FAST

from camsim.blender import protocol
from camsim.blender.protocol import (
    PROTOCOL_VERSION,
    BuildScene,
    Cameras,
    CamerasReply,
    FrameObjects,
    FrameObjectsReply,
    Hello,
    HelloReply,
    MessageError,
    OpenScene,
    OpenSceneReply,
    RenderFrame,
    RenderFrameReply,
    SceneRange,
    SceneRangeReply,
    SceneSettings,
    SetTiming,
    SetTimingReply,
    Shutdown,
    parse_request,
)
from camsim.blender.worker import SERVICE_SCRIPT, BlenderWorker, WorkerOptions
from camsim.config import RenderSettings
from camsim.errors import ProtocolMismatch, RenderFailure, WorkerError
from camsim.render import worker_settings
from camsim.sampling import frame_map, scaled_range

SETTINGS = worker_settings(FAST.replace(addons=("node_wrangler",), scene="Scene", device_type="cpu"), 3, None)
CAMERA = {"fl_x": 60.5, "fl_y": 60.5, "cx": 32.0, "cy": 24.0, "w": 64, "h": 48, "camera": "Camera", "frame": 3,
          "transform_matrix": [[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 6.0], [0.0, 0.0, 0.0, 1.0]]}  # fmt: skip
OBJECTS = {"clip": [0.1, 100.0], "ids": {"1": {"instances": 1, "matrix_world": CAMERA["transform_matrix"],
           "bound_box": [[0.0, 0.0, 0.0]] * 8, "geometry": {"vertices": [0, 3], "triangles": [36, 1]}}}}  # fmt: skip
REQUESTS = [
    Hello(),
    Shutdown(),
    OpenScene("/scenes/a b.blend", SETTINGS),
    SetTiming(3, 27, [2, 5]),
    SceneRange("/scenes/a.blend", False, None),
    Cameras([0, 1, 2], "CamB"),
    RenderFrame(7, "/tmp/rgb_000007.png", None, "PNG", 16, "Left", "/tmp/objects_000007.bin"),
    FrameObjects(7, "/tmp/objects_000007.bin", None),
    BuildScene("/tests/scenes/analytic.py", "/tmp/x.blend", {"kind": "flow", "frames": [1, 3], "depth": 6.0}),
]
REPLIES = [
    HelloReply(PROTOCOL_VERSION, "5.0.1", 1234, "3.11.9", "/camsim/blender/service.py"),
    OpenSceneReply(
        scene="Scene",
        layer="ViewLayer",
        original_frame_start=1,
        original_frame_end=11,
        fps=25.0,
        frame_map=[100, 100],
        segmentation_ids={"1": "Cube", "2": "Table [//lib.blend]"},
        segmentation_objects={"1": {"name": "Cube", "library": None, "type": "MESH", "instanced_by": []}},
        unbaked_simulations=[
            {"kind": "rigid body", "owner": "RigidBodyWorld", "baked": False, "frame_start": 1}
        ],
        device="CPU",
        width=64,
        height=48,
        blender_version="5.0.1",
        pixel_filter={"type": "BLACKMAN_HARRIS", "width": 1.5},
        colour_management={"view_transform": "AgX"},
        metres_per_unit=1.0,
        source_engine="BLENDER_EEVEE_NEXT",
        warnings=["missing texture"],
        adjustments=[],
        rig=[{"name": "Left", "parent": "StereoRig"}, {"name": "Right", "parent": "StereoRig"}],
    ),
    SetTimingReply(rigid=["1"], adjustments=["unbaked simulations (...) are stepped"]),
    SceneRangeReply("Scene", 1, 250, 24.0, True, [11, 40], {"CamA": "PERSP", "CamB": "ORTHO"}, None),
    CamerasReply(states=[CAMERA], object_motion={"static": {"1": CAMERA["transform_matrix"]}, "moving": {}}),
    RenderFrameReply(
        camera=CAMERA, render_seconds=0.25, save_seconds=0.01, simulation_steps=0, simulation_seconds=0.0
    ),
    FrameObjectsReply(OBJECTS),
    RenderFrameReply(CAMERA, 0.25, 0.01, 0, 0.0, OBJECTS),
]


def _wire(value: object) -> object:
    return json.loads(json.dumps(value))


def test_every_request_and_reply_is_the_same_after_a_json_round_trip():
    assert {type(r) for r in REQUESTS} == set(protocol.REQUESTS.values()), "a request type has no sample here"
    for request in REQUESTS:
        message = _wire(request.to_message())
        assert message["cmd"] == request.CMD
        assert parse_request(message) == request
    for reply in REPLIES:
        assert type(reply).from_json(_wire(reply.to_json())) == reply


def test_a_message_with_a_missing_or_unknown_field_or_command_is_refused_by_name():
    message = OpenScene("/a.blend", SETTINGS).to_message()
    del message["settings"]["max_samples"]
    message["settings"]["max_sampels"] = 4
    with pytest.raises(
        MessageError, match=r"SceneSettings: unknown field\(s\) max_sampels; missing field\(s\) max_samples"
    ):
        parse_request(message)
    with pytest.raises(MessageError, match="unknown command 'render'"):
        parse_request({"cmd": "render", "frame": 1})
    # The host sends every setting: the service states no default of its own (config.py holds them).
    with pytest.raises(MessageError, match="missing field") as err:
        SceneSettings.from_json({})
    assert all(f in str(err.value) for f in ("max_samples", "adaptive_threshold", "use_denoising", "threads"))


def test_worker_settings_are_the_render_settings_the_service_needs():
    settings = RenderSettings()
    sent = worker_settings(settings, threads=3, gpu_index=1)
    assert sent.threads == 3 and sent.gpu_index == 1
    for name, value in sent.to_json().items():
        if name not in ("threads", "gpu_index", "passes"):
            assert value == settings.to_json()[name], name
    # The Blender passes come from the pass registry: exactly those the asked ground truth is made from.
    assert sent.passes == ["Depth", "Normal", "Vector", "Object Index"]
    only = worker_settings(RenderSettings(normals=False, flows=False, segmentations=False, linear=True), 1)
    assert only.passes == ["Depth"]


@pytest.mark.parametrize(
    ("own", "m", "expected"),
    [((100, 100), 1.0, (100, 100)), ((100, 100), 2.5, (2, 5)), ((1, 1), 2.0, (1, 2)), ((2, 1), 3.0, (2, 3)),
     ((100, 100), 0.5, (2, 1)), ((1, 1), 900.0, (1, 900)), ((1, 1), 1 / 900, (900, 1))],
)  # fmt: skip
def test_frame_map_divides_the_scenes_own_remapping_by_the_multiplier(own, m, expected):
    assert frame_map(*own, m) == expected


@pytest.mark.parametrize("m", [1 / 900, 0.37, 1.7, 2.5, 7 / 3, 123.456, 899.9, 900.0])
@pytest.mark.parametrize("own", [(1, 1), (100, 100), (3, 7), (900, 1), (1, 900)])
def test_frame_map_terms_stay_in_blenders_range_and_near_the_asked_ratio(own, m):
    old, new = frame_map(*own, m)
    assert 1 <= old <= 900 and 1 <= new <= 900
    if own in (
        (1, 1),
        (100, 100),
    ):  # a scene's usual remapping: the asked ratio, to the rounding of terms <= 900
        assert abs(Fraction(old, new) - 1 / Fraction(m)) * m < 0.01


def test_scaled_range_is_the_ceil_and_floor_of_the_stretched_ends():
    assert scaled_range(1, 11, 2.5) == (3, 27)
    assert scaled_range(1, 600, 1.0) == (1, 600)
    assert scaled_range(3, 9, 1 / 3) == (1, 3)  # 3 * (1/3) is 1 despite floating point


# ------------------------------------------------------------------------------------ real workers


def _service_copy(folder: Path, protocol_text: str | None = None, service_text: str | None = None) -> Path:
    folder.mkdir()
    (folder / "service.py").write_text(service_text or SERVICE_SCRIPT.read_text())
    if protocol_text is not None:
        (folder / "protocol.py").write_text(protocol_text)
    return folder / "service.py"


def _start(script: Path, logs: Path) -> BlenderWorker:
    worker = BlenderWorker(WorkerOptions(log_dir=logs, timeout=120, name="other-protocol"))
    worker.service_script = script
    return worker.start()


def _future_service(folder: Path) -> Path:
    text = (SERVICE_SCRIPT.parent / "protocol.py").read_text()
    line = f"PROTOCOL_VERSION = {PROTOCOL_VERSION}\n"
    assert line in text
    return _service_copy(folder, text.replace(line, f"PROTOCOL_VERSION = {PROTOCOL_VERSION + 1}\n"))


def _old_service(folder: Path) -> Path:
    """A service from before protocol versions: its hello answers without one."""
    text = SERVICE_SCRIPT.read_text()
    handler = "    protocol.Hello: hello,\n"
    assert handler in text
    old_hello = (
        '    protocol.Hello: lambda req: {"blender_version": bpy.app.version_string, "pid": os.getpid()},\n'
    )
    return _service_copy(
        folder, (SERVICE_SCRIPT.parent / "protocol.py").read_text(), text.replace(handler, old_hello)
    )


@pytest.mark.blender
@pytest.mark.parametrize(
    ("make", "theirs"),
    [(_future_service, f"protocol {PROTOCOL_VERSION + 1}"), (_old_service, "protocol none (it predates")],
)
def test_a_service_speaking_another_protocol_version_is_refused_in_one_line(make, theirs, tmp_path):
    script = make(tmp_path / "service")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ProtocolMismatch) as err:
        _start(script, tmp_path / "logs")
    message = str(err.value)
    assert "\n" not in message
    assert theirs in message and f"this camsim speaks protocol {PROTOCOL_VERSION}" in message
    assert str(script) in message  # which service answered
    assert str(SERVICE_SCRIPT.parent) in message  # where the matching one is
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()]
    assert all(p.status() == psutil.STATUS_ZOMBIE for p in left), "the refused worker is still running"


@pytest.mark.blender
def test_a_service_without_its_protocol_file_says_so(tmp_path):
    script = _service_copy(tmp_path / "service")
    with pytest.raises(
        WorkerError, match=r"protocol\.py is missing: service\.py needs the protocol\.py it came with"
    ):
        _start(script, tmp_path / "logs")


@pytest.mark.blender
def test_a_malformed_request_is_refused_and_the_worker_keeps_serving(worker):
    with pytest.raises(RenderFailure, match=r"Cameras: unknown field\(s\) camerra"):
        worker.request({"cmd": "cameras", "frames": [1], "camera": None, "camerra": None})
    assert worker.request(Hello())["protocol"] == PROTOCOL_VERSION


@pytest.mark.blender
def test_the_host_times_the_scene_and_blender_renders_only_a_timed_one(build_scene, worker):
    blend = build_scene("protocol-timing", kind="flow", frames=(1, 11))
    worker.scene_range(blend)
    with pytest.raises(RenderFailure, match="send open_scene, then set_timing"):
        worker.cameras([1])
    info = worker.open_scene(blend, worker_settings(FAST), 2.5)
    assert (info.frame_start, info.frame_end) == scaled_range(1, 11, 2.5) == (3, 27)
    assert (info.original_frame_start, info.original_frame_end) == (1, 11)
    assert info.frame_map == [*frame_map(100, 100, 2.5)] == [2, 5]
    assert info.fps == 25 * 2.5
    assert [s["frame"] for s in worker.cameras([3, 27]).states] == [3, 27]
