"""The analytic "flow" scene (tests/scenes/analytic.py) dressed so one tiny sequence exercises every
sentence of camsim.transforms.CONVENTIONS. Runs INSIDE Blender through the worker's build_scene.

On top of analytic.build(kind="flow"), everything still placed in the rig's frame so the truth stays
closed-form:
  - the back plane shrunk to `back_size` and moved to `back_x`, so the world background shows beside it;
  - the mover tilted about its X axis by `mover_tilt` (its normal differs from the back plane's);
  - the rig spinning by `spin` radians (XYZ Euler) per frame: the camera rotates in the world while the
    planes keep their place in front of it (the world background gets a rotation flow);
  - every animation extrapolated linearly, so frames just outside the scene's range continue the motion;
  - a collection "Props" holding one cube "Post", instanced by the empties in `posts` (rig frame);
  - a second camera "CamB" bound to a timeline marker at `cut_frame` (the first frame is bound to
    "Camera"): a camera cut;
  - the camera object scaled by `camera_scale` (Blender renders cameras without their scale);
  - the world colour, the unit scale and the view transform given.
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


def build(
    scale_length=1.0,
    view_transform="Standard",
    world_colour=(0.8, 0.45, 0.2),
    back_size=(5.0, 8.0),
    back_x=-2.5,
    mover_tilt=0.6,
    spin=(0.0, 0.0, 0.0),
    posts=(),
    post_size=0.4,
    cut_frame=None,
    camera_scale=1.0,
    **analytic,
):
    analytic.setdefault("frames", (1, 11))
    info = runpy.run_path(ANALYTIC)["build"](kind="flow", **analytic)
    scene = bpy.context.scene
    first, last = analytic["frames"]
    depth = analytic.get("depth", 5.0)
    back, mover, rig = bpy.data.objects["Back"], bpy.data.objects["Mover"], bpy.data.objects["Rig"]
    back.scale = (back_size[0] / 400.0, back_size[1] / 400.0, 1.0)
    back.location = (back_x, 0.0, -depth)
    mover.rotation_euler = (mover_tilt, 0.0, 0.0)
    scene.camera.scale = (camera_scale,) * 3

    if any(spin):
        start = tuple(rig.rotation_euler)
        rig.keyframe_insert("rotation_euler", frame=first)
        rig.rotation_euler = tuple(a + w * (last - first) for a, w in zip(start, spin, strict=True))
        rig.keyframe_insert("rotation_euler", frame=last)
    for action in bpy.data.actions:
        for fc in _fcurves(action):
            fc.extrapolation = "LINEAR"
            for key in fc.keyframe_points:
                key.interpolation = "LINEAR"

    if posts:
        props = bpy.data.collections.new("Props")  # not linked to the scene: seen only through instances
        mesh = bpy.data.meshes.new("Post")
        h = post_size / 2.0
        verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
        faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        mesh.from_pydata(verts, [], faces)
        props.objects.link(bpy.data.objects.new("Post", mesh))
        for i, loc in enumerate(posts):
            empty = bpy.data.objects.new(f"Post{chr(65 + i)}", None)
            empty.instance_type = "COLLECTION"
            empty.instance_collection = props
            empty.parent = rig
            empty.location = loc
            scene.collection.objects.link(empty)

    if cut_frame is not None:
        cam_b = bpy.data.objects.new("CamB", bpy.data.cameras.new("CamB"))
        cam_b.location = (0.0, -10.0, 2.0)
        cam_b.rotation_euler = (1.4, 0.0, 0.0)
        scene.collection.objects.link(cam_b)
        scene.timeline_markers.new("A", frame=first).camera = scene.camera
        scene.timeline_markers.new("B", frame=cut_frame).camera = cam_b

    world = scene.world
    world.color = world_colour
    if world.node_tree is not None:
        bg = world.node_tree.nodes.get("Background")
        if bg is not None:
            bg.inputs["Color"].default_value = (*world_colour, 1.0)
            bg.inputs["Strength"].default_value = 1.0
    scene.unit_settings.system = "METRIC"
    scene.unit_settings.scale_length = scale_length
    scene.view_settings.view_transform = view_transform
    scene.frame_set(first)
    return {
        **info,
        "view_transform": scene.view_settings.view_transform,
        "look": scene.view_settings.look,
        "exposure": scene.view_settings.exposure,
        "gamma": scene.view_settings.gamma,
        "curves": scene.view_settings.use_curve_mapping,
        "display_device": scene.display_settings.display_device,
        "dither_intensity": scene.render.dither_intensity,
        "pixel_filter": [scene.cycles.pixel_filter_type, scene.cycles.filter_width],
    }
