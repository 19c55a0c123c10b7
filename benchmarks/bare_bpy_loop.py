"""The baseline: the smallest bpy script that renders the same frames and saves the same passes.

Usage: python bare_bpy_loop.py OUT_DIR WIDTH HEIGHT SAMPLES THREADS SCENE:FIRST:LAST [...]
Per frame: one Cycles render, the RGB PNG, and one multilayer EXR with depth, normal, vector and
object-index passes. Prints the wall time of the render loop (after `import bpy`).
"""

import sys
import time

import bpy


def main(argv: list[str]) -> None:
    out, width, height, samples, threads = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    t0 = time.perf_counter()
    for spec in argv[5:]:
        path, first, last = spec.rsplit(":", 2)
        bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=False)
        sc = bpy.context.scene
        sc.render.engine = "CYCLES"
        sc.cycles.device = "CPU"
        sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = width, height, 100
        sc.render.threads_mode, sc.render.threads = "FIXED", threads
        sc.cycles.samples = samples
        sc.cycles.use_adaptive_sampling, sc.cycles.adaptive_threshold = True, 0.05
        sc.cycles.use_denoising = True
        sc.render.use_motion_blur = False
        sc.render.use_compositing = False
        vl = sc.view_layers[0]
        vl.use_pass_z = vl.use_pass_normal = vl.use_pass_vector = vl.use_pass_object_index = True
        settings = sc.render.image_settings
        for f in range(int(first), int(last) + 1):
            sc.frame_set(f)
            bpy.ops.render.render()
            settings.media_type, settings.file_format, settings.color_depth = "IMAGE", "PNG", "8"
            bpy.data.images["Render Result"].save_render(f"{out}/frame_{f:06d}.png")
            settings.media_type, settings.file_format = "MULTI_LAYER_IMAGE", "OPEN_EXR_MULTILAYER"
            settings.color_depth, settings.exr_codec = "32", "ZIP"
            bpy.data.images["Render Result"].save_render(f"{out}/passes_{f:06d}.exr")
    print(f"BARE_SECONDS {time.perf_counter() - t0:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
