"""Planning's scene reads in parallel (camsim.survey): two readers read what one reads, the manifest's cache
opens no file twice, a changed file is read again, and a bad scene (corrupt, crashing Blender) fails alone.

Whether a Blender started is seen in its log folder: every BlenderWorker writes NAME-PID-TIME.log there when
it starts.
"""

from __future__ import annotations

import os
import queue
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from camsim.blender.worker import BlenderWorker
from camsim.config import RenderConfig
from camsim.manifest import SceneRecord
from camsim.planning import SceneRange
from camsim.sampling import SceneEntry, find_scenes
from camsim.survey import SceneRead, scene_record, survey_local

pytestmark = pytest.mark.blender

# Scene-building script whose registered text kills Blender as the file loads (with autoexec on).
CRASHER = """
import bpy

def build():
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 4
    bpy.ops.object.camera_add(location=(0.0, -6.0, 0.0), rotation=(1.5708, 0.0, 0.0))
    scene.camera = bpy.context.object
    text = bpy.data.texts.new("crash.py")
    text.use_module = True
    text.write("import os\\nos._exit(3)\\n")
"""


@pytest.fixture(scope="module")
def four_scenes(build_scene) -> list[Path]:  # type: ignore[no-untyped-def]
    """Four tiny scenes with different ranges (one without a camera)."""
    return [
        build_scene("survey_a", kind="point", frames=(1, 5)),
        build_scene("survey_b", kind="point", frames=(3, 20)),
        build_scene("survey_c", kind="point", frames=(2, 7)),
        build_scene("survey_d", kind="point", frames=(1, 3), no_camera=True),
    ]


def _folder(tmp_path: Path, blends: list[Path]) -> list[SceneEntry]:
    scenes = tmp_path / "scenes"
    scenes.mkdir(exist_ok=True)
    for b in blends:
        shutil.copy2(b, scenes / b.name)
    return find_scenes(scenes)


@pytest.fixture
def spare() -> Iterator[queue.Queue[BlenderWorker]]:
    """The warm Blenders a survey hands over; closed after the test."""
    q: queue.Queue[BlenderWorker] = queue.Queue()
    yield q
    while not q.empty():
        q.get_nowait().close()


def _config(tmp_path: Path, **kw: object) -> RenderConfig:
    return RenderConfig(log_dir=tmp_path / "logs", **kw)  # type: ignore[arg-type]


def _started(config: RenderConfig) -> list[str]:
    """Names of the Blenders started with `config` (one log file each)."""
    return sorted("-".join(p.stem.split("-")[:-3]) for p in config.log_dir.glob("*.log"))


def _survey(scenes: list[SceneEntry], config: RenderConfig, workers: int, spare: queue.Queue[BlenderWorker],
            cache: dict[str, SceneRecord] | None = None) -> dict[str, SceneRead]:  # fmt: skip
    return {r.scene.name: r for r in survey_local(scenes, config, workers, cache or {}, None, spare)}


def _ranges(reads: dict[str, SceneRead]) -> dict[str, tuple[SceneRange | None, str | None]]:
    return {name: (r.range, r.error) for name, r in reads.items()}


def test_two_readers_read_what_one_reads(four_scenes: list[Path], tmp_path: Path, spare: queue.Queue) -> None:
    scenes = _folder(tmp_path, four_scenes)
    one = _survey(scenes, _config(tmp_path / "one"), 1, spare)
    assert spare.qsize() == 1  # the reader's Blender, handed over warm
    two = _survey(scenes, _config(tmp_path / "two"), 2, spare)
    assert spare.qsize() == 3 and all(w.alive for w in spare.queue)
    assert _ranges(one) == _ranges(two)
    assert one["survey_a"].range == SceneRange(1, 5) and one["survey_b"].range == SceneRange(3, 20)
    assert one["survey_c"].range == SceneRange(2, 7)
    assert one["survey_d"].range is None and one["survey_d"].error == "scene has no camera"
    assert not any(r.cached for r in [*one.values(), *two.values()])
    assert _started(_config(tmp_path / "two")) == ["worker-1", "worker-2"]


def test_cached_scenes_start_no_blender(four_scenes: list[Path], tmp_path: Path, spare: queue.Queue) -> None:
    scenes = _folder(tmp_path, four_scenes)
    first = _survey(scenes, _config(tmp_path / "first"), 2, spare)
    cache = {name: r.record for name, r in first.items() if r.record is not None}
    assert set(cache) == {s.name for s in scenes}  # "no camera" is cached too: it is the file's content

    config = _config(tmp_path / "again")
    again = _survey(scenes, config, 2, spare, cache)
    assert _started(config) == [] and spare.qsize() == 2  # only the first survey's two Blenders
    assert _ranges(again) == _ranges(first) and all(r.cached for r in again.values())
    # The same file read as another scene of the .blend (--render-config.scene) is not the cached read.
    other = list(survey_local(scenes[:1], config, 1, cache, "point", spare))
    assert not other[0].cached and _started(config) == ["worker-1"]


