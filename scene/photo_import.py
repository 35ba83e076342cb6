# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender scene of an imported photo, built from the engine's ``scene`` job result: a collection of its own
with the matched camera, the depth-displaced background mesh, one mesh per object (origin at its 3D centroid) and
the photo rig (``collection.dhandles``). Everything built is removed again when a step fails, so a failed import
leaves the scene as it was. Used by Import Photo and Add Object (``operators/``).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from . import photo_files, scene_build
from .edit_transform import camera_pose

SIDE_FILE_HINTS = {  # kind: (what it is, what to do when the path given is wrong)
    "depth": ("depth map", "Choose an EXR, NPY or 16-bit PNG, or set Depth to 'estimate'."),
    "mask": ("mask", "Choose the mask image (the object white on black), or paint one and set Mask Image."),
    "bg": ("background image", "Choose the photo without the object, or leave Background empty."),
    "bg_depth": ("background depth map", "Choose its EXR, NPY or 16-bit PNG, or leave Background Depth empty."),
}


def build_scene(context, photo: Path, result: dict, folder: Path, use_scene_camera: bool = False):
    """Create the collection, camera and meshes from the scene job's result and return the rig; remove them all
    on failure."""
    created = []

    def track(kind: str, block):
        created.append((kind, block.name))
        return block

    try:
        return _build(context, photo, result, folder, use_scene_camera, track)
    except Exception:
        for kind, name in reversed(created):
            blocks = getattr(bpy.data, kind)
            if name in blocks:
                blocks.remove(blocks[name])
        raise


def make_object(name: str, entry: dict, cam, camera, photo_image, collection, track):
    """One object's mesh from the scene job's arrays, its origin at its 3D centroid, its ramps cut as the
    engine cuts them."""
    arrays = {key: np.load(path) for key, path in entry["mesh"].items()}
    centroid_world = scene_build.engine_to_world(np.asarray([entry["centroid"]]), cam)[0]
    world = scene_build.engine_to_world(arrays["points"], cam)
    mesh = track("meshes", scene_build.build_mesh(name.replace("Object", "object"), world - centroid_world,
                                                  arrays["uv"], arrays["quads"]))
    if "ramp_limit" in arrays:
        scene_build.set_face_floats(mesh, scene_build.RAMP_LIMIT, arrays["ramp_limit"])
    material = track("materials", scene_build.photo_material(name.replace("Object", "object"), photo_image))
    target = scene_build.mesh_object(name, mesh, material, collection)
    scene_build.add_ramp_cut(target, camera)
    target.matrix_world = Matrix.Translation(centroid_world.tolist())
    return target


def photo_image(photo: Path, result: dict, track):
    """The photo's image: the file itself, or the engine's copy turned by its EXIF orientation (Blender's
    loader ignores it), packed like the background texture."""
    texture = result.get("photo_texture")
    if texture and Path(texture) != photo:
        image = track("images", bpy.data.images.load(texture, check_existing=False))
        image.name = f"{photo.name} (as displayed)"
        image.pack()
        return image
    existed = any(image.filepath and photo_files.absolute_path(image.filepath) == photo
                  for image in bpy.data.images)
    image = bpy.data.images.load(str(photo), check_existing=True)
    if not existed:
        track("images", image)
    return image



def _camera(context, name: str, result: dict, photo_image, collection, use_scene_camera: bool, track):
    scene = context.scene
    camera_matrix = scene_build.default_camera_matrix()
    if use_scene_camera and scene.camera is not None:
        camera_matrix = Matrix(camera_pose(scene.camera).tolist())
    camera = scene_build.make_camera(f"{name} Camera", result["camera"], photo_image, result["depth_range"],
                                     collection, camera_matrix)
    track("objects", camera)
    track("cameras", camera.data)
    return camera


def _background(name: str, result: dict, cam, collection, track):
    texture = track("images", bpy.data.images.load(result["background_texture"], check_existing=False))
    texture.name = f"{name} background"
    texture.pack()  # a generated file: keep it inside the .blend so the scene survives the cache
    arrays = {key: np.load(path) for key, path in result["background"].items()}
    world = scene_build.engine_to_world(arrays["points"], cam)
    mesh = track("meshes", scene_build.build_mesh(f"{name} background", world, arrays["uv"], arrays["quads"]))
    material = track("materials", scene_build.photo_material(f"{name} background", texture))
    return track("objects", scene_build.mesh_object(f"{name} Background", mesh, material, collection))


