"""Procedural demo scenes. Runs INSIDE Blender (via the worker's `build_scene`): bpy + stdlib only.

`build(seed=...)` fills the current (empty) file with an animated scene, deterministic per seed:
frames 1-600 at 50 fps, a camera on a smooth closed path looking at the action, a textured floor,
several objects of different shapes and materials (some translating, some rotating, one row
instanced with an array modifier), a sun light and a world background.
"""

from __future__ import annotations

import colorsys
import math
import random

import bpy

FRAME_START, FRAME_END, FPS = 1, 600, 50


def _material(name: str, rng: random.Random, texture: str | None = None):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    hue = rng.random()
    color = (*colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 0.9), rng.uniform(0.5, 0.9)), 1.0)
    bsdf.inputs["Base Color"].default_value = color
    bsdf.inputs["Roughness"].default_value = rng.uniform(0.3, 0.8)
    if texture == "checker":
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Scale"].default_value = 8.0
        tex.inputs["Color1"].default_value = color
        tex.inputs["Color2"].default_value = (0.7, 0.7, 0.65, 1.0)
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    elif texture == "noise":
        tex = nodes.new("ShaderNodeTexNoise")
        tex.inputs["Scale"].default_value = rng.uniform(3.0, 8.0)
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = color
        ramp.color_ramp.elements[1].color = (1.0 - color[0], 1.0 - color[1], 1.0 - color[2], 1.0)
        links.new(tex.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _link(obj, mat) -> None:
    obj.data.materials.append(mat)


def _add(kind: str, name: str, location, size: float):
    ops = {
        "cube": lambda: bpy.ops.mesh.primitive_cube_add(size=size, location=location),
        "sphere": lambda: bpy.ops.mesh.primitive_uv_sphere_add(radius=size / 2, location=location, segments=24,
                                                               ring_count=12),
        "cylinder": lambda: bpy.ops.mesh.primitive_cylinder_add(radius=size / 2, depth=size, location=location,
                                                                vertices=24),
        "cone": lambda: bpy.ops.mesh.primitive_cone_add(radius1=size / 2, depth=size, location=location, vertices=24),
        "torus": lambda: bpy.ops.mesh.primitive_torus_add(major_radius=size / 2, minor_radius=size / 6,
                                                          location=location, major_segments=24, minor_segments=8),
        "monkey": lambda: bpy.ops.mesh.primitive_monkey_add(size=size, location=location),
    }  # fmt: skip
    ops[kind]()
    obj = bpy.context.object
    obj.name = name
    obj.data.name = name
    if kind in ("sphere", "cylinder", "cone", "torus", "monkey"):
        bpy.ops.object.shade_smooth()
    return obj


def _keyframe_path(obj, points, frames, path: str = "location") -> None:
    for value, frame in zip(points, frames, strict=True):
        setattr(obj, path, value)
        obj.keyframe_insert(path, frame=frame)


def build(seed: int = 0) -> dict:
    rng = random.Random(seed)
    scene = bpy.context.scene
    scene.name = f"demo_{seed:03d}"
    scene.frame_start, scene.frame_end = FRAME_START, FRAME_END
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = 640, 480
    scene.cycles.samples = 64

    # World background: a soft sky colour.
    world = bpy.data.worlds.new("World")
    scene.world = world
    world.use_nodes = True
    bg = world.node_tree.nodes.get("Background")
    bg.inputs["Color"].default_value = (0.12 + rng.uniform(-0.04, 0.04), 0.2, 0.4, 1.0)
    bg.inputs["Strength"].default_value = 0.6
    # A display transform that keeps colours saturated (Blender 4+ defaults to AgX, which washes them out).
    scene.view_settings.view_transform = "Standard"

    # Light.
    sun_data = bpy.data.lights.new("Sun", type="SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new("Sun", sun_data)
    sun.rotation_euler = (math.radians(rng.uniform(30, 50)), 0.0, math.radians(rng.uniform(0, 360)))
    scene.collection.objects.link(sun)

    # Floor with a checker texture (gives flow and interpolation something to track).
    bpy.ops.mesh.primitive_plane_add(size=30, location=(0, 0, 0))
    floor = bpy.context.object
    floor.name = floor.data.name = "Floor"
    _link(floor, _material("FloorMat", rng, texture="checker"))

    kinds = ["cube", "sphere", "cylinder", "cone", "torus", "monkey"]
    rng.shuffle(kinds)
    frames = [FRAME_START, 150, 300, 450, FRAME_END]
    for i, kind in enumerate(kinds[:5]):
        angle = 2 * math.pi * i / 5 + rng.uniform(-0.3, 0.3)
        radius = rng.uniform(1.5, 3.5)
        size = rng.uniform(0.6, 1.2)
        base = (radius * math.cos(angle), radius * math.sin(angle), size / 2)
        obj = _add(kind, f"{kind.capitalize()}_{i}", base, size)
        _link(obj, _material(f"{kind}_mat", rng, texture="noise" if i % 2 else None))
        if i % 2 == 0:  # translating along a smooth loop
            pts = [
                (base[0] + rng.uniform(-1.5, 1.5), base[1] + rng.uniform(-1.5, 1.5), base[2])
                for _ in frames[:-1]
            ]
            _keyframe_path(obj, [*pts, pts[0]], frames)
        if i % 3 != 2:  # rotating about z (and a little about x)
            turns = rng.choice([-1, 1]) * rng.uniform(1.0, 3.0)
            obj.rotation_euler = (0.0, 0.0, 0.0)
            obj.keyframe_insert("rotation_euler", frame=FRAME_START)
            obj.rotation_euler = (rng.uniform(-0.3, 0.3), 0.0, 2 * math.pi * turns)
            obj.keyframe_insert("rotation_euler", frame=FRAME_END)

    # A row of instances: one object, an array modifier.
    row = _add("cube", "Pillars", (rng.uniform(-4, -3), rng.uniform(-4, -3), 0.4), 0.4)
    mod = row.modifiers.new("Array", type="ARRAY")
    mod.count = rng.randint(4, 7)
    mod.relative_offset_displace = (2.0, 0.0, 0.0)
    row.rotation_euler = (0.0, 0.0, rng.uniform(0, math.pi))
    _link(row, _material("PillarMat", rng, texture="noise"))

    # Camera: a smooth closed path around the action, always looking at a target.
    target = bpy.data.objects.new("CameraTarget", None)
    scene.collection.objects.link(target)
    target.location = (0.0, 0.0, 0.5)
    cam_data = bpy.data.cameras.new("Camera")
    cam_data.lens = 32.0
    cam = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    phase = rng.uniform(0, 2 * math.pi)
    sweep = rng.uniform(1.2, 1.8) * math.pi  # how far round the scene the camera travels
    key_frames = list(range(FRAME_START, FRAME_END + 1, 60))
    if key_frames[-1] != FRAME_END:
        key_frames.append(FRAME_END)
    for f in key_frames:
        t = (f - FRAME_START) / (FRAME_END - FRAME_START)
        a = phase + sweep * t
        r = 8.0 + 1.5 * math.sin(2 * math.pi * t)
        cam.location = (r * math.cos(a), r * math.sin(a), 3.5 + 1.0 * math.sin(math.pi * t))
        cam.keyframe_insert("location", frame=f)
    track = cam.constraints.new("TRACK_TO")
    track.target = target
    track.track_axis = "TRACK_NEGATIVE_Z"
    track.up_axis = "UP_Y"
    scene.frame_set(FRAME_START)
    return {"scene": scene.name, "objects": sorted(o.name for o in scene.objects)}
