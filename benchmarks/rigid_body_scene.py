"""A rigid-body pile for benchmarks/simulation_stepping.py. Runs INSIDE Blender (the worker's build_scene)."""

import bpy


def build(cubes=64, frames=300, size=128):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.engine = "CYCLES"
    bpy.ops.mesh.primitive_plane_add(size=40.0)
    bpy.ops.rigidbody.object_add(type="PASSIVE")
    side = max(1, round(cubes ** (1 / 3)))
    for i in range(cubes):
        x, y, z = i % side, (i // side) % side, i // (side * side)
        bpy.ops.mesh.primitive_cube_add(size=0.8, location=(x - side / 2, y - side / 2, 3.0 + 1.1 * z),
                                        rotation=(0.1 * i, 0.2 * i, 0.3 * i))  # fmt: skip
        bpy.ops.rigidbody.object_add(type="ACTIVE")
    scene.rigidbody_world.point_cache.frame_end = frames
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = (0.0, -14.0, 6.0)
    cam.rotation_euler = (1.2, 0.0, 0.0)
    scene.camera = cam
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(light)
    return {"scene": scene.name}
