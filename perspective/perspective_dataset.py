# SPDX-License-Identifier: GPL-3.0-or-later
"""Render box rooms with Blender into a perspective fine-tuning dataset with exact vanishing points and depth.

Each sample is a folder ``sample_NNNN`` holding ``image.png`` (the render), ``depth.npy`` (HxW float32 metric
z-depth, engine frame), ``caption.txt`` and ``vps.json`` (from ``vanishing_points.camera_vanishing_points``: the
world axes' vanishing points, the camera, the floor's horizon, and the room's boxes under ``scene``). Every
straight edge in a room is parallel to a world axis: the walls, floor and ceiling are tiled in two colours and
the furniture is axis-aligned boxes, so the vanishing points are exact for the whole image.

The room is built in a scene of its own, rendered (Workbench by default: fast and headless; Cycles works too) and
removed again; the user's scenes are not touched. Depth is computed exactly by intersecting each pixel's ray with
the same boxes the scene is made of (Workbench writes no depth a script can read back without the compositor).
Existing samples in the folder are kept: numbering continues after the highest.
"""

from __future__ import annotations

import json
import math
import os
import re

import bpy
import numpy as np
from mathutils import Matrix

from ..engine.geometry import frames
from .vanishing_points import camera_vanishing_points

ROOM_MIN, ROOM_MAX = np.array([-4.0, -5.0, 0.0]), np.array([4.0, 5.0, 3.0])
PALETTE = {
    "white": (0.92, 0.92, 0.90), "grey": (0.50, 0.50, 0.52), "black": (0.08, 0.08, 0.09), "red": (0.75, 0.15, 0.12),
    "blue": (0.15, 0.30, 0.75), "green": (0.20, 0.55, 0.25), "yellow": (0.90, 0.78, 0.20),
    "brown": (0.45, 0.28, 0.15), "beige": (0.85, 0.76, 0.60), "teal": (0.10, 0.55, 0.55),
}
SAMPLE_NAME = re.compile(r"^sample_(\d{4,})$")


class DatasetError(ValueError):
    pass


def _tiled_face(origin, u_axis, v_axis, u_count, v_count, colors):
    """Vertices, quads and per-quad colours of a rectangle origin + [0,1]u + [0,1]v tiled in a checkerboard."""
    verts, faces, face_colors = [], [], []
    for i in range(u_count + 1):
        for j in range(v_count + 1):
            verts.append(origin + u_axis * (i / u_count) + v_axis * (j / v_count))
    for i in range(u_count):
        for j in range(v_count):
            a = i * (v_count + 1) + j
            faces.append((a, a + v_count + 1, a + v_count + 2, a + 1))
            face_colors.append(colors[(i + j) % 2])
    return verts, faces, face_colors


