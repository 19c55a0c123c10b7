"""Analytic test scenes. Runs INSIDE Blender through the worker's build_scene (bpy + stdlib only).

Everything is placed in the camera's frame and then the whole rig (camera included) is rotated and
moved by `rig_rotation`/`rig_location`, so camera-frame truths (depths, normals, flows) are known
in closed form while the camera's world pose is arbitrary.
"""

import bpy


def _linear(idblock):
    """Make every keyframe of an ID's action linear (constant velocity between keys)."""
    ad = idblock.animation_data
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


def _plane(name, size, location, rotation=(0.0, 0.0, 0.0), parent=None):
    bpy.ops.mesh.primitive_plane_add(size=size, location=location, rotation=rotation)
    obj = bpy.context.object
    obj.name = obj.data.name = name
    if parent is not None:
        obj.parent = parent
    return obj


def _sphere(name, radius, location, parent=None):
    bpy.ops.mesh.primitive_uv_sphere_add(radius=radius, location=location, segments=32, ring_count=16)
    obj = bpy.context.object
    obj.name = obj.data.name = name
    if parent is not None:
        obj.parent = parent
    return obj


def build(
    kind="planes",
    width=64,
    height=48,
    lens=35.0,
    sensor_fit="AUTO",
    shift_x=0.0,
    shift_y=0.0,
    rig_rotation=(0.3, -0.2, 0.5),
    rig_location=(1.0, 2.0, 3.0),
    depth=5.0,
    tilts=(),
    camera_velocity=(0.0, 0.0, 0.0),
    object_velocity=(0.0, 0.0, 0.0),
    object_depth=3.0,
    point=(0.3, -0.2, -6.0),
    frames=(1, 11),
    no_camera=False,
    animate_lens=False,
):
    bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
    scene = bpy.context.scene
    scene.name = kind
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = frames
    scene.render.fps = 25
    world = bpy.data.worlds.new("World")
    scene.world = world
    rig = bpy.data.objects.new("Rig", None)
    scene.collection.objects.link(rig)
    rig.rotation_euler = rig_rotation
    rig.location = rig_location
    if not no_camera:
        cam_data = bpy.data.cameras.new("Camera")
        cam_data.lens = lens
        cam_data.sensor_fit = sensor_fit
        cam_data.shift_x, cam_data.shift_y = shift_x, shift_y
        cam = bpy.data.objects.new("Camera", cam_data)
        scene.collection.objects.link(cam)
        cam.parent = rig
        scene.camera = cam
        span = frames[1] - frames[0]
        cam.location = (0.0, 0.0, 0.0)
        cam.keyframe_insert("location", frame=frames[0])
        cam.location = tuple(v * span for v in camera_velocity)
        cam.keyframe_insert("location", frame=frames[1])
        _linear(cam)
        if animate_lens:
            cam_data.keyframe_insert("lens", frame=frames[0])
            cam_data.lens = lens * 1.5
            cam_data.keyframe_insert("lens", frame=frames[1])
            _linear(cam_data)
    if kind == "planes":
        _plane("Back", 200.0, (0.0, 0.0, -depth), parent=rig)
        for i, (tilt_x, tilt_y, x, y) in enumerate(tilts):
            _plane(f"Tilt{i}", 0.8, (x, y, -depth + 1.0), rotation=(tilt_x, tilt_y, 0.0), parent=rig)
    elif kind == "flow":
        _plane("Back", 400.0, (0.0, 0.0, -depth), parent=rig)
        mover = _plane("Mover", 1.0, (0.0, 0.0, -object_depth), parent=rig)
        span = frames[1] - frames[0]
        mover.keyframe_insert("location", frame=frames[0])
        mover.location = tuple(
            p + v * span for p, v in zip((0.0, 0.0, -object_depth), object_velocity, strict=False)
        )
        mover.keyframe_insert("location", frame=frames[1])
        _linear(mover)
    elif kind == "shapekey":
        # A shape key (mesh data animation, not an object action) slides a square across the view.
        _plane("Back", 200.0, (0.0, 0.0, -depth), parent=rig)
        sq = _plane("Square", 1.0, (0.0, 0.0, -object_depth), parent=rig)
        sq.shape_key_add(name="Basis")
        moved = sq.shape_key_add(name="Moved")
        for v in moved.data:
            v.co.x += 1.0
        keys = sq.data.shape_keys
        moved.value = 0.0
        moved.keyframe_insert("value", frame=frames[0])
        moved.value = 1.0
        moved.keyframe_insert("value", frame=frames[1])
        _linear(keys)
    elif kind == "point":
        _sphere("Marker", 0.06, point, parent=rig)
        _sphere("Other", 0.2, (point[0] + 0.6, point[1], point[2] - 1.0), parent=rig)
    scene.frame_set(frames[0])
    return {"scene": scene.name}
