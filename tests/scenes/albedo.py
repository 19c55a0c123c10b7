"""Fronto-parallel squares of known materials in front of the camera, on a black world. Runs INSIDE Blender
through the worker's build_scene (bpy + stdlib only).

The camera sits at the origin looking along -Z; square `NAME` (1 m side) faces it at z = -depth, with the
material given in MATERIALS: a Diffuse BSDF, or a Principled BSDF with the listed inputs (everything else at
Blender's defaults). The squares move along x by `velocity` metres per frame (0: a still scene).
"""

import bpy

MATERIALS = {
    # name: (node, inputs, (x, y))
    "Diffuse": ("ShaderNodeBsdfDiffuse", {"Color": (0.2, 0.6, 0.9, 1.0)}, (-1.3, 0.7)),
    "Principled": ("ShaderNodeBsdfPrincipled", {"Base Color": (0.8, 0.3, 0.1, 1.0), "Specular IOR Level": 0.0},
                   (0.0, 0.7)),
    "Metallic": ("ShaderNodeBsdfPrincipled", {"Base Color": (0.5, 0.7, 0.3, 1.0), "Metallic": 0.6,
                                              "Specular IOR Level": 0.0}, (1.3, 0.7)),
    "Transmission": ("ShaderNodeBsdfPrincipled", {"Base Color": (0.9, 0.4, 0.6, 1.0), "Transmission Weight": 0.5,
                                                  "Specular IOR Level": 0.0}, (-1.3, -0.7)),
    "Both": ("ShaderNodeBsdfPrincipled", {"Base Color": (0.7, 0.5, 0.9, 1.0), "Metallic": 0.5,
                                          "Transmission Weight": 0.5, "Specular IOR Level": 0.0}, (0.0, -0.7)),
    "Specular": ("ShaderNodeBsdfPrincipled", {"Base Color": (0.6, 0.6, 0.6, 1.0)}, (1.3, -0.7)),
}  # fmt: skip


def _material(name, node_type, inputs):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for node in list(nodes):
        if node.bl_idname != "ShaderNodeOutputMaterial":
            nodes.remove(node)
    out = next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    bsdf = nodes.new(node_type)
    for key, value in inputs.items():
        bsdf.inputs[key].default_value = value
    links.new(bsdf.outputs[0], out.inputs["Surface"])
    return mat


def build(width=64, height=48, depth=4.0, velocity=0.0, frames=(1, 4)):
    scene = bpy.context.scene
    scene.name = "albedo"
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = frames
    scene.render.fps = 25
    world = bpy.data.worlds.new("World")
    world.color = (0.0, 0.0, 0.0)
    if world.node_tree is not None:
        for node in world.node_tree.nodes:
            if node.bl_idname == "ShaderNodeBackground":
                node.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    scene.world = world
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    for name, (node_type, inputs, (x, y)) in MATERIALS.items():
        bpy.ops.mesh.primitive_plane_add(size=1.0, location=(x, y, -depth))
        obj = bpy.context.object
        obj.name = obj.data.name = name
        obj.data.materials.append(_material(name, node_type, inputs))
        if velocity:
            obj.keyframe_insert("location", frame=frames[0])
            obj.location.x = x + velocity * (frames[1] - frames[0])
            obj.keyframe_insert("location", frame=frames[1])
            for fc in _fcurves(obj):
                for key in fc.keyframe_points:
                    key.interpolation = "LINEAR"
    scene.frame_set(frames[0])
    return {"scene": scene.name}


def _fcurves(obj):
    ad = obj.animation_data
    try:
        from bpy_extras import anim_utils

        return anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves
    except (ImportError, AttributeError):  # Blender < 4.4
        return ad.action.fcurves