def _box_faces(low, high, color):
    """The six faces of an axis-aligned box as one tile each."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    size = high - low
    ex, ey, ez = np.diag(size)
    parts = []
    for origin, u, v in ((low, ey, ex), (low + ez, ex, ey), (low, ex, ez), (low + ey, ez, ex), (low, ez, ey),
                         (low + ex, ey, ez)):
        parts.append(_tiled_face(origin, u, v, 1, 1, (color, color)))
    return parts


def _mesh_object(collection, name, parts):
    verts, faces, colors = [], [], []
    for part_verts, part_faces, part_colors in parts:
        offset = len(verts)
        verts += [tuple(map(float, v)) for v in part_verts]
        faces += [tuple(offset + i for i in f) for f in part_faces]
        colors += part_colors
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], faces)
    attribute = mesh.color_attributes.new("Color", "BYTE_COLOR", "CORNER")
    for polygon, color in zip(mesh.polygons, colors, strict=True):
        for loop in polygon.loop_indices:
            attribute.data[loop].color = (*color, 1.0)
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    return obj


def _room_parts(rng, names):
    """Tiled walls, floor and ceiling of the room, two palette colours per surface."""
    low, high = ROOM_MIN, ROOM_MAX
    size = high - low
    ex, ey, ez = np.diag(size)
    tile = rng.uniform(0.4, 1.0)
    counts = np.maximum(1, np.round(size / tile)).astype(int)
    surfaces = (("floor", low, ex, ey, counts[0], counts[1]), ("ceiling", low + ez, ex, ey, counts[0], counts[1]),
                ("wall", low, ex, ez, counts[0], counts[2]), ("wall", low + ey, ex, ez, counts[0], counts[2]),
                ("wall", low, ey, ez, counts[1], counts[2]), ("wall", low + ex, ey, ez, counts[1], counts[2]))
    parts, described = [], {}
    for kind, origin, u, v, nu, nv in surfaces:
        first, second = rng.choice(names, 2, replace=False)
        parts.append(_tiled_face(origin, u, v, int(nu), int(nv), (PALETTE[first], PALETTE[second])))
        described.setdefault(kind, (first, second))
    return parts, described


def _furniture(rng, names, camera_position, count):
    """Axis-aligned boxes standing on the floor along the walls, clear of the camera."""
    boxes = []
    for _ in range(200):
        if len(boxes) == count:
            break
        size = rng.uniform([0.4, 0.4, 0.3], [1.8, 1.8, 2.2])
        low = rng.uniform(ROOM_MIN[:2] + 0.05, ROOM_MAX[:2] - size[:2] - 0.05)
        low = np.array([*low, 0.0])
        high = low + size
        if np.all(camera_position > low - 0.4) and np.all(camera_position < high + 0.4):
            continue
        boxes.append((low, high, str(rng.choice(names))))
    return boxes


def _camera_pose(rng):
    """Camera position and world-to-camera rotation (engine frame): random yaw, modest pitch and roll."""
    position = np.array([rng.uniform(-2.0, 2.0), rng.uniform(-3.0, 3.0), rng.uniform(1.0, 2.0)])
    yaw, pitch, roll = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-20, 20)), math.radians(rng.uniform(-8, 8))
    forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.cross(forward, right)
    rows = np.array([right, down, forward])
    c, s = math.cos(roll), math.sin(roll)
    return position, np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ rows


def ray_depth(payload: dict, position: np.ndarray, boxes) -> np.ndarray:
    """HxW z-depth of each pixel centre's ray: the nearest furniture box, else the room's inside."""
    camera = payload["camera"]
    width, height = camera["width"], camera["height"]
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays_camera = np.stack([(u - camera["cx"]) / camera["fx"], (v - camera["cy"]) / camera["fy"], np.ones_like(u)], -1)
    rays = rays_camera @ np.asarray(payload["world_to_camera"])  # world directions, z-depth 1 per unit t
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / rays

        def slabs(low, high):
            t0, t1 = (low - position) * inverse, (high - position) * inverse
            return np.nanmax(np.minimum(t0, t1), axis=-1), np.nanmin(np.maximum(t0, t1), axis=-1)

        depth = slabs(ROOM_MIN, ROOM_MAX)[1]  # from inside the room: where the ray leaves it
        for low, high, _ in boxes:
            enter, leave = slabs(np.asarray(low), np.asarray(high))
            hit = (enter <= leave) & (enter > 0)
            depth = np.where(hit & (enter < depth), enter, depth)
    return depth.astype(np.float32)


def _caption(described, boxes, lens):
    floor, walls = described["floor"], described["wall"]
    furniture = f"{len(boxes)} {'box' if len(boxes) == 1 else 'boxes'}" if boxes else "no furniture"
    view = "wide-angle view" if lens < 24 else "view"
    return (f"a {view} of an indoor room with a {floor[0]} and {floor[1]} checkered floor, {walls[0]} and "
            f"{walls[1]} tiled walls and {furniture}")


def _next_index(folder: str) -> int:
    taken = [int(m.group(1)) for m in (SAMPLE_NAME.match(n) for n in os.listdir(folder)) if m]
    return max(taken, default=-1) + 1


def _set_up_render(scene, width: int, height: int, engine: str):
    """The scene's render settings for a sample: PNG, plain sRGB, flat vertex colours in Workbench."""
    render = scene.render
    render.engine = engine
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"  # plain sRGB: crisp tile colours
    if engine == "BLENDER_WORKBENCH":
        shading = scene.display.shading
        shading.light, shading.color_type = "STUDIO", "VERTEX"
        shading.show_shadows = shading.show_cavity = False
    elif engine == "CYCLES":
        scene.cycles.samples, scene.cycles.device = 16, "CPU"
    return render


