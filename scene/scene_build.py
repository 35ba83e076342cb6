# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender datablocks from the ``scene`` job's arrays: meshes built with numpy and ``foreach_set`` (no Python loop
over vertices, so a 4K photo builds in a fraction of a second), photo materials, and the matched camera.

Points arrive in the engine frame (OpenCV: x right, y down, z forward); a camera whose world pose is ``Cam`` sees
engine point p at world position Cam @ F p with F = diag(1, -1, -1) (the Blender camera looks down its -Z). The
maths (frames, Blender camera numbers from intrinsics) is ``engine.geometry``'s.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from ..engine.geometry import Camera, blender_camera, frames

SENSOR_WIDTH_MM = 36.0


def engine_to_world(points: np.ndarray, camera_matrix: np.ndarray) -> np.ndarray:
    """N x 3 engine-frame points to world coordinates for a camera at ``camera_matrix`` (4x4, no scale)."""
    return frames.camera_points_to_world(points, camera_matrix, "engine")


def build_mesh(name: str, vertices: np.ndarray, uv: np.ndarray, quads: np.ndarray) -> bpy.types.Mesh:
    """A quad mesh with one UV map; ``vertices`` N x 3 (object space), ``uv`` N x 2, ``quads`` F x 4 indices.

    Writes the generic attributes (position, .corner_vert, the UV map) directly: on a 4K photo's half a million
    vertices that is about ten times faster than ``vertices.foreach_set("co")`` and ``loops.foreach_set``.
    """
    mesh = bpy.data.meshes.new(name)
    n_faces = len(quads)
    corner_vertices = np.ascontiguousarray(quads, dtype=np.int32).ravel()
    mesh.vertices.add(len(vertices))
    mesh.loops.add(4 * n_faces)
    mesh.polygons.add(n_faces)
    mesh.attributes["position"].data.foreach_set("vector", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    mesh.attributes[".corner_vert"].data.foreach_set("value", corner_vertices)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 4 * n_faces, 4, dtype=np.int32))
    uv_map = mesh.attributes.new("UVMap", "FLOAT2", "CORNER")
    uv_map.data.foreach_set("vector", np.ascontiguousarray(uv[corner_vertices], dtype=np.float32).ravel())
    mesh.update(calc_edges=True)
    return mesh


