"""`camsim export nerfstudio SEQ OUT`: a folder nerfstudio's `ns-train depth-nerfacto` loads as-is.

Every export is read back the way nerfstudio 1.1.5 reads it (`read_like_nerfstudio`: the Nerfstudio
dataparser's key rules, PIL's uint8 image read, `cv2.imread(IMREAD_ANYDEPTH) x depth_unit_scale_factor`,
`Cameras.generate_rays`, and the depth losses' `depth x directions_norm`, `depth > 0` mask) and the 3-D
point of every pixel is compared with `camsim.transforms.unproject` of the source sequence. With
CAMSIM_TEST_NERFSTUDIO_PYTHON=/path/to/python (Pythons with nerfstudio installed, os.pathsep-separated) the same checks run on
what nerfstudio's own code returns (tests/nerfstudio_reader.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import synthetic_plane

from camsim import cli, transforms
from camsim.export.nerfstudio import (
    choose_depth_unit,
    export_nerfstudio,
    plan_nerfstudio,
    quantise_depth,
)
from camsim.fileio import TMP_MARK, read_exr, read_image, write_exr, write_image

plane_sequence = synthetic_plane.plane_sequence  # fixture

TESTS = Path(__file__).parent
NERFSTUDIO_PYTHONS = [p for p in os.environ.get("CAMSIM_TEST_NERFSTUDIO_PYTHON", "").split(os.pathsep) if p]
"""Pythons with nerfstudio installed (several, separated by os.pathsep, check several versions)."""
EXPORT_ENTRY = ("camsim.commands.export:Export", "Write a sequence in another tool's layout (nerfstudio).")


@pytest.fixture(autouse=True)
def export_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `export` registry line of camsim.cli (added there by the lead; set here while it is missing)."""
    if "export" not in cli.COMMANDS:
        monkeypatch.setitem(cli.COMMANDS, "export", EXPORT_ENTRY)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", *argv])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# ----------------------------------------------------------------------------- nerfstudio's read path


