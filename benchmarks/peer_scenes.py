"""Scenes for benchmarks/interpolate_peers.py. Runs INSIDE Blender (the worker's build_scene): bpy + stdlib only.

`build(kind=...)` with kind one of:

- "shadows": a fixed camera over a finely textured floor; a sphere and a spinning cube slide across it
  under a low sun, so their long, sharp shadows sweep the floor (a shadow moves with its caster, not
  with the floor it falls on).
- "lines": a fixed camera facing a textured wall; in front of it a frame of bars much thinner than a pixel
  (vertical, horizontal and diagonal) slides diagonally, and a thin three-axis cross turns beside it.
- "occlusion": a panning camera over a busy Voronoi/noise background; several heavily textured objects at
  different depths cross each other in opposite directions (occlusions and disocclusions everywhere).

Every motion is linear in time (constant speed) and centred on frame CENTRE, so the speed in pixels per
frame scales exactly with 1 / keyframe multiplier and the action stays in view around CENTRE.
Frames 1-1200 at 50 fps (long enough for the fastest motions' multipliers), 160x120 by default (the benchmark sets the size).
"""

from __future__ import annotations

import math

import bpy

FRAME_START, FRAME_END, FPS, CENTRE = 1, 1200, 50, 600


def _linear(obj) -> None:
    anim = obj.animation_data
    if anim is None or anim.action is None:
        return
    action = anim.action
    curves = []
    if hasattr(action, "fcurves"):
        curves = list(action.fcurves)
    else:  # Blender 5: layered actions
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    curves.extend(bag.fcurves)
    for fc in curves:
        fc.extrapolation = "LINEAR"
        for kp in fc.keyframe_points:
            kp.interpolation = "LINEAR"


def _move(obj, path: str, at_centre, per_frame) -> None:
    """Keyframe `path` so it passes `at_centre` at CENTRE and changes by `per_frame` each frame."""
    for f in (FRAME_START, FRAME_END):
        setattr(obj, path, tuple(c + v * (f - CENTRE) for c, v in zip(at_centre, per_frame, strict=True)))
        obj.keyframe_insert(path, frame=f)
    _linear(obj)


