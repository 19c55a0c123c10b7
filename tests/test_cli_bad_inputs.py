"""Bad input to every CLI command: one `camsim: error: ...` line, exit code 2, no traceback, and nothing
that existed before is modified (bytes and mtimes of the whole input tree are compared).

Commands run in-process through `camsim.cli.main` (the console script's entry point) so the table
stays fast; a few rows also run as real subprocesses. Read-only output folders are a read-only bind
mount (root ignores file modes, so chmod would prove nothing); where mounting is not allowed, a folder
under /proc stands in. `validate` reports a broken dataset with exit code 1 by contract, so its
dataset-content rows expect 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from camsim import cli
from camsim.blender.worker import BlenderWorker
from camsim.emulate.sensors import SENSORS

TESTS = Path(__file__).parent
TINY = [
    "--render-config.width",
    "16",
    "--render-config.height",
    "12",
    "--render-config.max-samples",
    "1",
    "--render-config.device-type",
    "cpu",
    "--render-config.albedo",
]  # fmt: skip (albedo: for emulate itof/lidar)
WIDER = [a if a != "16" else "20" for a in TINY]
EYE = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    match: str = ""
    """Text the error line must contain (case-insensitive)."""
    code: int = 2
    bug: str = ""
    """Known bug in a module outside this suite's ownership: the row is a strict xfail until fixed."""


def C(*argv: str, match: str = "", code: int = 2, bug: str = "") -> Case:
    return Case(tuple(argv), match, code, bug)


BLEND_BAD_VALUES = {
    "width-zero": C("--render-config.width", "0", match="width"),
    "height-negative": C("--render-config.height", "-4", match="height"),
    "samples-zero": C("--render-config.max-samples", "0", match="max-samples"),
    "multiplier-zero": C("--render-config.keyframe-multiplier", "0", match="keyframe-multiplier"),
    "multiplier-negative": C("--render-config.keyframe-multiplier", "-1.5", match="keyframe-multiplier"),
    "device-unknown": C("--render-config.device-type", "quantum", match="device-type"),
    "jobs-zero": C("--render-config.jobs", "0", match="jobs"),
    "jobs-not-a-number": C("--render-config.jobs", "many", match="jobs"),
    "threads-zero": C("--render-config.threads", "0", match="threads"),
    "timeout-zero": C("--render-config.timeout", "0", match="timeout"),
    "flows-with-motion-blur": C("--render-config.use-motion-blur", "True", match="motion blur"),
    "executable-missing": C("--render-config.executable", "{ws}/no-blender", match="executable"),
}

RENDER = {
    "missing-file": C("render-animation", "{ws}/missing.blend", "{out}", match="not found"),
    "folder-not-file": C("render-animation", "{ws}/empty", "{out}", match="not a file"),
    "not-a-blend": C("render-animation", "{ws}/notblend.blend", "{out}", match="not a .blend"),
    "truncated-blend": C("render-animation", "{ws}/truncated.blend", "{out}", *TINY, match="cannot open"),
    "no-camera": C("render-animation", "{ws}/nocam.blend", "{out}", *TINY, match="no camera"),
    "empty-range": C("render-animation", "{scene}", "{out}", "--frame-start", "5", "--frame-end", "3", *TINY,
                     match="--frame-start 5 is after --frame-end 3"),
    "holds-another-render": C("render-animation", "{scene}", "{seq}", "--frame-start", "1", "--frame-end", "2",
                              *TINY, match="already holds a render of demo_000.blend frames 1..3"),
    "resume-other-settings": C("render-animation", "{scene}", "{seq}", "--frame-start", "1", "--frame-end", "3",
                               "--allow-skips", *WIDER, match="--render-config.width=16 (this run: 20)"),
    "skips-and-overwrite": C("render-animation", "{scene}", "{out}", "--allow-skips", "--overwrite",
                             match="one of them"),
    "range-outside": C("render-animation", "{scene}", "{out}", "--frame-start", "0", "--frame-end", "99999",
                       *TINY, match="outside"),
    "output-is-file": C("render-animation", "{scene}", "{ws}/afile", match="not a folder"),
    "output-read-only": C("render-animation", "{scene}", "{ro}/out", match="not writable"),
    **{k: Case(("render-animation", "{scene}", "{out}", *v.argv), v.match) for k, v in BLEND_BAD_VALUES.items()},
}  # fmt: skip

