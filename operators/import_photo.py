# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.import_photo``: a photo, its depth and an object mask become a 3D scene in a collection of its own:
a camera matched to the photo (field of view, aspect, resolution; the photo as its background image), the
background as a depth-displaced mesh torn at depth discontinuities (the hole behind the object filled by the
engine's depth fill, textured with the background image or inpainting there), and the object as a mesh of its
own with its origin at its 3D centroid.

The per-pixel work (reading and validating the files, the depth fill, the meshes' arrays) runs in the engine's
``scene`` job; this side only builds datablocks. Every check happens before anything is created, so a bad input
leaves the scene as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy
import numpy as np
from bpy_extras.io_utils import ImportHelper
from mathutils import Matrix

from .. import preferences
from ..engine.errors import BadResult
from ..engine.params import EstimateDepthParams, SceneParams
from . import photo_files, scene_build
from .blocking_job import run_job
from .edit_transform import camera_pose
from .engine_session import EngineError

ESTIMATE = "estimate"
SIDE_FILE_HINTS = {  # kind: (what it is, what to do when the path given is wrong)
    "depth": ("depth map", "Choose an EXR, NPY or 16-bit PNG, or set Depth to 'estimate'."),
    "mask": ("mask", "Choose the mask image (the object white on black), or paint one and set Mask Image."),
    "bg": ("background image", "Choose the photo without the object, or leave Background empty."),
    "bg_depth": ("background depth map", "Choose its EXR, NPY or 16-bit PNG, or leave Background Depth empty."),
}


class DHANDLES_OT_import_photo(bpy.types.Operator, ImportHelper):
    """Import a photo as a 3D scene: matched camera, depth-displaced background and the masked object as a mesh
    you can move"""

    bl_idname = "dhandles.import_photo"
    bl_label = "Import Photo as 3D Scene"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: bpy.props.StringProperty(default="*.png;*.jpg;*.jpeg;*.tif;*.tiff;*.webp;*.bmp", options={"HIDDEN"})
    # the files and the field of view are never remembered from the last import (SKIP_SAVE): left unset, they come
    # from the files beside this photo and its EXIF
    depth_path: bpy.props.StringProperty(
        name="Depth", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Metric z-depth: EXR, NPY or 16-bit PNG in millimetres; 'estimate' estimates it with the "
        "engine's depth model. Empty: depth.exr (or <photo>_depth.*) beside the photo")
    mask_path: bpy.props.StringProperty(
        name="Mask", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Object mask image, white on black. Empty: mask.png (or <photo>_mask.*) beside the photo")
    mask_image: bpy.props.StringProperty(
        name="Mask Image", options={"SKIP_SAVE"},
        description="Name of an image in this .blend to use as the mask (e.g. one painted in the Image Editor), "
        "instead of a mask file")
    bg_path: bpy.props.StringProperty(
        name="Background", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Optional: the photo with the object removed, shown where the object was")
    bg_depth_path: bpy.props.StringProperty(
        name="Background Depth", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Optional: the depth of the background image")
    fov: bpy.props.FloatProperty(
        name="Field of View", default=55.0, min=1.0, max=170.0, options={"SKIP_SAVE"},
        description="Degrees across the photo's longer side. Unset: from the photo's EXIF (35 mm equivalent "
        "focal length, or focal length and focal plane resolution), else 55")
    max_grid: bpy.props.IntProperty(
        name="Mesh Resolution", default=1024, min=16, max=8192,
        description="Most vertices along the background mesh's longer side (the texture stays full resolution)")
    object_grid: bpy.props.IntProperty(
        name="Object Resolution", default=512, min=8, max=8192,
        description="Most vertices along the longer side of the object's bounding box")
    depth_model: bpy.props.StringProperty(
        name="Depth Model", description="With Depth 'estimate': the depth model (preset, hub id or folder). "
        "Empty: the add-on preferences' choice")
    use_scene_camera: bpy.props.BoolProperty(
        name="At the Scene Camera", default=False,
        description="Place the photo's camera (and so the whole photo) where the scene's active camera is, instead "
        "of at the world origin looking along +Y")
    tear: bpy.props.FloatProperty(
        name="Tear Threshold", default=0.05, min=0.0, max=10.0,
        description="Relative depth jump between neighbouring mesh cells at which the mesh tears instead of "
        "stretching (never within a plane, however slanted)")

    def invoke(self, context, event):
        return ImportHelper.invoke(self, context, event)

    def draw(self, context):
        layout = self.layout
        for name in ("depth_path", "depth_model", "mask_path"):
            layout.prop(self, name)
        layout.prop_search(self, "mask_image", bpy.data, "images")
        for name in ("bg_path", "bg_depth_path", "fov", "use_scene_camera", "max_grid", "object_grid", "tear"):
            layout.prop(self, name)

    def side_file(self, photo: Path, prop: str, kind: str) -> str:
        """The absolute path of the file given for ``prop`` (which must exist), else (only when the caller did not
        set it) the side file found; "" for none."""
        value = getattr(self, prop)
        if value or self.properties.is_property_set(prop):
            if not value or value == ESTIMATE:
                return value
            what, hint = SIDE_FILE_HINTS[kind]
            return str(photo_files.input_file(value, what, hint))
        found = photo_files.find_side_file(photo, kind)
        return str(found) if found else ""

    def execute(self, context):
        try:
            return self._execute(context)
        # RuntimeError: Blender could not load a file; OSError: a file could not be written
        except (ValueError, EngineError, RuntimeError, OSError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}

    def _execute(self, context):
        photo = photo_files.input_file(self.filepath, "photo", "Choose an image file.")
        depth = self.side_file(photo, "depth_path", "depth")
        mask = "" if self.mask_image else self.side_file(photo, "mask_path", "mask")
        bg = self.side_file(photo, "bg_path", "bg")
        bg_depth = self.side_file(photo, "bg_depth_path", "bg_depth")
        if not depth:
            raise ValueError(f"No depth map given and none found beside '{photo.name}'. Set Depth to an EXR, NPY or "
                             "16-bit PNG, or to 'estimate'.")
        if not mask and not self.mask_image:
            raise ValueError(f"No mask given and none found beside '{photo.name}'. Set Mask to a mask image, or "
                             "Mask Image to a mask painted in Blender.")

        folder = photo_files.new_scene_folder(context, photo)
        try:
            return self._import(context, photo, depth, mask, bg, bg_depth, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a failed import stays behind
            raise

    def _import(self, context, photo: Path, depth: str, mask: str, bg: str, bg_depth: str, folder: Path):
        engine_mask = mask
        if self.mask_image:
            image = bpy.data.images.get(self.mask_image)
            if image is None:
                raise ValueError(f"There is no image called '{self.mask_image}' in this file. Paint or load the mask "
                                 "image first.")
            engine_mask = str(photo_files.export_mask_image(image, folder))
        if depth == ESTIMATE:
            prefs = preferences.get(context)
            model = photo_files.model_reference(self.depth_model or (prefs.depth_model if prefs is not None else ""))
            params = EstimateDepthParams(photo=str(photo), output=str(folder / "estimated_depth.npy"),
                                         model=model or None)
            depth = run_job(context, params.JOB, params, label="Depth estimation").get("depth") or ""
            if not depth:
                raise BadResult("The depth estimation returned no depth map.")

        params = SceneParams(photo=str(photo), depth=depth, mask=engine_mask, bg=bg, bg_depth=bg_depth,
                             fov=float(self.fov) if self.properties.is_property_set("fov") else None,
                             output_dir=str(folder), max_grid=self.max_grid, object_grid=self.object_grid,
                             tear=float(self.tear))
        result = run_job(context, params.JOB, params, label="Scene")
        rig = self.build(context, photo, result, folder)
        # the meshes hold the arrays now and the texture is packed: the persistent cache keeps only what a saved
        # .blend still reads (an estimated depth map)
        for path in [*result["background"].values(), *result["object"].values(), result["background_texture"],
                     engine_mask if self.mask_image else ""]:
            if path:
                Path(path).unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
            rig.workdir = ""
        rig.depth_path, rig.mask_path, rig.mask_image = depth, mask, self.mask_image
        rig.bg_path, rig.bg_depth_path = bg, bg_depth
        rig.prompt = photo_files.read_text(photo_files.find_side_file(photo, "prompt"))
        rig.fg_prompt = photo_files.read_text(photo_files.find_side_file(photo, "fg_prompt"))
        self.report({"INFO"}, f"Imported {photo.name}: {result['width']}x{result['height']}, field of view "
                    f"{result['fov_deg']:.1f} degrees ({result['fov_note']})")
        return {"FINISHED"}

    def build(self, context, photo: Path, result: dict, folder: Path):
        """Create the collection, camera and meshes from the scene job's result; remove them all on failure."""
        created = []
        try:
            return self._build(context, photo, result, folder, created)
        except Exception:
            for block in reversed(created):
                collection = getattr(bpy.data, block[0])
                if block[1] in collection:
                    collection.remove(collection[block[1]])
            raise

    @staticmethod
    def _photo_image(photo: Path, result: dict, track):
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
        photo_image = bpy.data.images.load(str(photo), check_existing=True)
        if not existed:
            track("images", photo_image)
        return photo_image

    def _build(self, context, photo: Path, result: dict, folder: Path, created: list):
        def track(kind: str, block):
            created.append((kind, block.name))
            return block

        scene = context.scene
        name = photo.stem if photo.stem != "input" else photo.parent.name
        collection = track("collections", bpy.data.collections.new(f"DHandles {name}"))
        scene.collection.children.link(collection)

        photo_image = self._photo_image(photo, result, track)
        texture = track("images", bpy.data.images.load(result["background_texture"], check_existing=False))
        texture.name = f"{name} background"
        texture.pack()  # a generated file: keep it inside the .blend so the scene survives the cache

        camera_matrix = scene_build.default_camera_matrix()
        if self.use_scene_camera and scene.camera is not None:
            camera_matrix = Matrix(camera_pose(scene.camera).tolist())
        camera = scene_build.make_camera(f"{name} Camera", result["camera"], photo_image, result["depth_range"],
                                         collection, camera_matrix)
        track("objects", camera)
        track("cameras", camera.data)
        cam = camera_pose(camera)

        arrays = {part: {key: np.load(path) for key, path in result[part].items()}
                  for part in ("background", "object")}
        bg_world = scene_build.engine_to_world(arrays["background"]["points"], cam)
        bg_mesh = track("meshes", scene_build.build_mesh(f"{name} background", bg_world, arrays["background"]["uv"],
                                                         arrays["background"]["quads"]))
        bg_material = track("materials", scene_build.photo_material(f"{name} background", texture))
        background = track("objects", scene_build.mesh_object(f"{name} Background", bg_mesh, bg_material,
                                                              collection))

        centroid_world = scene_build.engine_to_world(np.asarray([result["centroid"]]), cam)[0]
        obj_world = scene_build.engine_to_world(arrays["object"]["points"], cam)
        obj_mesh = track("meshes", scene_build.build_mesh(f"{name} object", obj_world - centroid_world,
                                                          arrays["object"]["uv"], arrays["object"]["quads"]))
        obj_material = track("materials", scene_build.photo_material(f"{name} object", photo_image))
        target = track("objects", scene_build.mesh_object(f"{name} Object", obj_mesh, obj_material, collection))
        target.matrix_world = Matrix.Translation(centroid_world.tolist())
        context.view_layer.update()

        scene_build.match_render_settings(scene, result["width"], result["height"])
        scene.camera = camera

        rig = collection.dhandles
        rig.is_rig = True
        rig.photo_path = str(photo)
        rig.fov, rig.fov_source = result["fov_deg"], result["fov_source"]
        rig.width, rig.height = result["width"], result["height"]
        intr = result["camera"]
        rig.intrinsics = (intr["fx"], intr["fy"], intr["cx"], intr["cy"])
        rig.centroid = result["centroid"]
        rig.camera, rig.target, rig.background = camera, target, background
        rig.store_import_poses(Matrix(cam.tolist()), target.matrix_world)
        rig.workdir = str(folder)
        scene.dhandles_rig = collection

        for obj in context.view_layer.objects:
            obj.select_set(False)
        target.select_set(True)
        context.view_layer.objects.active = target
        return rig


def menu_func_import(self, context):
    self.layout.operator(DHANDLES_OT_import_photo.bl_idname, text="Photo as 3D Scene (Diffusion Handles)")


CLASSES = (DHANDLES_OT_import_photo,)


def register_extra():
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)


def unregister_extra():
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)
