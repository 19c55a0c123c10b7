"""A stereo rig looking at a fronto-parallel textured wall. Runs INSIDE Blender through the worker's build_scene.

Everything is placed in the frame of the empty "StereoRig", which is then rotated and moved by
`rig_rotation`/`rig_location` (and moves by `rig_velocity` per frame), so the truths are closed-form in the
rig's frame while the cameras' world poses are arbitrary:
  - cameras "Left" at (-baseline/2, 0, 0) and "Right" at (+baseline/2, 0, 0), both children of the rig,
    looking along the rig's -Z with the same lens; "Right" turned about its Y axis by `toe_in` radians, and
    moved along x by `baseline_velocity` per frame (a rig that is not rigid);
  - the wall "Wall" (a checker-textured plane) at z = -depth, facing the cameras;
  - the disc "Marker" (radius `marker_radius`) at (marker_x, marker_y, -marker_depth), facing the cameras;
  - with `switch_to_right_at`, timeline markers binding "Left" at the first frame and "Right" at that frame;
  - with `overview`, a third camera "Overview" outside the rig (no parent) at `overview_location`, turned by
    `overview_rotation` (XYZ Euler, world).
The scene camera is "Left".
"""

import bpy


def _linear(obj):
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return
    try:
        from bpy_extras import anim_utils

        fcurves = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves
    except (ImportError, AttributeError):  # Blender < 4.4
        fcurves = ad.action.fcurves
    for fc in fcurves:
        for key in fc.keyframe_points:
            key.interpolation = "LINEAR"
        fc.extrapolation = "LINEAR"


def _checker():
    mat = bpy.data.materials.new("Checker")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    tex = nodes.new("ShaderNodeTexChecker")
    tex.inputs["Scale"].default_value = 12.0
    bsdf = nodes.get("Principled BSDF")
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _camera(name, lens, location, rotation, parent):
    data = bpy.data.cameras.new(name)
    data.lens = lens
    cam = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(cam)
    cam.parent = parent
    cam.location = location
    cam.rotation_euler = rotation
    return cam


def _animate(obj, attr, frames, velocity):
    if not any(velocity):
        return
    start = tuple(getattr(obj, attr))
    obj.keyframe_insert(attr, frame=frames[0])
    setattr(obj, attr, tuple(s + v * (frames[1] - frames[0]) for s, v in zip(start, velocity, strict=True)))
    obj.keyframe_insert(attr, frame=frames[1])
    _linear(obj)


def build(
    width=128,
    height=96,
    lens=35.0,
    baseline=0.3,
    depth=4.0,
    marker_depth=3.0,
    marker_x=0.0,
    marker_y=0.1,
    marker_radius=0.2,
    toe_in=0.0,
    rig_rotation=(0.4, -0.3, 0.7),
    rig_location=(0.3, -0.2, 0.5),
    rig_velocity=(0.0, 0.0, 0.0),
    baseline_velocity=0.0,
    overview=False,
    overview_location=(2.0, -3.0, 1.5),
    overview_rotation=(1.2, 0.0, 0.6),
    switch_to_right_at=None,
    frames=(1, 3),
):
    scene = bpy.context.scene
    scene.name = "stereo"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = frames
    scene.render.fps = 25
    scene.render.engine = "CYCLES"
    world = bpy.data.worlds.new("World")
    world.color = (0.05, 0.05, 0.05)
    scene.world = world
    rig = bpy.data.objects.new("StereoRig", None)
    scene.collection.objects.link(rig)
    rig.rotation_euler = rig_rotation
    rig.location = rig_location
    _animate(rig, "location", frames, rig_velocity)
    left = _camera("Left", lens, (-baseline / 2.0, 0.0, 0.0), (0.0, 0.0, 0.0), rig)
    right = _camera("Right", lens, (baseline / 2.0, 0.0, 0.0), (0.0, toe_in, 0.0), rig)
    _animate(right, "location", frames, (baseline_velocity, 0.0, 0.0))
    scene.camera = left
    if switch_to_right_at is not None:  # timeline markers switching the scene camera: a camera cut
        scene.timeline_markers.new("L", frame=frames[0]).camera = left
        scene.timeline_markers.new("R", frame=switch_to_right_at).camera = right
    if overview:
        _camera("Overview", lens, overview_location, overview_rotation, None)

    bpy.ops.mesh.primitive_plane_add(size=40.0, location=(0.0, 0.0, -depth))
    wall = bpy.context.object
    wall.name = wall.data.name = "Wall"
    wall.parent = rig
    wall.data.materials.append(_checker())
    bpy.ops.mesh.primitive_circle_add(
        vertices=96, radius=marker_radius, fill_type="NGON", location=(marker_x, marker_y, -marker_depth)
    )
    marker = bpy.context.object
    marker.name = marker.data.name = "Marker"
    marker.parent = rig
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(light)
    scene.frame_set(frames[0])
    return {"scene": scene.name}
