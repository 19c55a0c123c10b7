"""Host side of the ground-truth oracle (tests/scenes/oracle_blender.py) and the judge of a rendered sequence.

`oracle(blend, out)` ray-casts the source .blend in a fresh Blender process with the cameras the
sequence in `out` recorded, and returns one OracleFrame per frame; `compare(out, frames)` measures
the rendered ground truth against it. Nothing here converts Blender data the way camsim does: camsim
is used only to READ the files it wrote (camsim.fileio, camsim.transforms).

Judging (issue 12):
  - ids: the rendered id equals the oracle's on > 99.5 % of ALL pixels (both come from the ray
    through the pixel centre);
  - depth: relative error < 1e-4 on interior pixels (3x3 oracle neighbourhood on one object, depth
    smooth there) where rendered and oracle ids agree;
  - forward flow: end-point error mean < 0.05 px and 99th percentile < 0.2 px on interior pixels
    where ids agree and the oracle defines a flow;
  - cameras: the recorded pose, intrinsics and camera name equal what Blender reports for the frame.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camsim import transforms
from camsim.fileio import read_exr

ORACLE_SCRIPT = Path(__file__).parent / "scenes" / "oracle_blender.py"

ID_AGREEMENT = 0.995
DEPTH_REL = 1e-4
FLOW_EPE_MEAN = 0.05
FLOW_EPE_P99 = 0.2
INTRINSICS_ATOL = 1e-3  # pixels
ROTATION_ATOL = 1e-5
TRANSLATION_RTOL = 1e-5  # relative to 1 + distance from the origin (metres)
MIN_PIXELS = 50  # fewer comparable pixels than this is itself a failure
MOVING_PX = 0.5  # a pixel "moves" when its true forward flow is at least this long


@dataclass
class OracleFrame:
    frame: int
    depth: np.ndarray
    """(H, W) planar depth in BLENDER UNITS (multiply by metres_per_unit to compare), inf = no hit."""
    ids: np.ndarray
    """(H, W) int64 ids through the sequence's segmentation_ids: 0 = no hit, -1 = a name it lacks."""
    names: list[str]
    """Qualified object names (`name`, or `name [library path]` for linked objects) the oracle hit."""
    name_index: np.ndarray
    """(H, W) int32 index into `names`, -1 = no hit."""
    flow: np.ndarray
    """(H, W, 2) forward flow in pixels (x right, y down); NaN where the oracle defines none."""
    camera: str
    """The active camera at this frame, as Blender reports it."""
    K: np.ndarray
    """3x3 intrinsics Blender's camera gives (from Camera.view_frame)."""
    c2w: np.ndarray
    """4x4 camera-to-world from the camera's matrix_world, translation in BLENDER UNITS."""
    stats: dict[str, int] = field(default_factory=dict)
    engine: str = ""
    metres_per_unit: float = 1.0
    """scene.unit_settings.scale_length of the file (not the sequence's claim)."""


def _command(blend: Path, request: Path, npz: Path) -> list[str]:
    args = ["--blend", str(blend), "--request", str(request), "--out", str(npz)]
    blender = os.environ.get("CAMSIM_TEST_BLENDER")
    if blender:
        return [blender, "-b", "--factory-startup", "--python", str(ORACLE_SCRIPT), "--", *args]
    return [sys.executable, str(ORACLE_SCRIPT), *args]


