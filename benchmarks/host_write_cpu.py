"""CPU-seconds the host spends per frame turning Blender's passes into ground-truth files (SequenceLayout.write_frame).

On 2 cores this is CPU taken from Cycles even though it runs beside the render: it is measured here as the
writer thread's CPU time (`time.thread_time`: the same on a loaded machine, unlike wall time). Two demo
scenes, FRAMES frames each at each SIZE (16 samples, every default ground truth and debug PNGs) are rendered
once, keeping Blender's raw multilayer EXR and the cameras of every frame; then each frame is written again
REPEATS times, whole and in parts: reading and converting the passes (`convert_passes`), writing the EXRs,
the debug PNGs, and the rest (the RGB frame's check and move, checksums); and the per-object annotations
of each frame (`Annotator.annotate`, which the writer thread runs too, mostly rasterising each object's
triangles: camsim.raster.coverage). Runs on whichever camsim is
imported, so `PYTHONPATH=/path/to/older/camsim/src python benchmarks/host_write_cpu.py` measures an older one
on the same frames (settings it lacks are left out).

    python benchmarks/host_write_cpu.py [--sizes 128 512] [--frames 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import tempfile
import time
from pathlib import Path

from common import demo_scenes

import camsim
from camsim import annotations as annotations_module
from camsim import layout as layout_module
from camsim.blender.worker import BlenderWorker, WorkerOptions
from camsim.config import RenderConfig
from camsim.groundtruth import convert_passes
from camsim.jobs import SequenceJob
from camsim.render import render_sequence


def capture(scenes: list[Path], size: int, frames: int, tmp: Path) -> tuple[list[tuple], list[tuple]]:
    """Render, keeping a copy of each frame's raw EXR and RGB file and the arguments write_frame got, and
    each annotation call (the annotator, its arguments, the geometry file's bytes)."""
    kept: list[tuple] = []
    annotated: list[tuple] = []
    original = layout_module.SequenceLayout.write_frame
    original_annotate = annotations_module.Annotator.annotate

    def annotate(self, frame, reported, geometry_file, segmentation, cam):
        blob = geometry_file.read_bytes() if geometry_file.is_file() else b""
        annotated.append((self, frame, reported, blob, segmentation.copy(), cam))
        return original_annotate(self, frame, reported, geometry_file, segmentation, cam)

    def keep(self, frame, rgb_tmp, exr_tmp, layer, cams, converted=None):
        n = len(kept)
        exr, rgb = tmp / f"raw{n}.exr", tmp / f"rgb{n}{rgb_tmp.suffix}"
        shutil.copy(exr_tmp, exr)
        shutil.copy(rgb_tmp, rgb)
        kept.append((frame, rgb, exr, layer, cams))
        return original(self, frame, rgb_tmp, exr_tmp, layer, cams, converted)

    layout_module.SequenceLayout.write_frame = keep
    annotations_module.Annotator.annotate = annotate
    try:
        config = RenderConfig(
            width=size, height=size, max_samples=16, device_type="cpu", log_dir=tmp / "logs"
        )
        with BlenderWorker(WorkerOptions(log_dir=tmp / "logs", name="host-write")) as worker:
            for i, scene in enumerate(scenes):
                job = SequenceJob(scene=scene, output=tmp / f"seq{i}", settings=config, frame_start=290,
                                  frame_end=289 + frames)  # fmt: skip
                render_sequence(worker, job)
    finally:
        layout_module.SequenceLayout.write_frame = original
        annotations_module.Annotator.annotate = original_annotate
    return kept, annotated


def cpu_per_frame(fn, frames: list[tuple], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        for args in frames:
            fn(*args)
        best = min(best, (time.thread_time() - t0) / len(frames))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"camsim from {Path(camsim.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        scenes = demo_scenes(tmp / "scenes", 2)
        for size in args.sizes:
            frames, annotated = capture(scenes, size, args.frames, tmp / f"cap{size}")
            fields = {f.name for f in dataclasses.fields(RenderConfig)}
            variants = {
                "default": {},
                "float32 flow (flow_grid 0)": {"flow_grid": 0},
                "no debug PNGs": {"debug": False},
            }
            print(f"{size}x{size}: host CPU per frame (ms), best of {args.repeats}, {len(frames)} frames")
            for name, change in variants.items():
                if not set(change) <= fields:
                    continue
                settings = RenderConfig(**change).settings
                root = tmp / f"out{size}"
                shutil.rmtree(root, ignore_errors=True)
                layout = layout_module.SequenceLayout.of(root, settings)
                root.mkdir()
                layout.make_folders()

                def whole(frame, rgb, exr, layer, cams, layout=layout, root=root):
                    shutil.copy(exr, root / "x.exr")
                    shutil.copy(rgb, root / f"x{rgb.suffix}")
                    layout.write_frame(frame, root / f"x{rgb.suffix}", root / "x.exr", layer, cams)

                def converted(frame, rgb, exr, layer, cams, layout=layout):
                    convert_passes(exr, layer, layout.kinds, cams)

                arrays = {f[2]: convert_passes(f[2], f[3], layout.kinds, f[4]) for f in frames}

                def ground_truth(frame, rgb, exr, layer, cams, layout=layout, arrays=arrays):
                    layout.write_ground_truth(frame, arrays[exr])

                total = cpu_per_frame(whole, frames, args.repeats)
                conv = cpu_per_frame(converted, frames, args.repeats)
                files = cpu_per_frame(ground_truth, frames, args.repeats)
                if name == "default":
                    geometry = tmp / "geometry.bin"

                    def annotate(annotator, frame, reported, blob, segmentation, cam, geometry=geometry):
                        geometry.write_bytes(blob)
                        annotations_module.Annotator.annotate(
                            annotator, frame, reported, geometry, segmentation, cam
                        )

                    print(f"  annotations {cpu_per_frame(annotate, annotated, args.repeats) * 1e3:7.1f} "
                          f"(per frame, {len(annotated)} frames)")  # fmt: skip
                print(f"  {name:<28} write_frame {total * 1e3:7.1f}   read + convert {conv * 1e3:6.1f}   "
                      f"EXRs + debug PNGs {files * 1e3:6.1f}   rest {(total - conv - files) * 1e3:6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
