"""Real-world-like test scenes ("the zoo"). Runs INSIDE Blender through the worker's build_scene.

Each kind is built the way such files are made by hand: simulations left unbaked, cameras bound to
timeline markers, animated lenses, depth of field, an Eevee file with backface culling, linked
libraries with clashing names, instancers of every flavour, a centimetre scene next to a second
scene, and files that point at things that are gone. They are tiny (64x48) so that renders and the
ray-cast oracle (tests/scenes/oracle_blender.py) stay fast.

`build(kind=..., path=...)`: kinds that write a library next to the .blend need `path`, the file
build_scene will save to (the main file is saved there first, so library paths are relative).
"""

import math
import os
import runpy

import bpy
from mathutils import Vector

# ------------------------------------------------------------------------------------------ helpers


# Keyframes made linear: the same helper as the analytic scenes (loaded by path: this runs inside Blender).
_linear = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "analytic.py"))["_linear"]


def _material(name, colour, backface_culling=False):
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*colour, 1.0)
    mat.use_backface_culling = backface_culling
    if hasattr(mat, "use_nodes") and not mat.use_nodes:
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF") if mat.node_tree else None
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    return mat


def _mesh(kind, name, location, size=1.0, rotation=(0.0, 0.0, 0.0), colour=(0.6, 0.6, 0.6), collection=None):
    if kind == "cube":
        bpy.ops.mesh.primitive_cube_add(size=size, location=location, rotation=rotation)
    elif kind == "plane":
        bpy.ops.mesh.primitive_plane_add(size=size, location=location, rotation=rotation)
    elif kind == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(
            radius=size / 2, location=location, rotation=rotation, segments=24, ring_count=12
        )
    elif kind == "cylinder":
        bpy.ops.mesh.primitive_cylinder_add(radius=size / 2, depth=size, location=location, rotation=rotation)
    obj = bpy.context.object
    obj.name = obj.data.name = name
    obj.data.materials.append(_material(name + "Mat", colour))
    if collection is not None:
        for c in list(obj.users_collection):
            c.objects.unlink(obj)
        collection.objects.link(obj)
    return obj


def _look_at(obj, target):
    direction = Vector(target) - obj.location
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def _camera(scene, name, location, target, lens=35.0, make_active=True):
    data = bpy.data.cameras.new(name)
    data.lens = lens
    cam = bpy.data.objects.new(name, data)
    scene.collection.objects.link(cam)
    cam.location = location
    _look_at(cam, target)
    if make_active:
        scene.camera = cam
    return cam


