"""The baseline: the smallest bpy script that renders the same frames and saves the same passes.

Usage: python bare_bpy_loop.py [--animation] OUT_DIR WIDTH HEIGHT SAMPLES THREADS SCENE:FIRST:LAST [...]
   or: blender -b --python-exit-code 1 -P bare_bpy_loop.py -- [--animation] OUT_DIR ... (an installed Blender)

Per frame: one Cycles render, the RGB PNG, and one multilayer EXR (32-bit float, ZIP) with depth, normal,
vector and object-index passes. `--animation`: Blender's own animation loop instead (what `blender -a`
runs: `render.render(animation=True)` writing one multilayer EXR per frame and no PNG). Prints the wall
time of the render loop (after `import bpy`).
"""

import sys
import time

import bpy


def _has_denoiser() -> bool:
    try:
        import _cycles
    except ImportError:
        return True
    return bool(getattr(_cycles, "with_openimagedenoise", True))


def setup(path: str, width: int, height: int, samples: int, threads: int):
    bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=False)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device = "CPU"
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = width, height, 100
    sc.render.threads_mode, sc.render.threads = "FIXED", threads
    sc.cycles.samples = samples
    sc.cycles.use_adaptive_sampling, sc.cycles.adaptive_threshold = True, 0.05
    sc.cycles.use_denoising = _has_denoiser()  # as camsim: Debian's Blender has no OpenImageDenoise
    sc.render.use_motion_blur = False
    sc.render.use_compositing = False
    vl = sc.view_layers[0]
    vl.use_pass_z = vl.use_pass_normal = vl.use_pass_vector = vl.use_pass_object_index = True
    return sc


def exr_settings(settings) -> None:
    if hasattr(settings, "media_type"):  # Blender 5: the media type before the file format
        settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth, settings.exr_codec = "32", "ZIP"


def main(argv: list[str]) -> None:
    animation = argv[0] == "--animation"
    argv = argv[1:] if animation else argv
    out, width, height, samples, threads = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    t0 = time.perf_counter()
    for k, spec in enumerate(argv[5:]):
        path, first, last = spec.rsplit(":", 2)
        sc = setup(path, width, height, samples, threads)
        settings = sc.render.image_settings
        if animation:
            sc.frame_start, sc.frame_end = int(first), int(last)
            sc.render.filepath = f"{out}/scene{k}_passes_######"
            exr_settings(settings)
            bpy.ops.render.render(animation=True)
            continue
        for f in range(int(first), int(last) + 1):
            sc.frame_set(f)
            bpy.ops.render.render()
            if hasattr(settings, "media_type"):
                settings.media_type = "IMAGE"
            settings.file_format, settings.color_depth = "PNG", "8"
            bpy.data.images["Render Result"].save_render(f"{out}/scene{k}_frame_{f:06d}.png")
            exr_settings(settings)
            bpy.data.images["Render Result"].save_render(f"{out}/scene{k}_passes_{f:06d}.exr")
    print(f"BARE_SECONDS {time.perf_counter() - t0:.4f}")


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:])