CD = ("create-datasets", "--datasets-dir", "{out}")
CREATE = {
    "scenes-missing": C(*CD, "--scenes-dir", "{ws}/missing", match="not found"),
    "scenes-empty": C(*CD, "--scenes-dir", "{ws}/empty", match="no .blend"),
    "scenes-is-file": C(*CD, "--scenes-dir", "{ws}/afile", match="afile"),
    "scenes-not-blend": C(*CD, "--scenes-dir", "{ws}/s-notblend", *TINY, match="not a .blend"),
    "scenes-truncated": C(*CD, "--scenes-dir", "{ws}/s-truncated", *TINY, match="truncated"),
    "scenes-no-camera": C(*CD, "--scenes-dir", "{ws}/s-nocam", *TINY, match="no camera"),
    "anim-range-empty": C(*CD, "--scenes-dir", "{scenes}", "--anim-start", "10", "--anim-end", "5",
                          match="anim"),
    "anim-range-half": C(*CD, "--scenes-dir", "{scenes}", "--anim-start", "10", match="anim"),
    "anim-range-outside": C(*CD, "--scenes-dir", "{scenes}", "--anim-start", "1", "--anim-end", "700", *TINY,
                            match="outside the range 1..600"),
    "dataset-holds-render": C("create-datasets", "--scenes-dir", "{ws}/s-one", "--datasets-dir", "{ws}/ds",
                              "--anim-start", "1", "--anim-end", "3", *TINY, match="--allow-skips"),
    "dataset-other-settings": C("create-datasets", "--scenes-dir", "{ws}/s-one", "--datasets-dir", "{ws}/ds",
                                "--anim-start", "1", "--anim-end", "3", "--allow-skips", *WIDER,
                                match="--render-config.width=16 (this run: 20)"),
    "frames-zero": C(*CD, "--scenes-dir", "{scenes}", "--num-frames", "0", match="num-frames"),
    "frames-negative": C(*CD, "--scenes-dir", "{scenes}", "--num-frames", "-3", match="num-frames"),
    "frames-too-many": C(*CD, "--scenes-dir", "{scenes}", "--num-frames", "100000", *TINY, match="at most 600"),
    "sequences-zero": C(*CD, "--scenes-dir", "{scenes}", "--sequences-per-scene", "0", match="sequences"),
    "retries-negative": C(*CD, "--scenes-dir", "{scenes}", "--max-retries", "-1", match="max-retries"),
    "sampling-unknown": C(*CD, "--scenes-dir", "{scenes}", "--sampling", "sideways", match="sampling"),
    "itof-without-albedo": C(*CD, "--scenes-dir", "{scenes}", "--emulate", "itof", *TINY[:-1],
                             match="--render-config.albedo"),
    "lidar-without-normals": C(*CD, "--scenes-dir", "{scenes}", "--emulate", "lidar", "--render-config.albedo",
                               "--render-config.no-normals", match="--lidar.no-incidence"),
    "datasets-is-file": C("create-datasets", "--scenes-dir", "{scenes}", "--datasets-dir", "{ws}/afile",
                          match="not a folder"),
    "datasets-read-only": C("create-datasets", "--scenes-dir", "{scenes}", "--datasets-dir", "{ro}/ds",
                            match="not writable"),
    **{k: Case((*CD, "--scenes-dir", "{scenes}", *v.argv), v.match) for k, v in BLEND_BAD_VALUES.items()},
}  # fmt: skip

SCENES = {
    "count-zero": C("make-scenes", "{out}", "--count", "0", match="count"),
    "count-negative": C("make-scenes", "{out}", "--count", "-1", match="count"),
    "output-is-file": C("make-scenes", "{ws}/afile", match="not a folder"),
    "output-read-only": C("make-scenes", "{ro}/scenes", match="read-only"),
}

