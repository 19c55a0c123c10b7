"""A hostile-looking scene: a registered Text datablock (runs on load when auto-exec is on) writes a marker.

Runs INSIDE Blender through the worker's build_scene (bpy + stdlib only).
"""

import bpy


def build(marker):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 2
    bpy.ops.mesh.primitive_cube_add(location=(0.0, 0.0, 0.0))
    bpy.ops.object.camera_add(location=(0.0, -6.0, 0.0), rotation=(1.5708, 0.0, 0.0))
    scene.camera = bpy.context.object
    text = bpy.data.texts.new("autorun.py")
    text.use_module = True  # "Register": Blender runs it when the file loads, if auto-exec is allowed
    text.write(f"with open({marker!r}, 'w') as fh:\n    fh.write('ran')\n")
    return {"marker": marker}