def photo_material(name: str, image: bpy.types.Image, material: bpy.types.Material | None = None
                   ) -> bpy.types.Material:
    """Emission shader with the image: renders show the photo's own colours, unlit, in Eevee and Cycles; the
    Workbench shows the same image in Texture colour mode. ``material``: one to rebuild in place (its nodes are
    replaced), else a new one called ``name``."""
    material = material or bpy.data.materials.new(name)
    if material.node_tree is None:  # Blender before 5.0 makes node trees only on request
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.extension = "EXTEND"
    texture.location = (-500, 0)
    emission = nodes.new("ShaderNodeEmission")
    emission.location = (-200, 0)
    output = nodes.new("ShaderNodeOutputMaterial")
    output.location = (100, 0)
    links.new(texture.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    nodes.active = texture
    return material


def mesh_object(name: str, mesh: bpy.types.Mesh, material: bpy.types.Material, collection) -> bpy.types.Object:
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    return obj


def set_camera_intrinsics(camera_data: bpy.types.Camera, intrinsics: dict) -> None:
    """Make a Blender camera (sensor fit AUTO, 36 mm sensor width, square pixels) project like the engine camera
    ``intrinsics`` (``width, height, fx, fy, cx, cy``); the render settings come from ``match_render_settings``."""
    if abs(intrinsics["fx"] - intrinsics["fy"]) > 1e-6 * intrinsics["fx"]:
        raise ValueError(f"Blender cameras have square pixels; fx={intrinsics['fx']} and fy={intrinsics['fy']} differ")
    numbers = blender_camera.blender_from_intrinsics(Camera.from_dict(intrinsics), sensor_fit="AUTO",
                                                     sensor_width=SENSOR_WIDTH_MM)
    camera_data.type = "PERSP"
    camera_data.sensor_fit = numbers.sensor_fit
    camera_data.sensor_width = numbers.sensor_width
    camera_data.lens = numbers.lens
    camera_data.shift_x = numbers.shift_x
    camera_data.shift_y = numbers.shift_y


def make_camera(name: str, intrinsics: dict, photo: bpy.types.Image, depth_range, collection,
                matrix_world) -> bpy.types.Object:
    data = bpy.data.cameras.new(name)
    set_camera_intrinsics(data, intrinsics)
    near, far = depth_range
    data.clip_start = max(1e-4, min(0.1, 0.1 * near))
    data.clip_end = max(100.0, 4.0 * far)
    background = data.background_images.new()
    background.image = photo
    background.frame_method = "STRETCH"  # the camera's frame has the photo's exact aspect
    data.show_background_images = True
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    obj.matrix_world = matrix_world
    return obj


def default_camera_matrix():
    """Camera at the world origin looking along +Y with +Z up (Blender's front view)."""
    from mathutils import Euler, Matrix

    return Matrix.LocRotScale((0.0, 0.0, 0.0), Euler((math.pi / 2.0, 0.0, 0.0)), None)


def match_render_settings(scene, width: int, height: int) -> None:
    """The scene renders at the photo's resolution, and shows textures without a film look."""
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.view_settings.view_transform = "Standard"


RAMP_LIMIT = "dh_ramp_limit"       # face attribute from the scene job: see engine/geometry/surface_mesh.py
RAMP_CUT_GROUP = "DHandles Ramp Cut"


def set_face_floats(mesh: bpy.types.Mesh, name: str, values: np.ndarray) -> None:
    attribute = mesh.attributes.get(name) or mesh.attributes.new(name, "FLOAT", "FACE")
    attribute.data.foreach_set("value", np.ascontiguousarray(values, dtype=np.float32))


def ramp_cut_group() -> bpy.types.NodeTree:
    """Geometry nodes that hide what the engine's reprojection does not draw: a silhouette ramp face while its
    |cos| to the camera (normal against the ray from the camera) is above its ``dh_ramp_limit``. At the import
    pose no face is cut; turned, the object keeps the clean silhouette the engine edits, with no fins."""
    group = bpy.data.node_groups.get(RAMP_CUT_GROUP)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(RAMP_CUT_GROUP, "GeometryNodeTree")
    group.is_modifier = True
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Camera", in_out="INPUT", socket_type="NodeSocketObject")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    given, result = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    camera = nodes.new("GeometryNodeObjectInfo")
    camera.transform_space = "RELATIVE"                  # the camera's location in the object's own space
    ray, unit, cosine = (nodes.new("ShaderNodeVectorMath") for _ in range(3))
    ray.operation, unit.operation, cosine.operation = "SUBTRACT", "NORMALIZE", "DOT_PRODUCT"
    absolute = nodes.new("ShaderNodeMath")
    absolute.operation = "ABSOLUTE"
    limit = nodes.new("GeometryNodeInputNamedAttribute")
    limit.data_type = "FLOAT"
    limit.inputs["Name"].default_value = RAMP_LIMIT
    over = nodes.new("FunctionNodeCompare")
    over.data_type, over.operation = "FLOAT", "GREATER_THAN"
    cut = nodes.new("GeometryNodeDeleteGeometry")
    cut.domain = "FACE"
    links.new(given.outputs["Camera"], camera.inputs["Object"])
    links.new(camera.outputs["Location"], ray.inputs[0])
    links.new(nodes.new("GeometryNodeInputPosition").outputs["Position"], ray.inputs[1])
    links.new(ray.outputs["Vector"], unit.inputs[0])
    links.new(unit.outputs["Vector"], cosine.inputs[0])
    links.new(nodes.new("GeometryNodeInputNormal").outputs["Normal"], cosine.inputs[1])
    links.new(cosine.outputs["Value"], absolute.inputs[0])
    links.new(absolute.outputs["Value"], over.inputs["A"])
    links.new(limit.outputs["Attribute"], over.inputs["B"])
    links.new(given.outputs["Geometry"], cut.inputs["Geometry"])
    links.new(over.outputs["Result"], cut.inputs["Selection"])
    links.new(cut.outputs["Geometry"], result.inputs["Geometry"])
    return group


def add_ramp_cut(obj: bpy.types.Object, camera: bpy.types.Object) -> bpy.types.Modifier:
    modifier = obj.modifiers.new("DHandles Ramp Cut", "NODES")
    group = ramp_cut_group()
    modifier.node_group = group
    socket = next(item for item in group.interface.items_tree
                  if getattr(item, "in_out", "") == "INPUT" and item.socket_type == "NodeSocketObject")
    modifier[socket.identifier] = camera
    return modifier