def read_like_nerfstudio(folder: Path, depth_unit_scale_factor: float = 1e-3) -> list[dict[str, Any]]:
    """nerfstudio 1.1.5's read path, in numpy, without its pose normalisation (auto-orient, centring and
    scaling are one similarity applied to poses and depths alike; the real-nerfstudio test undoes it).

    nerfstudio_dataparser.py: frames sorted by file name; a top-level fl_x/fl_y/cx/cy/w/h is used for every
    frame, a missing one is read from each frame. base_dataset.get_numpy_image: PIL, uint8, 3 or 4 channels
    (or grey). data_utils.get_depth_image_from_path: cv2.imread(IMREAD_ANYDEPTH) * scale, INTER_NEAREST
    resize. cameras.generate_rays: pixel centres at +0.5, direction [(x-cx)/fx, -(y-cy)/fy, -1] rotated by
    the pose and normalised, `directions_norm` kept. losses.depth_loss: termination = depth * norm, used
    where depth > 0. Masks: PIL image, nonzero = sample the pixel.
    """
    meta = json.loads((folder / "transforms.json").read_text())
    frames = [meta["frames"][i] for i in np.argsort([str(folder / f["file_path"]) for f in meta["frames"]])]
    out = []
    for fr in frames:

        def get(key: str, fr: dict[str, Any] = fr) -> float:
            return float(meta[key]) if key in meta else float(fr[key])

        fx, fy, cx, cy = (get(k) for k in ("fl_x", "fl_y", "cx", "cy"))
        w, h = int(get("w")), int(get("h"))
        assert meta.get("camera_model", "OPENCV") in ("OPENCV", "PINHOLE")
        assert all(float(meta.get(k, 0.0)) == 0.0 for k in ("k1", "k2", "k3", "p1", "p2"))
        image = cv2.imread(str(folder / fr["file_path"]), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.dtype == np.uint8
        assert image.ndim == 2 or image.shape[2] in (3, 4)
        raw = cv2.imread(str(folder / fr["depth_file_path"]), cv2.IMREAD_ANYDEPTH)
        assert raw is not None and raw.dtype == np.uint16, "nerfstudio needs 16-bit depth PNGs"
        depth = cv2.resize(
            raw.astype(np.float32) * depth_unit_scale_factor, (w, h), interpolation=cv2.INTER_NEAREST
        )
        mask = None
        if "mask_path" in fr:
            mask = cv2.imread(str(folder / fr["mask_path"]), cv2.IMREAD_UNCHANGED) > 0
        c2w = np.asarray(fr["transform_matrix"], dtype=np.float64)
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        d_cam = np.stack([(u - cx) / fx, -(v - cy) / fy, -np.ones_like(u)], axis=-1)
        norm = np.linalg.norm(d_cam, axis=-1)
        dirs = (d_cam @ c2w[:3, :3].T) / norm[..., None]
        points = c2w[:3, 3] + dirs * (depth * norm)[..., None]
        rgb = image if image.ndim == 2 else image[..., [2, 1, 0, *range(3, image.shape[2])]]
        out.append({"frame": fr, "image": rgb, "depth": depth, "norm": norm, "points": points, "mask": mask,
                    "K": (fx, fy, cx, cy)})  # fmt: skip
    return out


def source_points(seq: Path) -> list[dict[str, Any]]:
    """World point, planar depth and 8-bit image of every pixel of the source, per frame (camsim's reader)."""
    meta = transforms.read(seq)
    out = []
    for i, fr in enumerate(meta["frames"]):
        depth = read_exr(seq / fr["depth_file_path"])
        K, c2w = transforms.intrinsics(meta, i), transforms.pose(meta, i)
        with np.errstate(invalid="ignore"):
            points = transforms.unproject(np.where(np.isfinite(depth), depth, 0.0), c2w, K)
        img = read_image(seq / fr["file_path"])
        if img.dtype == np.uint16:
            img = np.round(img / 257.0).astype(np.uint8)
        out.append({"depth": depth, "points": points, "image": img, "K": K})
    return out


def check_against_source(
    read: list[dict[str, Any]], source: list[dict[str, Any]], unit: float, slack: float = 1e-6
) -> float:
    """Exported depths and points match the source within half a depth unit (along the ray), background and
    non-finite depths are 0, images are the source's. Returns the largest point error in metres."""
    assert len(read) == len(source)
    worst = 0.0
    for got, src in zip(read, source, strict=True):
        fx, fy, cx, cy = got["K"]
        np.testing.assert_allclose(
            [fx, fy, cx, cy], [src["K"][0, 0], src["K"][1, 1], src["K"][0, 2], src["K"][1, 2]]
        )
        z = src["depth"].astype(np.float64)
        has = np.isfinite(z) & (z > 0)
        if got["mask"] is not None:
            has &= got["mask"]
        assert ((got["depth"] > 0) == has).all(), "depth > 0 exactly where the source has a usable depth"
        assert np.abs(got["depth"][has] - z[has]).max(initial=0) <= unit / 2 + slack + 2e-7 * z[has].max(
            initial=0
        )
        err = np.linalg.norm(got["points"][has] - src["points"][has], axis=-1)
        bound = (unit / 2 + 2e-7 * z[has]) * got["norm"][has] + slack
        assert (err <= bound).all(), float((err - bound).max())
        worst = max(worst, float(err.max(initial=0)))
        np.testing.assert_array_equal(got["image"].reshape(src["image"].shape), src["image"])
    return worst


def nerfstudio_read(python: str, folder: Path, tmp: Path, unit: float) -> list[dict[str, Any]]:
    """What nerfstudio's own dataparser, DepthDataset and ray generation return, mapped back to camsim's world."""
    dump = tmp / "nerfstudio.npz"
    subprocess.run([python, str(TESTS / "nerfstudio_reader.py"), str(folder), str(dump), repr(unit)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    d = np.load(dump)
    print(f"nerfstudio {d['version']} read {folder.name}")
    R, t, s = (
        d["dataparser_transform"][:, :3].astype(np.float64),
        d["dataparser_transform"][:, 3],
        float(d["dataparser_scale"]),
    )
    meta = json.loads((folder / "transforms.json").read_text())
    assert list(d["names"]) == sorted(f["file_path"] for f in meta["frames"])
    out = []
    for i in range(len(d["names"])):
        depth = d["depth"][i].astype(np.float64) / s  # DepthDataset scales metres by the pose scale
        norm = d["directions_norm"][i].astype(np.float64)
        p_ns = d["origins"][i] + d["directions"][i] * (d["depth"][i] * d["directions_norm"][i])[..., None]
        points = (p_ns.astype(np.float64) / s - t) @ R  # R^T (p/s - t): back to camsim's world frame
        out.append({"image": d["image"][i], "depth": depth, "norm": norm, "points": points, "mask": None,
                    "K": (d["fx"][i], d["fy"][i], d["cx"][i], d["cy"][i])})  # fmt: skip
    return out


# ----------------------------------------------------------------------------- a real render


@pytest.fixture(scope="module")
def far_zoom(build_scene, render) -> Path:
    """A camera 70 m in front of a 200 m plane: the world background shows at the sides of the wide first
    frames, the lens zooms 10 -> 15 mm (per-frame intrinsics), the camera moves, the rig is rotated."""
    blend = build_scene("export_far_zoom", kind="planes", depth=70.0, lens=10.0, animate_lens=True,
                        camera_velocity=(0.4, 0.1, 0.0), frames=(1, 4))  # fmt: skip
    return render(blend, "export-far-zoom", frame_start=1, frame_end=4)


@pytest.mark.blender
def test_export_nerfstudio_render_loads_with_depth_background_zero_and_per_frame_lens(
    far_zoom, tmp_path, capsys
):
    out = tmp_path / "ns"
    code, stdout, err = run_cli(capsys, "nerfstudio", str(far_zoom), str(out))
    assert code == 0, err
    meta = json.loads((out / "transforms.json").read_text())
    # 70 m does not fit in 65535 mm: 2 mm units, and the flag nerfstudio needs is printed.
    assert meta["depth_unit_scale_factor"] == 0.002
    assert (
        "ns-train depth-nerfacto --data" in stdout
        and "nerfstudio-data --depth-unit-scale-factor 0.002" in stdout
    )
    # An animated lens must be per frame only: a top-level fl_x would override every frame in nerfstudio.
    assert not any(k in meta for k in ("fl_x", "fl_y", "cx", "cy"))
    fls = [f["fl_x"] for f in meta["frames"]]
    assert fls[-1] == pytest.approx(1.5 * fls[0], rel=1e-6)
    read = read_like_nerfstudio(out, meta["depth_unit_scale_factor"])
    src = source_points(far_zoom)
    assert np.isinf(src[0]["depth"]).mean() > 0.05, "the scene must show the world background"
    assert (read[0]["depth"][np.isinf(src[0]["depth"])] == 0).all()
    worst = check_against_source(read, src, 0.002)
    # Half a 2 mm unit in z, stretched along the ray (up to 2.5x z at the corners of a 10 mm lens).
    assert worst <= 0.001 * max(r["norm"].max() for r in read) + 1e-6


def random_depths_and_16_bit_frames(seq: Path, seed: int = 3) -> None:
    """Depths from 2 mm to 60 m with every kind of no-depth (inf, nan, 0, negative), and 16-bit frames."""
    meta = transforms.read(seq)
    rng = np.random.default_rng(seed)
    h, w = meta["h"], meta["w"]
    for fr in meta["frames"]:
        z = np.exp(rng.uniform(np.log(0.002), np.log(60.0), (h, w))).astype(np.float32)
        z[0, :4] = [np.inf, np.nan, 0.0, -1.0]
        write_exr(seq / fr["depth_file_path"], {"Y": z})
        write_image(seq / fr["file_path"], rng.integers(0, 65536, (h, w, 3), dtype=np.uint16))


def test_export_nerfstudio_quantises_planar_depth_and_rounds_16_bit_frames(plane_sequence, tmp_path):
    seq = plane_sequence(n=3, w=20, h=16)
    random_depths_and_16_bit_frames(seq)
    [result] = export_nerfstudio(plan_nerfstudio(seq, tmp_path / "ns"))
    assert result.depth_unit_scale_factor == 0.001 and result.depth_error_m == 0.0005
    read = read_like_nerfstudio(tmp_path / "ns")
    assert all(r["depth"][0, :4].tolist() == [0, 0, 0, 0] for r in read)
    check_against_source(read, source_points(seq), 0.001)
    saved = json.loads((tmp_path / "ns" / "transforms.json").read_text())
    assert (saved["fl_x"], saved["cx"]) == (synthetic_plane.FX, 10.0) and "fl_x" not in saved["frames"][0]
    assert [f["frame_number"] for f in saved["frames"]] == [10, 11, 12]


def test_export_nerfstudio_depth_unit_choice_and_dropped_depths():
    assert choose_depth_unit(65.535) == 0.001
    assert choose_depth_unit(65.536) == 0.002
    assert choose_depth_unit(131.07) == 0.002 and choose_depth_unit(131.08) == 0.005
    assert choose_depth_unit(10_000.0) == 0.2
    assert choose_depth_unit(0.0) == choose_depth_unit(float("inf")) == 0.001
    z = np.array([0.0001, 1.2344, 1.2346, 70.0, np.inf, np.nan])
    q, dropped = quantise_depth(z, 0.001)
    assert q.tolist() == [1, 1234, 1235, 0, 0, 0] and dropped == 1  # 70 m > 65535 mm
    q, dropped = quantise_depth(z, 0.002, max_depth=50.0, invalid=np.array([0, 1, 0, 0, 0, 0], bool))
    assert q.tolist() == [1, 0, 617, 0, 0, 0] and dropped == 1


def test_export_nerfstudio_hole_masks_of_interpolated_frames(plane_sequence, tmp_path):
    seq = plane_sequence(n=3)
    meta = transforms.read(seq)
    hole = np.zeros((12, 16), np.uint8)
    hole[2:5, 3:9] = 255
    (seq / "masks").mkdir()
    write_image(seq / "masks/hole_000011.png", hole)
    meta["frames"][1].update(
        hole_mask_file_path="masks/hole_000011.png", hole_fraction=float((hole > 0).mean())
    )
    (seq / "objects.json").write_text(json.dumps({"format": "camsim-objects/1", "objects": {},
                                                  "frames": [{"frame_number": 11, "matrix_world": {"1": np.eye(4).tolist()}}]}))  # fmt: skip
    meta["objects_file_path"] = "objects.json"
    transforms.write(seq / "transforms.json", meta)
    [result] = export_nerfstudio(plan_nerfstudio(seq, tmp_path / "ns"))
    assert result.masks and result.notes and "static scene" in result.notes[0]
    read = read_like_nerfstudio(tmp_path / "ns")
    assert [r["mask"] is not None for r in read] == [True, True, True]  # nerfstudio: all frames or none
    assert read[0]["mask"].all() and (read[1]["mask"] == (hole == 0)).all()
    assert (read[1]["depth"][hole > 0] == 0).all() and (read[1]["depth"][hole == 0] > 0).all()
    check_against_source(read, source_points(seq), 0.001)


def test_export_nerfstudio_folder_of_sequences_is_mirrored(plane_sequence, tmp_path):
    plane_sequence("ds/x/a", n=2)
    plane_sequence("ds/b", n=3)
    results = export_nerfstudio(plan_nerfstudio(tmp_path / "ds", tmp_path / "ns"))
    assert [r.output.relative_to(tmp_path / "ns").as_posix() for r in results] == ["b", "x/a"]
    assert (
        len(read_like_nerfstudio(tmp_path / "ns/x/a")) == 2
        and len(read_like_nerfstudio(tmp_path / "ns/b")) == 3
    )


def test_export_nerfstudio_overwrite_replaces_only_a_previous_export(plane_sequence, tmp_path, capsys):
    long, short = plane_sequence("long", n=5), plane_sequence("short", n=2)
    out = tmp_path / "ns"
    assert run_cli(capsys, "nerfstudio", str(long), str(out))[0] == 0
    assert run_cli(capsys, "nerfstudio", str(short), str(out), "--overwrite")[0] == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["frame_00001.png", "frame_00002.png"]
    assert len(read_like_nerfstudio(out)) == 2
    assert not [p for p in tmp_path.iterdir() if TMP_MARK in p.name], "no staging folder left behind"


def _tree(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("not-a-sequence", "not a camsim sequence"),
        ("input-is-a-file", "not a sequence folder"),
        ("no-depth", "no depth"),
        ("output-not-empty", "not empty"),
        ("overwrite-foreign-files", "not part of a camsim nerfstudio export"),
        ("output-inside-input", "overlaps"),
        ("max-depth-negative", "--max-depth"),
        ("unit-zero", "--depth-unit-scale-factor"),
        ("corrupt-depth-file", "cannot read EXR"),
    ],
)
def test_export_nerfstudio_bad_input_is_one_line_and_changes_nothing(
    plane_sequence, tmp_path, capsys, case, match
):
    seq = plane_sequence(n=3)
    out = tmp_path / "ns"
    argv = ["nerfstudio", str(seq), str(out)]
    if case == "not-a-sequence":
        (tmp_path / "empty").mkdir()
        argv[1] = str(tmp_path / "empty")
    elif case == "input-is-a-file":
        argv[1] = str(seq / "transforms.json")
    elif case == "no-depth":
        meta = transforms.read(seq)
        for fr in meta["frames"]:
            del fr["depth_file_path"]
        transforms.write(seq / "transforms.json", meta)
    elif case in ("output-not-empty", "overwrite-foreign-files"):
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        argv += ["--overwrite"] if case == "overwrite-foreign-files" else []
    elif case == "output-inside-input":
        argv[2] = str(seq / "ns")
    elif case == "max-depth-negative":
        argv += ["--max-depth", "-1"]
    elif case == "unit-zero":
        argv += ["--depth-unit-scale-factor", "0"]
    elif case == "corrupt-depth-file":
        (seq / "depths/depth_000012.exr").write_bytes(b"not an exr")
    before = _tree(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("camsim: error:") and match.lower() in lines[0].lower(), (
        err
    )
    assert _tree(tmp_path) == before, "nothing written, nothing changed, no staging folder left"


def test_export_nerfstudio_cli_help_names_the_format_and_positionals(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "nerfstudio" in out
    code, out, _ = run_cli(capsys, "nerfstudio", "--help")
    assert code == 0 and "INPUT" in out and "OUTPUT" in out and "--depth-unit-scale-factor" in out


# ----------------------------------------------------------------------------- nerfstudio itself


@pytest.mark.skipif(
    not NERFSTUDIO_PYTHONS, reason="CAMSIM_TEST_NERFSTUDIO_PYTHON names no Python with nerfstudio"
)
@pytest.mark.blender
@pytest.mark.parametrize("python", NERFSTUDIO_PYTHONS)
def test_export_nerfstudio_loads_in_nerfstudio_itself(far_zoom, plane_sequence, tmp_path, python):
    seq = plane_sequence(n=4, w=20, h=16)
    random_depths_and_16_bit_frames(seq)
    for src, unit in ((seq, 0.001), (far_zoom, 0.002)):
        out = tmp_path / f"ns-{src.name}"
        [result] = export_nerfstudio(plan_nerfstudio(src, out))
        assert result.depth_unit_scale_factor == unit
        read = nerfstudio_read(python, out, tmp_path, unit)
        # nerfstudio computes in float32: 1e-4 m of slack on points up to ~100 m from the origin.
        check_against_source(read, source_points(src), unit, slack=1e-4)


def test_export_nerfstudio_npy_sequence_exports_like_its_img_source(plane_sequence, tmp_path):
    from camsim.convert import img_to_npy

    seq = plane_sequence(n=3, w=20, h=16)
    random_depths_and_16_bit_frames(seq, seed=5)
    npy = img_to_npy(seq, tmp_path / "npy")
    [result] = export_nerfstudio(plan_nerfstudio(npy, tmp_path / "ns"))
    assert result.frames == 3
    check_against_source(read_like_nerfstudio(tmp_path / "ns"), source_points(seq), 0.001)