DEMO = {
    "output-is-file": C("demo", "{ws}/afile", match="not a folder"),
    "output-read-only": C("demo", "{ro}/demo", match="read-only"),
    "scenes-zero": C("demo", "{out}", "--scenes", "0", match="scenes"),
    "frames-zero": C("demo", "{out}", "--num-frames", "0", match="num-frames"),
    "width-zero": C("demo", "{out}", "--width", "0", match="width"),
    "jobs-zero": C("demo", "{out}", "--jobs", "0", match="jobs"),
    "samples-zero": C("demo", "{out}", "--samples", "0", match="samples"),
}

DATASET_READERS = {
    "validate": ("validate",),
    "info": ("info",),
    "preview": ("preview", "{dataset}", "{out}"),
    "interpolate": ("interpolate", "{dataset}", "{out}"),
    "emulate-spad": ("emulate", "spad", "{dataset}", "{out}"),
    "emulate-rgb": ("emulate", "rgb", "{dataset}", "{out}"),
    "emulate-events": ("emulate", "events", "{dataset}", "{out}"),
    "emulate-imu": ("emulate", "imu", "{dataset}", "{out}"),
    "emulate-itof": ("emulate", "itof", "{dataset}", "{out}", "--taps", "3"),  # the 3-frame fixture: 1 frame
    "emulate-lidar": ("emulate", "lidar", "{dataset}", "{out}"),
    "img-to-npy": ("convert", "img-to-npy", "{dataset}", "{out}"),
    "npy-to-img": ("convert", "npy-to-img", "{dataset}", "{out}"),
    "export-nerfstudio": ("export", "nerfstudio", "{dataset}", "{out}"),
}


def _reader_cases() -> dict[str, Case]:
    out: dict[str, Case] = {}
    for name, argv in DATASET_READERS.items():
        argv = argv if len(argv) > 1 else (*argv, "{dataset}")
        validate = name == "validate"

        def case(
            dataset: str, match: str, code: int = 2, bug: str = "", argv: tuple[str, ...] = argv
        ) -> Case:
            return Case(tuple(a.replace("{dataset}", dataset) for a in argv), match, code, bug)

        out[f"{name}-missing"] = case("{ws}/missing", "")
        for kind in ("not-json", "frames-not-list", "escaping-path", "bad-matrix"):
            out[f"{name}-{kind}"] = case(
                "{ws}/" + kind,
                "" if validate else "transforms.json" if kind != "escaping-path" else "escapes",
                code=1 if validate else 2,
            )
        if name not in ("validate", "info"):
            out[f"{name}-empty-folder"] = case("{ws}/empty", "transforms.json")
        if len(argv) == 4 or (len(argv) == 3 and argv[0] != "validate"):
            pass
        if "{out}" in argv:
            bug = ""
            src = "{npy}" if name == "npy-to-img" else "{seq}"
            out[f"{name}-output-is-file"] = Case(
                tuple(a.replace("{dataset}", src).replace("{out}", "{ws}/afile") for a in argv),
                "afile",
                2,
                bug,
            )
            out[f"{name}-output-read-only"] = Case(
                tuple(a.replace("{dataset}", src).replace("{out}", "{ro}/x") for a in argv), "", 2, bug
            )
    out["validate-wrong-shape-npy"] = case_npy = Case(("validate", "{npy-bad}"), "", 1)
    del case_npy
    out["npy-to-img-wrong-shape-npy"] = C("convert", "npy-to-img", "{npy-bad}", "{out}", match="shape")
    out["preview-wrong-shape-npy"] = C("preview", "{npy-bad}", "{out}", match="shape")
    out["emulate-spad-npy"] = C("emulate", "spad", "{npy-bad}", "{out}", match="NPY")
    out["interpolate-factor-one"] = C("interpolate", "{seq}", "{out}", "--factor", "1", match="factor")
    out["interpolate-factor-zero"] = C("interpolate", "{seq}", "{out}", "--factor", "0", match="factor")
    out["interpolate-workers-negative"] = C(
        "interpolate", "{seq}", "{out}", "--workers", "-1", match="workers"
    )
    out["interpolate-beta-zero"] = C("interpolate", "{seq}", "{out}", "--beta", "0", match="beta")
    out["export-nerfstudio-max-depth-negative"] = C(
        "export", "nerfstudio", "{seq}", "{out}", "--max-depth", "-1", match="max-depth"
    )
    out["export-nerfstudio-output-holds-files"] = C(
        "export", "nerfstudio", "{seq}", "{ws}/s-one", match="overwrite"
    )
    out["preview-fps-zero"] = C("preview", "{seq}", "{out}", "--fps", "0", match="fps")
    out["preview-cell-zero"] = C(
        "preview",
        "{seq}",
        "{out}",
        "--cell",
        "0",
        "0",
        match="cell",
    )
    out["emulate-rgb-chunk-zero"] = C(
        "emulate",
        "rgb",
        "{seq}",
        "{out}",
        "--chunk-size",
        "0",
        match="chunk_size",
    )
    out["img-to-npy-bitpack-dim-bad"] = C(
        "convert", "img-to-npy", "{seq}", "{out}", "--bitpack-dim", "x", match="bitpack-dim"
    )
    out["unknown-command"] = C("render-everything", match="render-everything")
    out["validate-not-a-dataset"] = C("validate", "{ws}/empty", match="no sequences")
    return out