def test_a_changed_scene_is_read_again(
    build_scene, four_scenes: list[Path], tmp_path: Path, spare: queue.Queue
) -> None:  # type: ignore[no-untyped-def]
    scenes = _folder(tmp_path, four_scenes)
    first = _survey(scenes, _config(tmp_path / "first"), 1, spare)
    cache = {name: r.record for name, r in first.items() if r.record is not None}
    # survey_a rewritten with another range; survey_b only touched (a new mtime is a new file).
    shutil.copy2(build_scene("survey_a_v2", kind="point", frames=(10, 30)), scenes[0].path)
    st = os.stat(scenes[1].path)
    os.utime(scenes[1].path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    config = _config(tmp_path / "again")
    again = _survey(scenes, config, 1, spare, cache)
    assert {n for n, r in again.items() if not r.cached} == {"survey_a", "survey_b"}
    assert again["survey_a"].range == SceneRange(10, 30) and again["survey_b"].range == SceneRange(3, 20)
    assert again["survey_a"].record is not None and again["survey_a"].record.start == 10
    assert _started(config) == ["worker-1"]


def test_a_corrupt_or_crashing_scene_fails_alone(
    build_scene, four_scenes: list[Path], tmp_path: Path, spare: queue.Queue
) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    crasher = build_scene("survey_0crash", script=script)
    scenes = _folder(tmp_path, [*four_scenes[:3], crasher])
    folder = scenes[0].path.parent
    (folder / "survey_corrupt.blend").write_bytes(b"BLENDER-v500" + os.urandom(2000))
    (folder / "survey_text.blend").write_text("not a blend file")
    scenes = find_scenes(folder)

    config = _config(tmp_path, autoexec=True)
    reads = _survey(scenes, config, 1, spare)
    assert len(reads) == 6
    assert all(
        reads[n].range is not None and reads[n].error is None for n in ("survey_a", "survey_b", "survey_c")
    )
    assert reads["survey_text"].error == f"not a .blend file: {folder / 'survey_text.blend'}"
    assert reads["survey_text"].record is not None  # the file's content: cached
    corrupt = reads["survey_corrupt"]
    assert corrupt.range is None and corrupt.error and corrupt.record is not None
    crash = reads["survey_0crash"]
    assert (
        crash.range is None and crash.error and crash.error.startswith("Blender could not read the scene: ")
    )
    assert crash.record is None  # a crash may not happen again: read it again next time
    # The crash cost the reader its Blender; it read the scene once more on a fresh one (survey.READ_RETRIES),
    # which crashed too, then started another and went on with the other scenes.
    assert _started(config) == ["worker-1", "worker-1-r1", "worker-1-r2"]
    assert spare.qsize() == 1 and spare.queue[0].alive


def _blenders() -> set[int]:
    """Our live Blender worker processes (children running the service script)."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any("service.py" in a for a in child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.add(child.pid)
        except psutil.Error:
            continue
    return out


def test_abandoned_survey_kills_its_blenders(
    four_scenes: list[Path], tmp_path: Path, spare: queue.Queue
) -> None:
    scenes = _folder(tmp_path, four_scenes)
    before = _blenders()
    reads = survey_local(scenes, _config(tmp_path), 2, {}, None, spare)
    next(reads)
    assert _blenders() - before  # reading: its Blenders run
    reads.close()
    assert _blenders() - before == set()
    assert spare.empty()


def test_scene_record_stamps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.blend"
    path.write_bytes(b"BLENDER-v500")
    st = os.stat(path)
    rec = scene_record(SceneEntry("a", path), SceneRange(1, 9, (5,), None), "Scene")
    assert rec == SceneRecord(str(path.resolve()), st.st_size, st.st_mtime_ns, "Scene", 1, 9, [5], None, None)
    failed = scene_record(SceneEntry("a", path), "scene has no camera", None)
    assert failed is not None and failed.error == "scene has no camera" and failed.start is None
    assert scene_record(SceneEntry("gone", tmp_path / "gone.blend"), "x", None) is None


def test_a_render_slot_takes_the_blender_planning_hands_over(four_scenes: list[Path], tmp_path: Path) -> None:
    """The first job is out while the reader reads the last scene: the slot waits for that reader's Blender
    instead of starting a second one (jobs=1 runs one Blender in all, as a bare loop does)."""
    from camsim.jobs import WorkerSlot
    from camsim.spares import Spares

    scenes = _folder(tmp_path, four_scenes[:2])
    config = _config(tmp_path)
    spares = Spares()
    reads = survey_local(scenes, config, 1, {}, None, spares)
    first = next(reads)  # the reader goes on with the second (last) scene meanwhile
    slot = WorkerSlot(config, spare=spares)
    try:
        worker = slot.get()
        rest = list(reads)
        assert worker.alive and slot.started == 1 and spares.coming == 0 and spares.empty()
        assert _started(config) == ["worker-1"]  # the reader's Blender: no other started
        assert {first.scene.name, *(r.scene.name for r in rest)} == {"survey_a", "survey_b"}
    finally:
        slot.close()


def test_a_render_slot_starts_its_own_blender_when_none_is_coming(tmp_path: Path) -> None:
    from camsim.jobs import WorkerSlot
    from camsim.spares import Spares

    config = _config(tmp_path)
    slot = WorkerSlot(config, spare=Spares())  # nothing expected: no wait
    try:
        assert slot.get().alive and _started(config) == ["worker-1"]
    finally:
        slot.close()
