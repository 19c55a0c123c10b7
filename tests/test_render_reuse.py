"""Reruns never mix renders: a folder holding another render is refused, resumed only with the same settings,
or cleared by --overwrite; a damaged complete dataset is repaired frame by frame by one --allow-skips run (--verify also finds bytes
changed in place, by the checksums recorded when the files were written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filestate import stamps

from camsim import transforms
from camsim.fileio import read_image
from camsim.validate import validate_dataset

pytestmark = pytest.mark.blender

TINY = ["--render-config.width=32", "--render-config.height=24", "--render-config.max-samples=2",
        "--render-config.adaptive-threshold=0", "--render-config.no-use-denoising"]  # fmt: skip


def camsim(*args: object, code: int = 0, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(a) for a in args]
    if argv[0] in ("render-animation", "create-datasets") and tmp is not None:
        argv.append(f"--render-config.log-dir={tmp / 'logs'}")
    proc = subprocess.run([sys.executable, "-m", "camsim", *argv], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CAMSIM_LOG": "WARNING"})  # fmt: skip
    assert proc.returncode == code, (
        f"camsim {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    )
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("camsim: error: "), proc.stderr
    return lines[0]


def test_render_animation_refuses_another_render_and_overwrite_leaves_nothing_stale(demo_scenes, tmp_path):
    scene, out = demo_scenes[0], tmp_path / "seq"
    camsim("render-animation", scene, out, "--frame-start=1", "--frame-end=4", "--render-config.linear", *TINY,
           tmp=tmp_path)  # fmt: skip
    before = stamps(out)
    line = one_error_line(camsim("render-animation", scene, out, "--frame-start=1", "--frame-end=2", *TINY,
                                 code=2, tmp=tmp_path))  # fmt: skip
    assert "already holds a render of demo_000.blend frames 1..4" in line and "--overwrite" in line
    line = one_error_line(camsim("render-animation", scene, out, "--frame-start=1", "--frame-end=4", *TINY,
                                 "--allow-skips", code=2, tmp=tmp_path))  # fmt: skip
    assert "--render-config.linear=true (this run: false)" in line
    assert stamps(out) == before  # refusals touch nothing

    camsim(
        "render-animation", scene, out, "--frame-start=1", "--frame-end=2", *TINY, "--overwrite", tmp=tmp_path
    )
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["frame_000001.png", "frame_000002.png"]
    assert not (out / "linear").exists()
    assert sorted(p.name for p in (out / "debug" / "depths").iterdir()) == [
        "depth_000001.png",
        "depth_000002.png",
    ]
    assert validate_dataset(out).ok

    shutil.copy(out / "frames" / "frame_000001.png", out / "frames" / "frame_000009.png")
    proc = camsim("validate", out, code=1)
    assert any(ln.startswith("UNLISTED") and "frame_000009.png" in ln for ln in proc.stdout.splitlines()), (
        proc.stdout
    )


def test_a_new_setting_over_a_dataset_is_refused_and_overwrite_rerenders_it(demo_scenes, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(demo_scenes[0], scenes)
    data = tmp_path / "data"
    args = ("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={data}", "--sequences-per-scene=2",
            "--num-frames=2")  # fmt: skip
    camsim(*args, *TINY, tmp=tmp_path)
    before = stamps(data)
    wider = [a.replace("width=32", "width=40") for a in TINY]
    line = one_error_line(camsim(*args, *wider, "--allow-skips", code=2, tmp=tmp_path))
    assert "--render-config.width=32 (this run: 40)" in line and "(and 1 more sequences)" in line
    line = one_error_line(camsim(*args, *TINY, "--render-config.keyframe-multiplier=1", "--render-config.no-normals",
                                 "--allow-skips", code=2, tmp=tmp_path))  # fmt: skip
    assert "--render-config.normals=true (this run: false)" in line
    line = one_error_line(camsim(*args, *TINY, code=2, tmp=tmp_path))  # same settings, no flag: refused too
    assert "--allow-skips" in line
    assert stamps(data) == before

    camsim(*args, *wider, "--overwrite", tmp=tmp_path)
    seqs = sorted((data / "renders").glob("*/*/transforms.json"))
    assert len(seqs) == 2
    for tj in seqs:
        meta = transforms.read(tj)
        assert meta["w"] == 40 and meta["render"]["width"] == 40
        for fr in meta["frames"]:
            assert read_image(tj.parent / fr["file_path"]).shape == (24, 40, 3)
        assert json.loads((tj.parent / "settings.json").read_text())["settings_hash"] == meta["settings_hash"]


def test_allow_skips_repairs_damaged_complete_sequences_and_verify_decodes(demo_scenes, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(demo_scenes[1], scenes)
    data = tmp_path / "data"
    args = ("create-datasets", f"--scenes-dir={scenes}", f"--datasets-dir={data}", "--sequences-per-scene=2",
            "--num-frames=3", *TINY)  # fmt: skip
    camsim(*args, tmp=tmp_path)
    a, b = sorted((data / "renders" / "demo_001").iterdir())
    ma, mb = transforms.read(a), transforms.read(b)
    (a / ma["frames"][1]["file_path"]).unlink()  # deleted frame
    depth = b / mb["frames"][0]["depth_file_path"]
    depth.write_bytes(depth.read_bytes()[:-50])  # truncated EXR
    flow = b / mb["frames"][2]["flow_file_path"]
    raw = bytearray(flow.read_bytes())
    # Bytes changed in place inside the compressed pixel data: same size, same structure. OpenEXR decodes this
    # without an error (other values), so only the checksum recorded at write time can tell.
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    flow.write_bytes(bytes(raw))  # damaged in place: same size, chunk offsets inside the file
    before = stamps(data)
    time.sleep(0.01)

    proc = camsim(*args, "--allow-skips", tmp=tmp_path)
    assert "2 done, 0 skipped" in proc.stderr
    after = stamps(data)
    changed = {k for k in after if before.get(k) != after[k]} - {
        "dataset.json"
    }  # the manifest records the run
    fa, fb = ma["frames"][1]["frame_number"], mb["frames"][0]["frame_number"]
    assert changed and all(f"{fa:06d}" in k or f"{fb:06d}" in k for k in changed), [
        k for k in changed if f"{fa:06d}" not in k and f"{fb:06d}" not in k
    ]
    assert all(not k.endswith(".json") for k in changed), changed  # transforms/info/objects not rewritten
    assert bytes(raw) == flow.read_bytes()  # the cheap check reads no pixel data: it cannot see this

    assert [p.path for p in validate_dataset(data / "renders").problems] == [flow]
    proc = camsim(*args, "--allow-skips", "--verify", tmp=tmp_path)
    again = stamps(data)
    changed = {k for k in again if after.get(k) != again[k]} - {"dataset.json"}
    fc = mb["frames"][2]["frame_number"]
    assert changed and all(f"{fc:06d}" in k for k in changed), changed
    assert validate_dataset(data / "renders").ok