CASES: dict[str, Case] = {
    **{f"render-animation-{k}": v for k, v in RENDER.items()},
    **{f"create-datasets-{k}": v for k, v in CREATE.items()},
    **{f"make-scenes-{k}": v for k, v in SCENES.items()},
    **{f"demo-{k}": v for k, v in DEMO.items()},
    **_reader_cases(),
}


def test_the_table_covers_every_command() -> None:
    covered = {c.argv[0] for c in CASES.values() if c.argv and c.argv[0] in cli.COMMANDS}
    assert covered == set(cli.COMMANDS)  # a new command must get rows here
    emulate = {c.argv[1] for c in CASES.values() if c.argv[:1] == ("emulate",)}
    assert emulate == set(SENSORS)  # every emulator gets the bad-input rows
    assert {c.argv[1] for c in CASES.values() if c.argv[:1] == ("convert",)} == {"img-to-npy", "npy-to-img"}


# ------------------------------------------------------------------------------------------ fixtures


def _read_only_mount(folder: Path) -> Iterator[Path]:
    src, mnt = folder / "ro-source", folder / "ro"
    src.mkdir()
    mnt.mkdir()
    ok = os.geteuid() == 0 and not subprocess.run(["mount", "--bind", str(src), str(mnt)]).returncode
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)]).returncode == 0:
        try:
            yield mnt
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        return
    if ok:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    yield Path("/proc/camsim-read-only")  # nobody, root included, can create anything there


