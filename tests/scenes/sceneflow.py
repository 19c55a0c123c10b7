"""A scene for scene flow (tests/test_render_scene_flow.py). Runs INSIDE Blender through the worker's build_scene.

The analytic "flow" scene (tests/scenes/analytic.py: a large back plane and a 1x1 "Mover" in the rig's frame)
with, on top, the back plane cut down to `back_size` units and moved to `back_x` (the world shows beside it),
every animation linear and extrapolated linearly (frames outside the range continue the motion):
  - the camera turning by `camera_spin` radians (XYZ Euler) per frame inside the rig, besides moving;
  - the mover turning by `object_spin` radians per frame about its centre, besides moving;
  - "Flag": a square deformed by an animated shape key (not rigid);
  - "Crate": a cube in a collection that is not in the scene, drawn once through the collection instance
    "CrateEmpty", which moves: its one draw follows the empty, not its own matrix (not rigid);
  - with `not_rigid`, more objects whose surface moves without their matrix (`_not_rigid`);
  - with `motion_blur`, the scene's motion blur on.
"""

import os
import runpy

import bpy

ANALYTIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analytic.py")


def _fcurves(action):
    try:  # Blender 4.4+: layered actions
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    yield from bag.fcurves
    except AttributeError:
        yield from action.fcurves


def _key(obj, path, start, per_frame, first, last):
    setattr(obj, path, start)
    obj.keyframe_insert(path, frame=first)
    setattr(obj, path, tuple(a + w * (last - first) for a, w in zip(start, per_frame, strict=True)))
    obj.keyframe_insert(path, frame=last)


def _not_rigid(scene, rig, first, last):
    """Objects whose surface moves without their matrix moving (none drawn through an instance): "Bent" by a
    lattice parent, "Counted" by an animated array count, "Mirrored" across a moving empty, "Blob" a metaball,
    "Bevelled" a curve bevelled by another curve; and "Label" (text) and "Rope" (a curve with a bevel depth),
    rigid although Blender draws the mesh they evaluate to as an instance of themselves."""

    def cube(name, location):
        bpy.ops.mesh.primitive_cube_add(size=0.3, location=location)
        obj = bpy.context.object
        obj.name = obj.data.name = name
        obj.parent = rig
        return obj

    lattice = bpy.data.objects.new("Lattice", bpy.data.lattices.new("Lattice"))
    scene.collection.objects.link(lattice)
    lattice.parent = rig
    bent = cube("Bent", (-1.0, -0.8, -5.0))
    bent.parent, bent.parent_type = lattice, "LATTICE"
    counted = cube("Counted", (0.0, -0.8, -5.0))
    array = counted.modifiers.new("Array", "ARRAY")
    array.count = 1
    array.keyframe_insert("count", frame=first)
    array.count = 3
    array.keyframe_insert("count", frame=last)
    mirrored = cube("Mirrored", (1.0, -0.8, -5.0))
    target = bpy.data.objects.new("MirrorTarget", None)
    scene.collection.objects.link(target)
    mirrored.modifiers.new("Mirror", "MIRROR").mirror_object = target
    blob = bpy.data.objects.new("Blob", bpy.data.metaballs.new("Blob"))
    blob.data.elements.new().radius = 0.3
    blob.location, blob.parent = (-1.0, 0.8, -5.0), rig
    scene.collection.objects.link(blob)
    profile = bpy.data.objects.new("Profile", bpy.data.curves.new("Profile", "CURVE"))
    profile.data.splines.new("POLY").points.add(1)
    scene.collection.objects.link(profile)
    curve = bpy.data.curves.new("Bevelled", "CURVE")
    curve.splines.new("POLY").points.add(1)
    curve.bevel_mode, curve.bevel_object = "OBJECT", profile
    bevelled = bpy.data.objects.new("Bevelled", curve)
    bevelled.location, bevelled.parent = (1.0, 0.8, -5.0), rig
    scene.collection.objects.link(bevelled)
    # Rigid all the same, though Blender draws the mesh they evaluate to as an instance of themselves:
    label = bpy.data.objects.new("Label", bpy.data.curves.new("Label", "FONT"))
    label.data.body, label.data.size = "ab", 0.3
    label.location, label.parent = (-0.3, 0.8, -5.0), rig
    rope_curve = bpy.data.curves.new("Rope", "CURVE")
    rope_curve.splines.new("POLY").points.add(1)
    rope_curve.splines[0].points[1].co = (0.4, 0.0, 0.0, 1.0)
    rope_curve.bevel_depth = 0.05
    rope = bpy.data.objects.new("Rope", rope_curve)
    rope.location, rope.parent = (0.3, 0.8, -5.0), rig
    for obj in (label, rope):
        scene.collection.objects.link(obj)


def build(camera_spin=(0.0, 0.0, 0.0), object_spin=(0.0, 0.0, 0.0), flag=(-1.3, 0.6, -4.0),
          crate=(1.3, -0.6, -4.0), crate_velocity=(0.0, 0.05, 0.0), back_size=(8.0, 6.0), back_x=-2.0,
          not_rigid=False, motion_blur=False, **analytic):  # fmt: skip
    analytic.setdefault("frames", (1, 4))
    info = runpy.run_path(ANALYTIC)["build"](kind="flow", **analytic)
    scene = bpy.context.scene
    first, last = analytic["frames"]
    rig, back = bpy.data.objects["Rig"], bpy.data.objects["Back"]
    back.scale = (back_size[0] / 400.0, back_size[1] / 400.0, 1.0)
    back.location.x = back_x
    _key(scene.camera, "rotation_euler", (0.0, 0.0, 0.0), camera_spin, first, last)
    _key(bpy.data.objects["Mover"], "rotation_euler", (0.0, 0.0, 0.0), object_spin, first, last)

    bpy.ops.mesh.primitive_plane_add(size=0.8, location=flag)
    square = bpy.context.object
    square.name = square.data.name = "Flag"
    square.parent = rig
    square.shape_key_add(name="Basis")
    bent = square.shape_key_add(name="Bent")
    for v in bent.data:
        v.co.z += 0.3 * v.co.x
    bent.value = 0.0
    bent.keyframe_insert("value", frame=first)
    bent.value = 1.0
    bent.keyframe_insert("value", frame=last)

    props = bpy.data.collections.new("Props")  # not linked to the scene: seen only through the instance
    mesh = bpy.data.meshes.new("Crate")
    h = 0.25
    verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    props.objects.link(bpy.data.objects.new("Crate", mesh))
    empty = bpy.data.objects.new("CrateEmpty", None)
    empty.instance_type = "COLLECTION"
    empty.instance_collection = props
    empty.parent = rig
    scene.collection.objects.link(empty)
    _key(empty, "location", tuple(crate), crate_velocity, first, last)

    if not_rigid:
        _not_rigid(scene, rig, first, last)
    scene.render.use_motion_blur = motion_blur
    for idblock in (*bpy.data.objects, *bpy.data.shape_keys):
        ad = idblock.animation_data
        if ad is not None and ad.action is not None:
            for fc in _fcurves(ad.action):
                fc.extrapolation = "LINEAR"
                for key in fc.keyframe_points:
                    key.interpolation = "LINEAR"
    scene.frame_set(first)
    return info