def render_sample(folder: str, index: int, rng, width: int, height: int, engine: str) -> str:
    """Build one room in a scene of its own, render it into ``folder/sample_NNNN`` and remove the scene."""
    scene = bpy.data.scenes.new("dhandles_perspective_sample")
    created_meshes, created_objects = [], []
    camera_data = bpy.data.cameras.new("dhandles_perspective_camera")
    try:
        names = list(PALETTE)
        position, rotation = _camera_pose(rng)
        parts, described = _room_parts(rng, names)
        created_objects.append(_mesh_object(scene.collection, "room", parts))
        boxes = _furniture(rng, names, position, int(rng.integers(2, 7)))
        for k, (low, high, color) in enumerate(boxes):
            created_objects.append(_mesh_object(scene.collection, f"box{k}", _box_faces(low, high, PALETTE[color])))
        created_meshes = [obj.data for obj in created_objects]
        camera_data.lens = float(rng.uniform(16.0, 35.0))
        camera_data.sensor_width, camera_data.sensor_fit = 36.0, "AUTO"
        camera_data.shift_x, camera_data.shift_y = (float(s) for s in rng.uniform(-0.1, 0.1, 2))
        camera_data.clip_start, camera_data.clip_end = 0.01, 100.0
        camera = bpy.data.objects.new("dhandles_perspective_camera", camera_data)
        created_objects.append(camera)
        scene.collection.objects.link(camera)
        blender_rotation = frames.camera_world_rotation(rotation)  # R^T diag(1, -1, -1): Blender looks down -Z
        camera.matrix_world = Matrix.Translation(position.tolist()) @ Matrix(blender_rotation.tolist()).to_4x4()
        scene.camera = camera
        render = _set_up_render(scene, width, height, engine)
        world = bpy.data.worlds.new("dhandles_perspective_world")
        scene.world = world
        sample = os.path.join(folder, f"sample_{index:04d}")
        os.makedirs(sample)
        render.filepath = os.path.join(sample, "image.png")
        bpy.context.view_layer.update()
        bpy.ops.render.render(write_still=True, scene=scene.name)
        bpy.data.worlds.remove(world)
        payload = camera_vanishing_points(scene, camera, "WORLD")
        payload["horizon"] = camera_vanishing_points(scene, camera, "GROUND")["horizon"]
        payload["camera_position"] = position.tolist()
        payload["scene"] = {"room": [ROOM_MIN.tolist(), ROOM_MAX.tolist()],
                            "boxes": [[low.tolist(), high.tolist()] for low, high, _ in boxes]}
        np.save(os.path.join(sample, "depth.npy"), ray_depth(payload, position, boxes))
        with open(os.path.join(sample, "caption.txt"), "w", encoding="utf-8") as handle:
            handle.write(_caption(described, boxes, camera_data.lens) + "\n")
        with open(os.path.join(sample, "vps.json"), "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
        return sample
    finally:
        for obj in created_objects:
            bpy.data.objects.remove(obj)
        for mesh in created_meshes:
            bpy.data.meshes.remove(mesh)
        bpy.data.cameras.remove(camera_data)
        bpy.data.scenes.remove(scene)


def make_perspective_dataset(folder: str, count: int = 16, width: int = 512, height: int = 512, seed: int = 0,
                             engine: str = "BLENDER_WORKBENCH") -> list[str]:
    """Render ``count`` box rooms into ``folder`` (created if missing); returns the new sample folders."""
    if count < 1:
        raise DatasetError("Give a sample count of at least 1.")
    if width < 16 or height < 16:
        raise DatasetError(f"Resolution {width}x{height} is too small: use at least 16x16 pixels.")
    folder = os.path.abspath(bpy.path.abspath(folder))
    os.makedirs(folder, exist_ok=True)
    start = _next_index(folder)
    rng = np.random.default_rng([seed, start])
    return [render_sample(folder, start + k, rng, width, height, engine) for k in range(count)]


