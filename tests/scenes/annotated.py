"""A scene whose per-object annotations are known in closed form. Runs INSIDE Blender through the worker's
build_scene (bpy + stdlib only).

Everything is placed in the camera's frame (the camera sits at the rig's origin, looking down -Z), then the
rig is rotated and moved, so camera-frame truths are closed forms while the world pose is arbitrary:

- `Boxed`: a 0.6 x 0.4 x 0.5 box hidden from camera rays, keyframed translation and rotation (linear), with
  a marker sphere (collection `Markers`) at each corner of its bound box: the rendered markers are where its
  3-D box corners must project.
- `Square` (custom property category "chair") at depth 6, its left half hidden by `Occluder` (category
  "table" on its mesh data) at depth 3, whose right edge projects onto the square's centre column, a pixel
  edge; the occluder reaches past the frame's left edge (truncated).
- `Blob`: a square whose shape key slides it in x (deforming; its box follows the evaluated geometry).
- `Smooth`: a cube subdivided for the render only and hidden in the viewport only: the annotations must
  see what the render draws.
- `Post` (collection `Posts`, in no scene) drawn twice through collection instances: one id, two draws.
"""

import math
import os
import runpy

import bpy

BOX = (0.6, 0.4, 0.5)
BOX_START = (0.45, 0.15, -2.5)
BOX_VELOCITY = (0.01, -0.005, 0.0)  # per frame, camera frame
BOX_ROTATION = (0.4, 0.6, 0.2)  # Euler XYZ (radians) at the first frame
BOX_SPIN = (0.05, 0.03, 0.02)  # per frame
MARKER_RADIUS = 0.06
SQUARE_DEPTH, OCCLUDER_DEPTH, SQUARE_SIZE = 6.0, 3.0, 1.2
BLOB_START, BLOB_SIZE, BLOB_SLIDE = (0.0, -0.55, -3.0), 0.4, 0.3  # slide: x at the last key
SMOOTH_AT, SMOOTH_SIZE = (1.3, -0.6, -4.0), 0.5
POSTS_AT = ((-0.3, 0.9, -4.0), (0.1, 0.9, -4.0))


_linear = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "analytic.py"))["_linear"]
"""Every keyframe of an ID's action linear (tests/scenes/analytic.py)."""


def _plane(name, size, location, parent):
    bpy.ops.mesh.primitive_plane_add(size=size, location=location)
    obj = bpy.context.object
    obj.name = obj.data.name = name
    obj.parent = parent
    return obj


def build(
    width=96,
    height=72,
    lens=35.0,
    frames=(1, 11),
    rig_rotation=(0.3, -0.2, 0.5),
    rig_location=(1.0, 2.0, 3.0),
):
    bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
    scene = bpy.context.scene
    scene.name = "annotated"
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = frames
    scene.world = bpy.data.worlds.new("World")
    rig = bpy.data.objects.new("Rig", None)
    scene.collection.objects.link(rig)
    rig.rotation_euler, rig.location = rig_rotation, rig_location
    cam_data = bpy.data.cameras.new("Camera")
    cam_data.lens, cam_data.sensor_width, cam_data.sensor_fit = lens, 36.0, "HORIZONTAL"
    cam = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(cam)
    cam.parent = rig
    scene.camera = cam
    span = frames[1] - frames[0]

    bpy.ops.mesh.primitive_cube_add(size=1.0)
    box = bpy.context.object
    box.name = box.data.name = "Boxed"
    for v in box.data.vertices:
        v.co = (v.co.x * BOX[0], v.co.y * BOX[1], v.co.z * BOX[2])
    box.parent = rig
    box.visible_camera = False
    box.location, box.rotation_euler = BOX_START, BOX_ROTATION
    box.keyframe_insert("location", frame=frames[0])
    box.keyframe_insert("rotation_euler", frame=frames[0])
    box.location = tuple(p + v * span for p, v in zip(BOX_START, BOX_VELOCITY, strict=True))
    box.rotation_euler = tuple(r + w * span for r, w in zip(BOX_ROTATION, BOX_SPIN, strict=True))
    box.keyframe_insert("location", frame=frames[1])
    box.keyframe_insert("rotation_euler", frame=frames[1])
    _linear(box)
    markers = bpy.data.collections.new("Markers")
    scene.collection.children.link(markers)
    for k, corner in enumerate(box.bound_box):
        bpy.ops.mesh.primitive_uv_sphere_add(radius=MARKER_RADIUS, segments=24, ring_count=12)
        m = bpy.context.object
        m.name = m.data.name = f"Marker{k}"
        for coll in list(m.users_collection):
            coll.objects.unlink(m)
        markers.objects.link(m)
        m.parent = box
        m.location = tuple(corner)

    xs = -(24.0 / (lens / 36.0 * width)) * SQUARE_DEPTH  # the square's centre projects to u = cx - 24 exactly
    square = _plane("Square", SQUARE_SIZE, (xs, 0.0, -SQUARE_DEPTH), rig)
    square["category"] = "chair"
    edge = xs * OCCLUDER_DEPTH / SQUARE_DEPTH
    occluder = _plane("Occluder", 2.0, (edge - 1.0, 0.0, -OCCLUDER_DEPTH), rig)
    occluder.data["category"] = "table"

    blob = _plane("Blob", BLOB_SIZE, BLOB_START, rig)
    blob.shape_key_add(name="Basis")
    moved = blob.shape_key_add(name="Moved")
    for v in moved.data:
        v.co.x += BLOB_SLIDE
    moved.value = 0.0
    moved.keyframe_insert("value", frame=frames[0])
    moved.value = 1.0
    moved.keyframe_insert("value", frame=frames[1])
    _linear(blob.data.shape_keys)

    bpy.ops.mesh.primitive_cube_add(size=SMOOTH_SIZE, location=SMOOTH_AT)
    smooth = bpy.context.object
    smooth.name = smooth.data.name = "Smooth"
    smooth.parent = rig
    sub = smooth.modifiers.new("Subdivision", type="SUBSURF")
    sub.levels, sub.render_levels = 0, 2  # the viewport shows the cube, the render a rounded one
    smooth.hide_viewport = True  # and the viewport hides it: only the render draws it

    posts = bpy.data.collections.new("Posts")  # in no scene: drawn only through the two instances
    bpy.ops.mesh.primitive_cube_add(size=0.2)
    post = bpy.context.object
    post.name = post.data.name = "Post"
    for coll in list(post.users_collection):
        coll.objects.unlink(post)
    posts.objects.link(post)
    for k, at in enumerate(POSTS_AT):
        inst = bpy.data.objects.new(f"PostInstance{k}", None)
        inst.instance_type, inst.instance_collection = "COLLECTION", posts
        scene.collection.objects.link(inst)
        inst.parent, inst.location = rig, at
    scene.frame_set(frames[0])
    return {"scene": scene.name, "xs": xs, "rotation_mode": box.rotation_mode, "pi": math.pi}