def _material(name: str, color, texture: str | None = None, scale: float = 40.0, contrast=(0.6, 1.0),
              roughness: float = 0.6):  # fmt: skip
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    if texture is None:
        return mat
    if texture == "noise":
        tex = nodes.new("ShaderNodeTexNoise")
        tex.inputs["Detail"].default_value = 8.0
        out = tex.outputs["Fac"]
    elif texture == "voronoi":
        tex = nodes.new("ShaderNodeTexVoronoi")
        out = tex.outputs["Distance"]
    else:
        tex = nodes.new("ShaderNodeTexChecker")
        out = tex.outputs["Fac"]
    tex.inputs["Scale"].default_value = scale
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*(c * contrast[0] for c in color), 1.0)
    ramp.color_ramp.elements[1].color = (*(min(1.0, c * contrast[1]) for c in color), 1.0)
    if texture == "noise":  # noise values gather around 0.5: stretch them over the whole ramp
        ramp.color_ramp.elements[0].position, ramp.color_ramp.elements[1].position = 0.3, 0.7
    links.new(out, ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _obj(op, name: str, mat, **kw):
    op(**kw)
    obj = bpy.context.object
    obj.name = obj.data.name = name
    obj.data.materials.append(mat)
    return obj


def _camera(scene, location, rotation, lens: float = 35.0):
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.data.lens = lens
    scene.collection.objects.link(cam)
    cam.location, cam.rotation_euler = location, rotation
    scene.camera = cam
    return cam


def _sun(scene, rotation, energy: float = 4.0, angle_deg: float = 0.5) -> None:
    data = bpy.data.lights.new("Sun", type="SUN")
    data.energy = energy
    data.angle = math.radians(angle_deg)
    sun = bpy.data.objects.new("Sun", data)
    sun.rotation_euler = rotation
    scene.collection.objects.link(sun)


def _shadows(scene) -> None:
    _sun(scene, (math.radians(68), 0.0, math.radians(-35)), energy=5.0)
    _camera(scene, (0.0, -7.0, 5.0), (math.radians(52), 0.0, 0.0))
    floor = _obj(bpy.ops.mesh.primitive_plane_add, "Floor", _material("FloorMat", (0.75, 0.7, 0.6), "noise", 4.0,
                                                                     (0.55, 1.0)), size=40)  # fmt: skip
    ball = _obj(bpy.ops.mesh.primitive_uv_sphere_add, "Ball", _material("BallMat", (0.8, 0.2, 0.15)),
                radius=0.45, location=(0, 0, 0.9), segments=32, ring_count=16)  # fmt: skip
    bpy.ops.object.shade_smooth()
    _move(ball, "location", (-0.6, 0.4, 1.1), (0.012, -0.004, 0.0))
    cube = _obj(bpy.ops.mesh.primitive_cube_add, "Cube", _material("CubeMat", (0.2, 0.4, 0.8)), size=0.6)
    _move(cube, "location", (0.9, -0.5, 0.8), (-0.010, 0.003, 0.0))
    _move(cube, "rotation_euler", (0.3, 0.2, 0.0), (0.0, 0.0, 0.004))
    # A pole standing still: its shadow is still while the casters' shadows cross it.
    _obj(bpy.ops.mesh.primitive_cylinder_add, "Pole", _material("PoleMat", (0.5, 0.5, 0.5)), radius=0.08,
         depth=1.6, location=(1.8, 1.0, 0.8))  # fmt: skip
    del floor


def _lines(scene) -> None:
    _sun(scene, (math.radians(40), 0.0, math.radians(20)), energy=3.0)
    _camera(scene, (0.0, -8.0, 0.0), (math.radians(90), 0.0, 0.0), lens=35.0)
    wall = _obj(bpy.ops.mesh.primitive_plane_add, "Wall", _material("WallMat", (0.25, 0.3, 0.35), "noise", 6.0,
                                                                   (0.7, 1.3)), size=30, location=(0, 4, 0))  # fmt: skip
    wall.rotation_euler = (math.radians(90), 0.0, 0.0)
    # 160 px across about 8.2 m at the frame's depth (lens 35 mm, 36 mm sensor, 8 m away): 0.05 m per pixel,
    # so 0.012 m thick bars are a quarter of a pixel wide at 160x120 (half a pixel at 320x240).
    white = _material("BarMat", (0.95, 0.95, 0.9), roughness=0.3)
    frame = bpy.data.objects.new("Fence", None)
    scene.collection.objects.link(frame)
    t = 0.012
    bars = []
    for i in range(5):
        bars.append(((-1.2 + 0.6 * i, 0, 0), (t, t, 2.4), (0, 0, 0)))  # vertical
        bars.append(((0, 0, -1.2 + 0.6 * i), (2.4, t, t), (0, 0, 0)))  # horizontal
    bars.append(((0, 0, 0), (3.3, t, t), (0, math.radians(45), 0)))  # diagonals
    bars.append(((0, 0, 0), (3.3, t, t), (0, math.radians(-45), 0)))
    for i, (loc, dims, rot) in enumerate(bars):
        bar = _obj(bpy.ops.mesh.primitive_cube_add, f"Bar_{i}", white, size=1.0, location=loc)
        bar.scale = dims
        bar.rotation_euler = rot
        bar.parent = frame
    _move(frame, "location", (-0.9, 0.0, 0.1), (0.010, 0.0, 0.004))
    # A thin three-axis cross, turning (its lines sweep at every angle).
    axes = bpy.data.objects.new("Axes", None)
    scene.collection.objects.link(axes)
    colours = [(0.9, 0.15, 0.1), (0.1, 0.8, 0.2), (0.15, 0.3, 0.95)]
    for i, dims in enumerate([(1.6, t, t), (t, 1.6, t), (t, t, 1.6)]):
        ax = _obj(
            bpy.ops.mesh.primitive_cube_add, f"Axis_{i}", _material(f"AxisMat{i}", colours[i]), size=1.0
        )
        ax.scale = dims
        ax.parent = axes
    axes.location = (2.2, -1.0, -0.3)
    _move(axes, "rotation_euler", (0.4, 0.3, 0.0), (0.0, 0.0015, 0.004))


def _occlusion(scene) -> None:
    _sun(scene, (math.radians(45), 0.0, math.radians(30)), energy=3.0, angle_deg=3.0)
    world = scene.world
    world.node_tree.nodes.get("Background").inputs["Strength"].default_value = 1.0
    cam = _camera(scene, (0.0, -9.0, 1.5), (math.radians(85), 0.0, 0.0), lens=30.0)
    _move(cam, "location", (0.0, -9.0, 1.5), (0.012, 0.0, 0.0))
    back = _obj(bpy.ops.mesh.primitive_plane_add, "Back", _material("BackMat", (0.6, 0.5, 0.3), "voronoi", 12.0,
                                                                    (0.2, 1.2)), size=40, location=(0, 6, 0))  # fmt: skip
    back.rotation_euler = (math.radians(90), 0.0, 0.0)
    _obj(bpy.ops.mesh.primitive_plane_add, "Ground", _material("GroundMat", (0.4, 0.45, 0.35), "checker", 20.0,
                                                              (0.5, 1.0)), size=40, location=(0, 0, -1.5))  # fmt: skip
    specs = [
        ("cube", (0.9, 0.3, 0.2), "noise", (-0.5, 2.0, 0.8), (0.048, 0, 0), 1.4),
        ("sphere", (0.2, 0.7, 0.3), "checker", (0.4, 0.5, 0.2), (-0.056, 0, 0.008), 1.2),
        ("cylinder", (0.3, 0.3, 0.9), "voronoi", (0.0, -1.5, 1.0), (0.040, 0, -0.012), 0.8),
        ("cube", (0.9, 0.8, 0.2), "checker", (0.8, -3.0, 0.4), (-0.032, 0, 0), 0.6),
    ]
    ops = {
        "cube": lambda s, mat, name: _obj(bpy.ops.mesh.primitive_cube_add, name, mat, size=s),
        "sphere": lambda s, mat, name: _obj(
            bpy.ops.mesh.primitive_uv_sphere_add, name, mat, radius=s / 2, segments=32, ring_count=16
        ),
        "cylinder": lambda s, mat, name: _obj(
            bpy.ops.mesh.primitive_cylinder_add, name, mat, radius=s / 2, depth=2 * s, vertices=32
        ),
    }
    for i, (kind, colour, tex, centre, speed, size) in enumerate(specs):
        obj = ops[kind](size, _material(f"Mat{i}", colour, tex, 8.0, (0.3, 1.1)), f"{kind.capitalize()}_{i}")
        if kind != "cube":
            bpy.ops.object.shade_smooth()
        _move(obj, "location", centre, speed)
        _move(obj, "rotation_euler", (0.2 * i, 0.1, 0.0), (0.0, 0.0, 0.012 * (1 if i % 2 else -1)))


def build(kind: str = "shadows") -> dict:
    scene = bpy.context.scene
    scene.name = f"peer_{kind}"
    scene.frame_start, scene.frame_end = FRAME_START, FRAME_END
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = 160, 120
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("World")
    scene.world = world
    world.use_nodes = True
    bg = world.node_tree.nodes.get("Background")
    bg.inputs["Color"].default_value = (0.15, 0.2, 0.35, 1.0)
    bg.inputs["Strength"].default_value = 0.5
    {"shadows": _shadows, "lines": _lines, "occlusion": _occlusion}[kind](scene)
    scene.frame_set(CENTRE)
    return {"scene": scene.name, "centre": CENTRE}
