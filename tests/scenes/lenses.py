"""Marker spheres at known positions for the lens tests (tests/test_render_lenses.py). Runs INSIDE Blender
through the worker's build_scene (bpy + stdlib only).

Everything sits in a rig's frame, which is the camera's frame at the first frame: the camera (lens `lens`
mm on a 36 mm sensor, shift `shift`) moves inside the rig by `camera_velocity` per frame while the rig turns
by `spin` radians per frame (so the world background moves with the camera's rotation, the rig's contents
only with its translation). In the rig: a fronto-parallel back plane (`back_size` at depth `back_depth`,
centred at `back_offset`) and one small sphere per entry of `markers` (centre, radius), each its own object
"M00", "M01", ... so that every marker has its own segmentation id. The markers glow white (emission 1), the
back plane and the world are black: the linear image of a marker is its coverage, whose centroid is the
marker's image centre. Every animation is linear and extrapolated.
"""

import bpy


def _fcurves(action):
    try:  # Blender 4.4+: layered actions
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    yield from bag.fcurves
    except AttributeError:
        yield from action.fcurves


def _material(name, colour, strength):
    mat = bpy.data.materials.new(name)
    if not mat.node_tree:  # Blender < 5: materials get nodes on request
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    emit = nodes.new("ShaderNodeEmission")
    emit.inputs["Color"].default_value = (*colour, 1.0)
    emit.inputs["Strength"].default_value = strength
    mat.node_tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def build(
    width=120,
    height=90,
    lens=30.0,
    shift=(0.0, 0.0),
    rig_rotation=(0.3, -0.2, 0.5),
    rig_location=(1.0, 2.0, 3.0),
    camera_velocity=(0.03, 0.02, 0.0),
    spin=(0.0, 0.004, 0.01),
    back_size=(14.0, 10.0),
    back_depth=9.0,
    back_offset=(0.0, 0.0),
    markers=(),
    frames=(1, 5),
):
    scene = bpy.context.scene
    scene.name = "lenses"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = frames
    scene.render.fps = 25
    scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.0, 0.0, 0.0)
    if scene.world.node_tree is not None:
        bg = scene.world.node_tree.nodes.get("Background")
        if bg is not None:
            bg.inputs["Strength"].default_value = 0.0
    glow, black = _material("Glow", (1.0, 1.0, 1.0), 1.0), _material("Black", (0.0, 0.0, 0.0), 0.0)
    first, last = frames
    span = last - first

    rig = bpy.data.objects.new("Rig", None)
    scene.collection.objects.link(rig)
    rig.rotation_euler = rig_rotation
    rig.location = rig_location
    rig.keyframe_insert("rotation_euler", frame=first)
    rig.rotation_euler = tuple(a + w * span for a, w in zip(rig_rotation, spin, strict=True))
    rig.keyframe_insert("rotation_euler", frame=last)

    data = bpy.data.cameras.new("Camera")
    data.lens = lens
    data.sensor_width = 36.0
    data.sensor_fit = "AUTO"
    data.shift_x, data.shift_y = shift
    cam = bpy.data.objects.new("Camera", data)
    scene.collection.objects.link(cam)
    cam.parent = rig
    scene.camera = cam
    cam.location = (0.0, 0.0, 0.0)
    cam.keyframe_insert("location", frame=first)
    cam.location = tuple(v * span for v in camera_velocity)
    cam.keyframe_insert("location", frame=last)

    bpy.ops.mesh.primitive_plane_add(size=1.0, location=(back_offset[0], back_offset[1], -back_depth))
    back = bpy.context.object
    back.name = back.data.name = "Back"
    back.scale = (back_size[0], back_size[1], 1.0)
    back.parent = rig
    back.data.materials.append(black)
    for i, (centre, radius) in enumerate(markers):
        bpy.ops.mesh.primitive_uv_sphere_add(
            radius=radius, location=tuple(centre), segments=64, ring_count=32
        )
        sphere = bpy.context.object
        sphere.name = sphere.data.name = f"M{i:02d}"
        sphere.parent = rig
        sphere.data.materials.append(glow)
        bpy.ops.object.shade_smooth()

    for action in bpy.data.actions:
        for fc in _fcurves(action):
            fc.extrapolation = "LINEAR"
            for key in fc.keyframe_points:
                key.interpolation = "LINEAR"
    scene.frame_set(first)
    return {"scene": scene.name}