def _build(context, photo: Path, result: dict, folder: Path, use_scene_camera: bool, track):
    scene = context.scene
    name = photo.stem if photo.stem != "input" else photo.parent.name
    collection = track("collections", bpy.data.collections.new(f"DHandles {name}"))
    scene.collection.children.link(collection)
    image = photo_image(photo, result, track)
    camera = _camera(context, name, result, image, collection, use_scene_camera, track)
    cam = camera_pose(camera)
    background = _background(name, result, cam, collection, track)
    objects = result.get("objects") or [{"mesh": result["object"], "centroid": result["centroid"]}]
    targets = [track("objects", make_object(f"{name} Object" + (f" {number}" if number > 1 else ""),
                                            entry, cam, camera, image, collection, track))
               for number, entry in enumerate(objects, start=1)]
    context.view_layer.update()
    scene_build.match_render_settings(scene, result["width"], result["height"])
    scene.camera = camera
    rig = _fill_rig(collection.dhandles, photo, result, camera, background, targets, objects)
    rig.workdir = str(folder)
    scene.dhandles_rig = collection
    for obj in context.view_layer.objects:
        obj.select_set(False)
    targets[0].select_set(True)
    context.view_layer.objects.active = targets[0]
    return rig


def _fill_rig(rig, photo: Path, result: dict, camera, background, targets: list, objects: list):
    rig.is_rig = True
    rig.photo_path = str(photo)
    rig.fov, rig.fov_source = result["fov_deg"], result["fov_source"]
    rig.width, rig.height = result["width"], result["height"]
    intr = result["camera"]
    rig.intrinsics = (intr["fx"], intr["fy"], intr["cx"], intr["cy"])
    rig.centroid = result["centroid"]
    rig.camera, rig.target, rig.background = camera, targets[0], background
    rig.store_import_poses(Matrix(camera_pose(camera).tolist()), targets[0].matrix_world)
    for obj, entry in zip(targets[1:], objects[1:], strict=True):
        item = rig.extra_objects.add()
        item.target, item.centroid = obj, entry["centroid"]
        item.import_object_matrix = [float(obj.matrix_world[r][c]) for r in range(4) for c in range(4)]
    return rig


def further_mask(context, text: str, folder: Path) -> tuple[str, str, str]:
    """(mask file, mask image name, what the engine reads) for one entry of Further Masks: an image of this .blend
    by name, else a file."""
    text = text.strip()
    image = bpy.data.images.get(text)
    if image is not None and not Path(text).suffix:
        return "", text, str(photo_files.export_mask_image(image, folder))
    path = str(photo_files.input_file(text, "mask", SIDE_FILE_HINTS["mask"][1]))
    return path, "", path


def remove_scene_files(result: dict, others: list) -> None:
    objects = result.get("objects") or [{"mesh": result["object"]}]
    paths = [*result["background"].values(), result["background_texture"], *others]
    paths += [path for entry in objects for path in entry["mesh"].values()]
    for path in paths:
        if path:
            Path(path).unlink(missing_ok=True)


def keep_painted_masks(names) -> None:
    """A mask painted in Blender lives only in memory, and an image nothing uses is not saved: pack it into the
    .blend and give it a fake user, so that the file, saved and reopened, still previews and renders the photo."""
    for name in names:
        image = bpy.data.images.get(name) if name else None
        if image is None:
            continue
        image.use_fake_user = True
        if image.packed_file is None and (image.is_dirty or image.source == "GENERATED" or not image.filepath):
            image.pack()


def load_thumbnails(paths) -> None:
    """The mask and depth files as images of this .blend (not packed: they stay the user's files), so that the
    Photo panel shows them; a file Blender cannot read (an NPY) is left out."""
    for path in paths:
        if not path or Path(path).suffix.lower() == ".npy":
            continue
        try:
            image = bpy.data.images.load(path, check_existing=True)
        except RuntimeError:
            continue
        image.preview_ensure()
