# SPDX-License-Identifier: GPL-3.0-or-later
"""A further object cut out of an imported photo, from a mask file or a painted image (``dhandles.add_object``).

The engine's ``scene`` job runs again with every object's mask, so the one background loses the new object too
(its depth hole and texture are rebuilt); the existing objects keep their meshes and poses, and the new object
stands where it is in the photo, as the camera sees it now (no edit yet).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..engine.params import SceneParams
from ..engine_link.blocking_job import run_job
from ..engine_link.preview_edit import engine_inputs
from . import scene_build
from .edit_transform import camera_pose, stored_matrix
from .photo_import import further_mask, keep_painted_masks, make_object, remove_scene_files


def add_object(context, rig, mask_path: str, mask_image: str, folder: Path) -> str:
    """Cut a further object out of ``rig``'s photo (``mask_image``: an image of this .blend, else the file
    ``mask_path``), working in ``folder``; returns the sentence to report. Raises ValueError, EngineError,
    RuntimeError or OSError with what to do."""
    if rig is None or rig.problem():
        raise ValueError(rig.problem() if rig else "Import a photo first (File > Import > Photo as 3D Scene).")
    if not mask_path and not mask_image:
        raise ValueError("Choose the new object's mask: a mask file, or an image painted in Blender.")
    path, image_name, engine_mask = further_mask(context, mask_image or mask_path, folder)
    files = engine_inputs(context, rig)
    files.pop("camera")
    params = SceneParams(**{**files, "masks": [*files.get("masks", []), engine_mask]}, fov=float(rig.fov),
                         output_dir=str(folder))
    result = run_job(context, params.JOB, params, label="Add Object")
    _rebuild_background(rig, result)
    _new_object(context, rig, result, path, image_name)
    keep_painted_masks([image_name])
    remove_scene_files(result, [])
    return f"Added object {len(rig.extra_objects) + 1} of {Path(rig.photo_path).name}"


def _rebuild_background(rig, result: dict) -> None:
    """The background without every object, in the import's world (the background object keeps its pose)."""
    background = rig.background
    arrays = {key: np.load(path) for key, path in result["background"].items()}
    world = scene_build.engine_to_world(arrays["points"], stored_matrix(rig.import_camera_matrix))
    old = background.data
    mesh = scene_build.build_mesh(old.name, world, arrays["uv"], arrays["quads"])
    for material in old.materials:
        mesh.materials.append(material)
    background.data = mesh
    if old.users == 0:
        bpy.data.meshes.remove(old)
    texture = bpy.data.images.load(result["background_texture"], check_existing=False)
    texture.pack()
    for material in mesh.materials:
        for node in material.node_tree.nodes if material and material.node_tree else []:
            if node.type == "TEX_IMAGE" and node.image is not None:
                previous, node.image = node.image, texture
                texture.name = previous.name
                if previous.users == 0:
                    bpy.data.images.remove(previous)


def _new_object(context, rig, result: dict, mask_path: str, image_name: str) -> None:
    collection = next(c for c in bpy.data.collections if c.dhandles == rig)
    photo_image = rig.camera.data.background_images[0].image
    cam_import = stored_matrix(rig.import_camera_matrix)
    number = len(result["objects"])
    name = f"{rig.target.name.rsplit(' Object', 1)[0]} Object {number}"
    target = make_object(name, result["objects"][-1], cam_import, rig.camera, photo_image, collection,
                         lambda kind, block: block)
    at_import = target.matrix_world.copy()
    # where the photo's camera is now: the new object is unedited relative to it
    now = camera_pose(rig.camera) @ np.linalg.inv(cam_import)
    target.matrix_world = Matrix(now.tolist()) @ at_import
    entry = rig.extra_objects.add()
    entry.target, entry.centroid = target, result["objects"][-1]["centroid"]
    entry.mask_path, entry.mask_image = mask_path, image_name
    entry.import_object_matrix = [float(at_import[r][c]) for r in range(4) for c in range(4)]
    context.view_layer.update()