@pytest.fixture(scope="module")
def workspace(
    demo_scenes: list[Path], worker: BlenderWorker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Inputs of every row: real scenes, a rendered sequence, its NPY form, and broken variants."""
    ws = tmp_path_factory.mktemp("bad-inputs")
    (ws / "empty").mkdir()
    (ws / "afile").write_text("I am a file\n")
    (ws / "notblend.blend").write_text("not a blend file\n")
    (ws / "truncated.blend").write_bytes(demo_scenes[0].read_bytes()[:600])
    worker.build_scene(TESTS / "scenes" / "analytic.py", ws / "nocam.blend", no_camera=True)
    for name in ("notblend", "truncated", "nocam"):
        (ws / f"s-{name}").mkdir()
        (ws / f"s-{name}" / f"{name}.blend").write_bytes((ws / f"{name}.blend").read_bytes())
    seq = ws / "seq"
    assert cli_run("render-animation", str(demo_scenes[0]), str(seq), "--frame-start", "1", "--frame-end", "3",
                   *TINY, "--render-config.log-dir", str(ws.parent / "logs")).code == 0  # fmt: skip
    (ws / "s-one").mkdir()  # a dataset of one scene whose only sequence is `seq`
    (ws / "s-one" / demo_scenes[0].name).write_bytes(demo_scenes[0].read_bytes())
    (ws / "ds" / "renders" / demo_scenes[0].stem).mkdir(parents=True)
    shutil.copytree(seq, ws / "ds" / "renders" / demo_scenes[0].stem / "000001-000003-x1")
    assert cli_run("convert", "img-to-npy", str(seq), str(ws / "npy")).code == 0
    bad = ws / "npy-bad"
    bad.mkdir()
    for f in (ws / "npy").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    np.save(bad / "depths.npy", np.zeros((3, 12, 16, 2), np.float32))  # 2 channels where depth has 1
    np.save(bad / "frames.npy", np.zeros((3, 12, 16), np.uint8))  # no channel axis
    meta = json.loads((seq / "transforms.json").read_text())
    for kind, text in {
        "not-json": "{ this is not json",
        "frames-not-list": json.dumps({**meta, "frames": {"0": meta["frames"][0]}}),
        "escaping-path": json.dumps({**meta, "frames": [{**meta["frames"][0], "file_path": "../../afile"}]}),
        "bad-matrix": json.dumps({**meta, "frames": [{**meta["frames"][0], "transform_matrix": [[1, 0], [0, 1]]}]}),
    }.items():  # fmt: skip
        (ws / kind).mkdir()
        (ws / kind / "transforms.json").write_text(text)
    mount = _read_only_mount(ws.parent)
    ro = next(mount)
    try:
        yield {"ws": str(ws), "scene": str(demo_scenes[0]), "scenes": str(demo_scenes[0].parent),
               "seq": str(seq), "npy": str(ws / "npy"), "npy-bad": str(bad), "ro": str(ro)}  # fmt: skip
    finally:
        next(mount, None)


@dataclass
class Result:
    code: int
    out: str
    err: str
    exception: BaseException | None = None


def cli_run(*argv: str) -> Result:
    """Run `camsim ARGV` in this process; any exception but SystemExit is reported, not raised."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code, exc = 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(argv))
        except SystemExit as e:
            code = int(e.code or 0)
        except BaseException as e:
            code, exc = -1, e
    return Result(code, out.getvalue(), err.getvalue(), exc)


def _snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    snap = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "dir"
        snap[str(p.relative_to(root))] = (digest, st.st_ino, st.st_mtime_ns)  # a replaced file: new inode
    return snap


def _expand(argv: tuple[str, ...], places: dict[str, str]) -> list[str]:
    out = []
    for a in argv:
        for k, v in places.items():
            a = a.replace("{" + k + "}", v)
        out.append(a)
    return out


@pytest.mark.blender
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_error_line_exit_2_and_changes_nothing(
    name: str, workspace: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request
) -> None:
    case = CASES[name]
    if case.bug:
        request.applymarker(pytest.mark.xfail(reason=case.bug, strict=True))
    monkeypatch.chdir(tmp_path)  # worker logs (default ./logs) land outside the inputs
    monkeypatch.setenv("CAMSIM_LOG", "WARNING")
    ws = Path(workspace["ws"])
    before = _snapshot(ws)
    argv = _expand(case.argv, {**workspace, "out": str(tmp_path / "out")})
    res = cli_run(*argv)
    assert res.exception is None, f"crashed: {type(res.exception).__name__}: {res.exception}"
    assert "Traceback" not in res.err + res.out
    assert res.code == case.code, f"exit {res.code}\nstdout: {res.out[-1500:]}\nstderr: {res.err[-1500:]}"
    if case.code == 2:
        lines = [ln for ln in res.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("camsim: error: "), res.err
        assert case.match.lower() in lines[0].lower(), lines[0]
        if case.argv[0] in ("render-animation", "create-datasets"):
            assert not (tmp_path / "out").exists(), "a refused render created its output folder"
    assert _snapshot(ws) == before, "bad input modified files that existed before"


@pytest.mark.blender
@pytest.mark.parametrize(
    "name", ["render-animation-not-a-blend", "create-datasets-scenes-no-camera", "render-animation-device-unknown",
             "info-missing", "emulate-spad-not-json"],
)  # fmt: skip
def test_bad_input_through_the_console_script(name: str, workspace: dict[str, str], tmp_path: Path) -> None:
    argv = _expand(CASES[name].argv, {**workspace, "out": str(tmp_path / "out")})
    env = {**os.environ, "CAMSIM_LOG": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "camsim", *argv], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("camsim: error: "), done.stderr