def _setup(scene, frames, width=64, height=48):
    bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = frames
    scene.render.fps = 25
    scene.render.engine = "CYCLES"  # a Cycles file (the factory default is Eevee); eevee_culling sets Eevee
    world = bpy.data.worlds.new(scene.name + "World")
    world.color = (0.05, 0.06, 0.08)
    scene.world = world
    sun_data = bpy.data.lights.new(scene.name + "Sun", "SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new(scene.name + "Sun", sun_data)
    sun.rotation_euler = (0.6, 0.2, 0.4)
    scene.collection.objects.link(sun)


def _keys(obj, path, values, frames):
    for value, frame in zip(values, frames, strict=True):
        setattr(obj, path, value)
        obj.keyframe_insert(path, frame=frame)
    _linear(obj)


def _save_here(path):
    """Save the file under construction where build_scene will save it (libraries become relative)."""
    bpy.context.preferences.filepaths.save_version = 0
    bpy.ops.wm.save_as_mainfile(filepath=path)


def _write_library(lib_path, objects):
    """Write a library .blend holding the given (name, kind, location, size) objects in collection 'Chairs'
    (or loose when the name starts with '+'), then remove them from this file."""
    coll = bpy.data.collections.new("Chairs")
    made = []
    for name, kind, location, size in objects:
        obj = _mesh(kind, name.lstrip("+"), location, size=size, colour=(0.7, 0.5, 0.3))
        for c in list(obj.users_collection):
            c.objects.unlink(obj)
        if not name.startswith("+"):
            coll.objects.link(obj)
        obj.use_fake_user = name.startswith("+")
        made.append(obj)
    bpy.data.libraries.write(lib_path, {coll, *made}, fake_user=True)
    for obj in made:
        mesh = obj.data
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
    bpy.data.collections.remove(coll)


# ------------------------------------------------------------------------------------------- scenes


def _rigid_body(scene):
    _setup(scene, (1, 40))
    ground = _mesh("plane", "Ground", (0.0, 0.0, 0.0), size=12.0, colour=(0.4, 0.45, 0.4))
    ramp = _mesh("cube", "Ramp", (0.0, 0.0, 0.6), size=1.0, rotation=(0.0, 0.45, 0.0), colour=(0.6, 0.6, 0.6))
    ramp.scale = (2.0, 1.6, 0.2)
    # Dropped from heights that land them on the ramp around frames 15..25: they bounce and tumble there.
    bodies = [
        _mesh("cube", "CubeA", (0.2, 0.0, 3.2), size=0.7, rotation=(0.3, 0.5, 0.1), colour=(0.8, 0.2, 0.2)),
        _mesh("cube", "CubeB", (-0.3, 0.3, 4.4), size=0.6, rotation=(0.9, 0.2, 0.7), colour=(0.2, 0.3, 0.8)),
        _mesh("sphere", "Ball", (0.4, -0.4, 5.2), size=0.6, colour=(0.9, 0.8, 0.2)),
    ]
    with bpy.context.temp_override(scene=scene):
        bpy.ops.rigidbody.world_add()
    rbw = scene.rigidbody_world
    rbw.point_cache.frame_start, rbw.point_cache.frame_end = 1, 40
    for obj, kind in [(ground, "PASSIVE"), (ramp, "PASSIVE")] + [(b, "ACTIVE") for b in bodies]:
        bpy.context.view_layer.objects.active = obj
        with bpy.context.temp_override(object=obj, active_object=obj, selected_objects=[obj]):
            bpy.ops.rigidbody.object_add(type=kind)
        obj.rigid_body.collision_shape = "SPHERE" if obj.name == "Ball" else "BOX"
        obj.rigid_body.restitution = 0.5
    _camera(scene, "Camera", (3.0, -3.4, 2.1), (0.4, 0.1, 1.2), lens=45.0)


def _camera_cuts(scene):
    _setup(scene, (1, 20))
    _mesh("plane", "Floor", (0.0, 0.0, 0.0), size=14.0, colour=(0.4, 0.4, 0.45))
    _mesh("cube", "Crate", (0.0, 0.0, 0.5), size=1.0, rotation=(0.0, 0.0, 0.4), colour=(0.8, 0.4, 0.2))
    # What a viewport shows is not what renders: a cube subdivided into a ball only at render time, an
    # array whose copy is hidden in the viewport, things hidden in the viewport or kept out of renders.
    globe = _mesh("cube", "Globe", (1.6, 0.8, 0.6), size=1.2, colour=(0.2, 0.6, 0.8))
    sub = globe.modifiers.new("Subdivision", "SUBSURF")
    sub.levels, sub.render_levels = 0, 3
    post = _mesh("cylinder", "Post", (-1.5, 0.5, 0.75), size=1.5, colour=(0.5, 0.8, 0.3))
    array = post.modifiers.new("Array", "ARRAY")
    array.count, array.relative_offset_displace = 2, (0.0, 1.6, 0.0)
    array.show_viewport = False
    _mesh("cube", "ViewportHidden", (0.2, -1.6, 0.3), size=0.6, colour=(0.9, 0.9, 0.2)).hide_viewport = True
    _mesh("sphere", "NotRendered", (-0.6, -1.2, 0.6), size=0.8, colour=(0.9, 0.1, 0.1)).hide_render = True
    drafts = bpy.data.collections.new("Drafts")
    scene.collection.children.link(drafts)
    drafts.hide_viewport = True
    _mesh("cube", "InHiddenCollection", (1.0, -1.0, 0.25), size=0.5, rotation=(0.0, 0.0, 0.7),
          colour=(0.6, 0.3, 0.9), collection=drafts)  # fmt: skip
    cam_a = _camera(scene, "CamA", (5.0, -5.0, 3.0), (0.0, 0.0, 0.5), lens=32.0)
    cam_b = _camera(scene, "CamB", (-4.0, -5.0, 2.0), (0.0, 0.0, 0.5), lens=28.0, make_active=False)
    # CamB dollies sideways while it is live (frames 11..20).
    _keys(cam_b, "location", [(-4.0, -5.0, 2.0), (-2.5, -5.5, 2.3)], [11, 20])
    scene.timeline_markers.new("A", frame=1).camera = cam_a
    scene.timeline_markers.new("B", frame=11).camera = cam_b
    scene.camera = cam_a


def _lens_animation(scene):
    _setup(scene, (1, 20))
    _mesh("plane", "Backdrop", (0.0, 6.0, 0.0), size=9.0, rotation=(math.pi / 2, 0.0, 0.0),
          colour=(0.5, 0.5, 0.55))  # fmt: skip
    mover = _mesh(
        "cube", "Mover", (-0.8, 2.0, 0.0), size=0.8, rotation=(0.2, 0.4, 0.1), colour=(0.9, 0.3, 0.2)
    )
    _keys(mover, "location", [(-0.8, 2.0, 0.0), (0.9, 1.5, 0.3)], [1, 20])
    cam = _camera(scene, "Camera", (0.0, -4.0, 0.3), (0.0, 6.0, 0.0), lens=30.0)
    data = cam.data
    data.sensor_fit = "AUTO"
    for attr, values in (("lens", (30.0, 45.0)), ("shift_x", (0.0, 0.12)), ("shift_y", (0.0, -0.09)),
                         ("sensor_width", (36.0, 30.0))):  # fmt: skip
        _keys(data, attr, values, [1, 20])


def _dof(scene):
    _setup(scene, (1, 20))
    _mesh(
        "plane", "Wall", (0.0, 9.0, 0.0), size=30.0, rotation=(math.pi / 2, 0.0, 0.0), colour=(0.5, 0.5, 0.5)
    )
    _mesh("cube", "Near", (-0.5, 1.2, 0.0), size=0.5, rotation=(0.3, 0.2, 0.5), colour=(0.9, 0.2, 0.2))
    _mesh("sphere", "Middle", (0.6, 3.5, 0.3), size=1.2, colour=(0.2, 0.8, 0.3))
    _mesh("cube", "Far", (-1.5, 7.0, 0.5), size=1.5, rotation=(0.0, 0.0, 0.6), colour=(0.2, 0.3, 0.9))
    cam = _camera(scene, "Camera", (0.0, -1.0, 0.2), (0.0, 9.0, 0.0), lens=35.0)
    _keys(cam, "location", [(0.0, -1.0, 0.2), (1.2, -1.0, 0.5)], [1, 20])
    cam.data.dof.use_dof = True
    cam.data.dof.focus_distance = 1.5
    cam.data.dof.aperture_fstop = 0.5


def _stamp(scene):
    """A review-render habit: the metadata stamp burnt into every frame (text the ground truth has not)."""
    _dof(scene)
    scene.objects["Camera"].data.dof.use_dof = False
    scene.render.use_stamp = True
    scene.render.use_stamp_note = True
    scene.render.stamp_note_text = "review render"
    scene.render.stamp_font_size = 30


def _eevee_culling(scene):
    _setup(scene, (1, 20))
    engines = bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items.keys()
    scene.render.engine = "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in engines else "BLENDER_EEVEE"
    # A closed box around the camera, faces pointing outward: from inside only back faces are seen.
    box = _mesh("cube", "Box", (0.0, 0.0, 0.0), size=4.0, colour=(0.9, 0.9, 0.9))
    box.data.materials[0] = _material("BoxCulled", (0.9, 0.9, 0.9), backface_culling=True)
    _mesh("plane", "Backdrop", (0.0, 8.0, 0.0), size=9.0, rotation=(math.pi / 2, 0.0, 0.0),
          colour=(0.3, 0.5, 0.3))  # fmt: skip
    inner = _mesh(
        "cube", "Inside", (0.3, 1.2, 0.0), size=0.7, rotation=(0.4, 0.3, 0.2), colour=(0.9, 0.3, 0.3)
    )
    _keys(inner, "location", [(0.5, 1.2, 0.0), (-0.6, 1.3, 0.2)], [1, 20])
    cam = _camera(scene, "Camera", (0.0, -1.2, 0.1), (0.0, 8.0, 0.0), lens=30.0)
    _keys(
        cam, "rotation_euler", [tuple(cam.rotation_euler), (cam.rotation_euler.x + 0.08, 0.0, 0.15)], [1, 20]
    )


def _gn_instancer(name, location, size, proto, as_instance):
    """A plane whose geometry nodes put `proto` (Object Info) on each of its vertices."""
    grid = _mesh("plane", name, location, size=size, colour=(0.5, 0.5, 0.5))
    mod = grid.modifiers.new("Instancer", "NODES")
    ng = bpy.data.node_groups.new(name + "Nodes", "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    gin, gout = ng.nodes.new("NodeGroupInput"), ng.nodes.new("NodeGroupOutput")
    pts = ng.nodes.new("GeometryNodeMeshToPoints")
    iop = ng.nodes.new("GeometryNodeInstanceOnPoints")
    info = ng.nodes.new("GeometryNodeObjectInfo")
    info.inputs["Object"].default_value = proto
    info.inputs["As Instance"].default_value = as_instance
    ng.links.new(gin.outputs[0], pts.inputs["Mesh"])
    ng.links.new(pts.outputs["Points"], iop.inputs["Points"])
    ng.links.new(info.outputs["Geometry"], iop.inputs["Instance"])
    ng.links.new(iop.outputs["Instances"], gout.inputs[0])
    mod.node_group = ng
    return grid


def _instances(scene, path):
    _setup(scene, (1, 20))
    folder = os.path.dirname(os.path.abspath(path))
    lib_path = os.path.join(folder, "zoo_chairs_lib.blend")
    _write_library(lib_path, [("Table", "cube", (0.0, 0.0, 0.4), 0.8), ("Chair", "cylinder", (0.0, 0.8, 0.3), 0.6),
                              ("+Vase", "sphere", (0.0, 0.0, 0.0), 0.5)])  # fmt: skip
    _save_here(path)
    with bpy.data.libraries.load(lib_path, link=True, relative=True) as (_src, dst):
        dst.collections = ["Chairs"]
        dst.objects = ["Vase"]
    chairs = dst.collections[0]
    vase = dst.objects[0]
    for name, x in (("ChairsLeft", -2.2), ("ChairsRight", 2.0)):
        empty = bpy.data.objects.new(name, None)
        empty.instance_type = "COLLECTION"
        empty.instance_collection = chairs
        empty.location = (x, 0.5, 0.0)
        empty.rotation_euler = (0.0, 0.0, 0.3 * x)
        scene.collection.objects.link(empty)
    scene.collection.objects.link(vase)  # a linked object straight in the scene (its library place)
    _mesh("plane", "Floor", (0.0, 0.0, 0.0), size=16.0, colour=(0.4, 0.4, 0.45))
    _mesh("sphere", "Table", (0.0, -1.5, 0.45), size=0.9, colour=(0.3, 0.8, 0.3))  # clashes with linked Table
    # Prototypes live in a collection hidden from the render: visible only through instancers.
    protos = bpy.data.collections.new("Protos")
    scene.collection.children.link(protos)
    protos.hide_render = protos.hide_viewport = True
    knob = _mesh("sphere", "Knob", (0.0, 0.0, 0.0), size=0.35, colour=(0.9, 0.2, 0.6), collection=protos)
    pebble = _mesh("cube", "Pebble", (0.0, 0.0, 0.0), size=0.3, colour=(0.2, 0.2, 0.9), collection=protos)
    # Geometry nodes: Instance on Points of an Object Info, as an object instance and as geometry.
    stud = _mesh("cube", "Stud", (0.0, 0.0, 0.0), size=0.3, rotation=(0.0, 0.0, 0.5), colour=(0.9, 0.6, 0.1),
                 collection=protos)  # fmt: skip
    _gn_instancer("KnobGrid", (0.0, 2.5, 0.3), 2.0, knob, as_instance=True)
    _gn_instancer("StudGrid", (2.9, -1.2, 0.2), 1.2, stud, as_instance=False)
    # Hair particles rendered as objects.
    emitter = _mesh("plane", "Lawn", (-1.0, -2.2, 0.01), size=1.6, colour=(0.3, 0.6, 0.2))
    psys = emitter.modifiers.new("Pebbles", "PARTICLE_SYSTEM").particle_system
    part = psys.settings
    part.type = "HAIR"
    part.count = 6
    part.hair_length = 0.5
    part.render_type = "OBJECT"
    part.instance_object = pebble
    part.particle_size = 1.0
    psys.seed = 3
    cam = _camera(scene, "Camera", (0.0, -7.0, 4.0), (0.0, 0.5, 0.3), lens=30.0)
    _keys(cam, "location", [(-1.5, -7.0, 4.0), (1.5, -7.0, 4.2)], [1, 20])


def _units_multiscene(scene):
    # A centimetre scene (1 unit = 1 cm): objects a few metres away are hundreds of units away.
    _setup(scene, (1, 10))
    scene.unit_settings.system = "METRIC"
    scene.unit_settings.scale_length = 0.01
    _mesh("plane", "Floor", (0.0, 0.0, 0.0), size=2000.0, colour=(0.4, 0.4, 0.45))
    _mesh("cube", "Box", (0.0, 0.0, 50.0), size=100.0, rotation=(0.0, 0.0, 0.5), colour=(0.8, 0.3, 0.2))
    cam = _camera(scene, "Camera", (400.0, -450.0, 250.0), (0.0, 0.0, 50.0), lens=35.0)
    cam.data.clip_start, cam.data.clip_end = 1.0, 100000.0
    _keys(cam, "location", [(400.0, -450.0, 250.0), (250.0, -560.0, 300.0)], [1, 10])
    _look_at(cam, (0.0, 0.0, 50.0))
    # A second scene with its own camera and objects (also in centimetres).
    other = bpy.data.scenes.new("Other")
    window = bpy.context.window
    if window is not None:
        window.scene = other
    _setup(other, (1, 10))
    other.unit_settings.system = "METRIC"
    other.unit_settings.scale_length = 0.01
    _mesh("plane", "OtherGround", (0.0, 0.0, 0.0), size=3000.0, colour=(0.3, 0.3, 0.5))
    ball = _mesh("sphere", "OtherBall", (0.0, 0.0, 80.0), size=160.0, colour=(0.8, 0.8, 0.2))
    _keys(ball, "location", [(0.0, 0.0, 80.0), (60.0, 30.0, 80.0)], [1, 10])
    _mesh("cylinder", "OtherPillar", (-200.0, 150.0, 100.0), size=200.0, colour=(0.6, 0.2, 0.6))
    cam = _camera(other, "OtherCamera", (-300.0, -600.0, 300.0), (0.0, 0.0, 60.0), lens=30.0)
    cam.data.clip_start, cam.data.clip_end = 1.0, 100000.0
    if window is not None:
        window.scene = scene  # the file opens on the first scene


def _missing_files(scene, path):
    _setup(scene, (1, 5))
    folder = os.path.dirname(os.path.abspath(path))
    lib_path = os.path.join(folder, "zoo_missing_lib.blend")
    _write_library(lib_path, [("+Statue", "cube", (0.0, 1.0, 0.5), 1.0)])
    _save_here(path)
    with bpy.data.libraries.load(lib_path, link=True, relative=True) as (_src, dst):
        dst.objects = ["Statue"]
    scene.collection.objects.link(dst.objects[0])
    floor = _mesh("plane", "Floor", (0.0, 0.0, 0.0), size=10.0)
    mat = floor.data.materials[0]
    image = bpy.data.images.new("missing_texture", 8, 8)
    image.source = "FILE"
    image.filepath = "//textures/missing_texture.png"
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    mat.node_tree.links.new(tex.outputs["Color"], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    _camera(scene, "Camera", (3.0, -4.0, 2.5), (0.0, 0.0, 0.5))
    os.remove(lib_path)  # the library goes missing after it was linked


def build(kind="rigid_body", path=None):
    scene = bpy.context.scene
    scene.name = kind
    if kind in ("instances", "missing_files") and not path:
        raise ValueError(f"zoo scene {kind!r} needs path= (where the .blend will be saved)")
    builders = {
        "rigid_body": _rigid_body,
        "camera_cuts": _camera_cuts,
        "lens_animation": _lens_animation,
        "dof": _dof,
        "eevee_culling": _eevee_culling,
        "instances": lambda s: _instances(s, path),
        "units_multiscene": _units_multiscene,
        "missing_files": lambda s: _missing_files(s, path),
        "stamp": _stamp,
    }
    builders[kind](scene)
    scene.frame_set(scene.frame_start)
    return {"scene": scene.name}