def recorded_cameras(meta: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Each frame's recorded camera, translations converted from metres to Blender units."""
    mpu = float(meta.get("metres_per_unit", 1.0))
    cams = {}
    for i, fr in enumerate(meta["frames"]):
        c2w = np.asarray(fr["transform_matrix"], dtype=np.float64).copy()
        c2w[:3, 3] /= mpu
        k = transforms.intrinsics(meta, i)
        cams[int(fr["frame_number"])] = {
            "c2w": c2w.tolist(), "fl_x": k[0, 0], "fl_y": k[1, 1], "cx": k[0, 2], "cy": k[1, 2],
        }  # fmt: skip
    return cams


def oracle(
    blend: Path, out: Path, scene: str | None = None, frames: list[int] | None = None, timeout: float = 600
) -> dict[int, OracleFrame]:
    """Ray-cast `blend` (scene `scene`, default: the one the file opens on) with the cameras of the
    rendered sequence in `out`, for `frames` (default: every frame of the sequence)."""
    meta = transforms.read(out)
    if float(meta.get("keyframe_multiplier", 1.0)) != 1.0:
        raise ValueError("the oracle plays scenes at their own frame rate (keyframe_multiplier 1 only)")
    cams = recorded_cameras(meta)
    frames = sorted(cams) if frames is None else sorted(int(f) for f in frames)
    request = {"scene": scene, "w": meta["w"], "h": meta["h"], "frames": frames,
               "cameras": {str(f): c for f, c in cams.items()}}  # fmt: skip
    ids_of = {name: int(i) for i, name in meta.get("segmentation_ids", {}).items()}
    with tempfile.TemporaryDirectory(prefix="camsim-oracle") as tmp:
        req, npz = Path(tmp) / "request.json", Path(tmp) / "oracle.npz"
        req.write_text(json.dumps(request))
        proc = subprocess.run(_command(blend, req, npz), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not npz.exists():
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise RuntimeError(f"oracle failed (exit {proc.returncode}) on {blend}:\n{tail}")
        with np.load(npz) as data:
            arrays = {k: data[k] for k in data.files}
    names = json.loads(str(arrays["name_list"]))
    lut = np.array([ids_of.get(n, -1) for n in names] + [0], dtype=np.int64)  # index -1 -> 0 (no hit)
    cam_names = json.loads(str(arrays["camera_names"]))
    stats = json.loads(str(arrays["stats"]))
    result = {}
    for i, f in enumerate(arrays["frames"].tolist()):
        kk = arrays["camera_k"][i]
        result[f] = OracleFrame(
            frame=f,
            depth=arrays["depth"][i],
            ids=lut[arrays["names"][i]],
            names=names,
            name_index=arrays["names"][i],
            flow=arrays["flow"][i],
            camera=cam_names[i],
            K=np.array([[kk[0], 0.0, kk[2]], [0.0, kk[1], kk[3]], [0.0, 0.0, 1.0]]),
            c2w=arrays["camera_c2w"][i],
            stats=stats,
            engine=str(arrays["engine"]),
            metres_per_unit=float(arrays["metres_per_unit"]),
        )
    return result


# ------------------------------------------------------------------------------------------ judging


def interior(of: OracleFrame) -> np.ndarray:
    """Pixels whose 3x3 oracle neighbourhood is one object (or all background) with smooth depth,
    away from the image border (the pixel filter reaches into the neighbours)."""
    idx = of.name_index
    h, w = idx.shape
    ok = np.zeros((h, w), dtype=bool)
    centre = idx[1:-1, 1:-1]
    same = np.ones_like(centre, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= idx[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] == centre
    d = np.where(np.isfinite(of.depth), of.depth, 0.0)
    c = d[1:-1, 1:-1]
    smooth = np.ones_like(same)
    for (ay, ax), (by, bx) in (((0, -1), (0, 1)), ((-1, 0), (1, 0)), ((-1, -1), (1, 1)), ((-1, 1), (1, -1))):
        second = (
            d[1 + ay : h - 1 + ay, 1 + ax : w - 1 + ax] + d[1 + by : h - 1 + by, 1 + bx : w - 1 + bx] - 2 * c
        )
        smooth &= np.abs(second) <= 0.01 * np.abs(c)
    ok[1:-1, 1:-1] = same & smooth
    return ok


@dataclass
class FrameMetrics:
    frame: int
    id_agreement: float
    depth_pixels: int
    depth_rel_max: float
    depth_rel_p99: float
    flow_pixels: int
    flow_epe: np.ndarray = field(repr=False)
    flow_speed: np.ndarray = field(repr=False)
    """|oracle flow| of the judged pixels (same order as flow_epe)."""
    camera_problems: list[str] = field(default_factory=list)

    @property
    def flow_epe_mean(self) -> float:
        return float(self.flow_epe.mean()) if self.flow_epe.size else float("nan")

    @property
    def flow_epe_p99(self) -> float:
        return float(np.percentile(self.flow_epe, 99)) if self.flow_epe.size else float("nan")


@dataclass
class Metrics:
    frames: list[FrameMetrics]
    flow_expected: bool
    """True when the oracle defined a flow for some frame (so flow must be judged)."""

    @property
    def id_agreement(self) -> float:
        return min(m.id_agreement for m in self.frames)

    @property
    def depth_pixels(self) -> int:
        return sum(m.depth_pixels for m in self.frames)

    @property
    def depth_rel_max(self) -> float:
        return max((m.depth_rel_max for m in self.frames if m.depth_pixels), default=float("nan"))

    @property
    def flow_epe(self) -> np.ndarray:
        return np.concatenate([m.flow_epe for m in self.frames])

    @property
    def flow_pixels(self) -> int:
        return int(self.flow_epe.size)

    def moving_pixels(self, speed: float = MOVING_PX) -> int:
        """Judged pixels whose true flow is at least `speed` px (how much the scene tests flow)."""
        return int(sum((m.flow_speed >= speed).sum() for m in self.frames))

    @property
    def moving_epe_mean(self) -> float:
        e = np.concatenate([m.flow_epe[m.flow_speed >= MOVING_PX] for m in self.frames])
        return float(e.mean()) if e.size else float("nan")

    @property
    def flow_epe_mean(self) -> float:
        e = self.flow_epe
        return float(e.mean()) if e.size else float("nan")

    @property
    def flow_epe_p99(self) -> float:
        e = self.flow_epe
        return float(np.percentile(e, 99)) if e.size else float("nan")

    def failures(
        self, depth: bool = True, ids: bool = True, flow: bool = True, cameras: bool = True
    ) -> list[str]:
        out = []
        for m in self.frames:
            if cameras:
                out += [f"frame {m.frame}: {p}" for p in m.camera_problems]
            if ids and not m.id_agreement > ID_AGREEMENT:
                out.append(
                    f"frame {m.frame}: ids agree on {100 * m.id_agreement:.2f} % of pixels (need > 99.5 %)"
                )
            if depth and m.depth_pixels and not m.depth_rel_max < DEPTH_REL:
                out.append(f"frame {m.frame}: depth relative error max {m.depth_rel_max:.3g} "
                           f"(p99 {m.depth_rel_p99:.3g}, {m.depth_pixels} px; need < 1e-4)")  # fmt: skip
        if depth and self.depth_pixels < MIN_PIXELS:
            out.append(f"only {self.depth_pixels} interior pixels with agreeing ids to judge depth")
        if flow and self.flow_expected:
            if self.flow_pixels < MIN_PIXELS:
                out.append(f"only {self.flow_pixels} interior pixels with agreeing ids to judge flow")
            elif not (self.flow_epe_mean < FLOW_EPE_MEAN and self.flow_epe_p99 < FLOW_EPE_P99):
                out.append(f"flow EPE mean {self.flow_epe_mean:.4f} px, p99 {self.flow_epe_p99:.4f} px "
                           f"over {self.flow_pixels} px (need < 0.05 and < 0.2)")  # fmt: skip
        return out

    def summary(self) -> str:
        return (f"ids {100 * self.id_agreement:.2f} % (worst frame), depth rel max {self.depth_rel_max:.3g} "
                f"over {self.depth_pixels} px, flow EPE mean {self.flow_epe_mean:.4f} / p99 {self.flow_epe_p99:.4f}"
                f" px over {self.flow_pixels} px ({self.moving_pixels()} moving >= {MOVING_PX} px: EPE mean "
                f"{self.moving_epe_mean:.4f})")  # fmt: skip


def _camera_problems(meta: dict[str, Any], index: int, of: OracleFrame, mpu: float) -> list[str]:
    fr = meta["frames"][index]
    problems = []
    if "camera" in fr and fr["camera"] != of.camera:
        problems.append(f"recorded camera {fr['camera']!r}, Blender's active camera is {of.camera!r}")
    k = transforms.intrinsics(meta, index)
    dk = np.abs(k - of.K).max()
    if dk > INTRINSICS_ATOL:
        problems.append(f"recorded intrinsics differ from Blender's by {dk:.4g} px")
    c2w = transforms.pose(meta, index)
    dr = np.abs(c2w[:3, :3] - of.c2w[:3, :3]).max()
    if dr > ROTATION_ATOL:
        problems.append(f"recorded camera rotation differs by {dr:.3g}")
    t_true = of.c2w[:3, 3] * mpu
    dt = np.abs(c2w[:3, 3] - t_true).max()
    if dt > TRANSLATION_RTOL * (1.0 + np.abs(t_true).max()):
        problems.append(f"recorded camera position differs by {dt:.3g} m")
    return problems


def compare(out: Path, oracle_frames: dict[int, OracleFrame]) -> Metrics:
    """Judge the rendered sequence in `out` against the oracle, frame by frame."""
    meta = transforms.read(out)
    mpu = float(meta.get("metres_per_unit", 1.0))
    index = {int(fr["frame_number"]): i for i, fr in enumerate(meta["frames"])}
    frames = []
    flow_expected = False
    for f, of in sorted(oracle_frames.items()):
        i = index[f]
        fr = meta["frames"][i]
        seg = read_exr(out / fr["segmentation_file_path"]).astype(np.int64)
        depth = read_exr(out / fr["depth_file_path"]).astype(np.float64)
        flow = read_exr(out / fr["flow_file_path"], ("R", "G")).astype(np.float64)
        agree = seg == of.ids
        inner = interior(of) & agree
        hit = inner & np.isfinite(of.depth)
        truth = of.depth[hit] * mpu
        rel = np.abs(depth[hit] - truth) / truth  # inf/nan when the render saw nothing there
        rel = np.where(np.isfinite(rel), rel, np.inf)
        defined = np.isfinite(of.flow).all(-1)
        flow_expected |= bool(defined.any())
        judged = inner & defined
        epe = np.linalg.norm(flow[judged] - of.flow[judged], axis=-1)
        epe = np.where(np.isfinite(epe), epe, np.inf)
        frames.append(FrameMetrics(
            frame=f, id_agreement=float(agree.mean()), depth_pixels=int(hit.sum()),
            depth_rel_max=float(rel.max()) if rel.size else float("nan"),
            depth_rel_p99=float(np.percentile(rel, 99)) if rel.size else float("nan"),
            flow_pixels=int(judged.sum()), flow_epe=epe,
            flow_speed=np.linalg.norm(of.flow[judged], axis=-1), camera_problems=_camera_problems(meta, i, of, mpu),
        ))  # fmt: skip
    return Metrics(frames, flow_expected)
