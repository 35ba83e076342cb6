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
from bpy_extras.io_utils import ImportHelper

from .. import preferences
from ..engine.errors import BadResult
from ..engine.params import EstimateDepthParams, SceneParams
from ..engine_link import job_sequence
from ..engine_link.engine_task import FINISHED, EngineTask
from ..engine_link.job_operator import EngineJobOperator
from ..engine_link.job_sequence import JobSequence
from ..scene import photo_files, photo_import
from ..scene.photo_import import (
    SIDE_FILE_HINTS,
    further_mask,
    keep_painted_masks,
    load_thumbnails,
    remove_scene_files,
)

ESTIMATE = "estimate"


class DHANDLES_OT_import_photo(EngineJobOperator, bpy.types.Operator, ImportHelper):
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
    estimate_depth: bpy.props.BoolProperty(
        name="Estimate Depth", default=False, options={"SKIP_SAVE"},
        description="Estimate the photo's depth with the engine's depth model (Depth Model, else the add-on "
        "preferences' choice) instead of reading a depth file")
    mask_path: bpy.props.StringProperty(
        name="Mask", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Object mask image, white on black. Empty: mask.png (or <photo>_mask.*) beside the photo")
    mask_image: bpy.props.StringProperty(
        name="Mask Image", options={"SKIP_SAVE"},
        description="Name of an image in this .blend to use as the mask (e.g. one painted in the Image Editor), "
        "instead of a mask file")
    extra_masks: bpy.props.StringProperty(
        name="Further Masks", options={"SKIP_SAVE"},
        description="Masks of further objects, separated by ';' (files, or names of images in this .blend): one "
        "mesh each, all cut out of the one background")
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
        name="Tear Threshold", default=0.1, min=0.01, max=1.0,
        description="Relative depth jump between neighbouring mesh cells at which the surface splits instead of "
        "stretching (both sides keep their faces, so no pixel loses its surface). The engine's previews and edits "
        "split the same way at 0.1")

    def invoke(self, context, event):
        return ImportHelper.invoke(self, context, event)

    def draw(self, context):
        layout = self.layout
        prefs = preferences.get(context)
        model = self.depth_model or (prefs.depth_model if prefs is not None else "") or "the default model"
        layout.prop(self, "estimate_depth", text=f"Estimate Depth ({model})")
        column = layout.column()
        column.active = not self.estimate_depth
        column.prop(self, "depth_path")
        layout.prop(self, "depth_model")
        layout.prop(self, "mask_path")
        layout.prop_search(self, "mask_image", bpy.data, "images")
        for name in ("extra_masks", "bg_path", "bg_depth_path", "fov", "use_scene_camera", "max_grid", "object_grid",
                     "tear"):
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

    exec_in_ui = "modal"  # scripts and background mode wait for the import; the UI runs it modal (Esc cancels)
    tick_run = staticmethod(job_sequence.tick)

    def start_run(self, context) -> JobSequence:
        run = JobSequence(self._execute(context), self.bl_label)
        run.start(context)
        return run

    def show_progress(self, context) -> None:
        super().show_progress(context)
        if context.workspace is not None:
            context.workspace.status_text_set(f"{self._run.status} (Esc cancels)")

    def end_run(self, context, state: str) -> set:
        run = self._run
        return self.report_end(state, run.result if state == FINISHED else run.error or f"{self.bl_label} failed.",
                               cancelled=f"{self.bl_label} cancelled: the scene is as it was.")

    def _execute(self, context):
        """The import as a job sequence: checks, then each engine job yielded, then the scene built."""
        photo = photo_files.input_file(self.filepath, "photo", "Choose an image file.")
        depth = ESTIMATE if self.estimate_depth else self.side_file(photo, "depth_path", "depth")
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
            return (yield from self._import(context, photo, depth, mask, bg, bg_depth, folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a failed or cancelled import stays behind
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
            depth = (yield EngineTask(params.JOB, params, label="Depth estimation")).get("depth") or ""
            if not depth:
                raise BadResult("The depth estimation returned no depth map.")

        extras = [further_mask(context, text, folder) for text in self.extra_masks.split(";") if text.strip()]
        params = SceneParams(photo=str(photo), depth=depth, mask=engine_mask, bg=bg, bg_depth=bg_depth,
                             masks=[engine for _, _, engine in extras] or None,
                             fov=float(self.fov) if self.properties.is_property_set("fov") else None,
                             output_dir=str(folder), max_grid=self.max_grid, object_grid=self.object_grid,
                             tear=float(self.tear))
        result = yield EngineTask(params.JOB, params, label="Scene")
        rig = photo_import.build_scene(context, photo, result, folder, self.use_scene_camera)
        for entry, (path, image_name, _) in zip(rig.extra_objects, extras, strict=True):
            entry.mask_path, entry.mask_image = path, image_name
        # the meshes hold the arrays now and the texture is packed: the persistent cache keeps only what a saved
        # .blend still reads (an estimated depth map)
        remove_scene_files(result, [engine_mask if self.mask_image else ""] +
                           [engine for _, name, engine in extras if name])
        if not any(folder.iterdir()):
            folder.rmdir()
            rig.workdir = ""
        rig.depth_path, rig.mask_path, rig.mask_image = depth, mask, self.mask_image
        keep_painted_masks([self.mask_image, *(name for _, name, _ in extras)])
        load_thumbnails([mask, depth])
        rig.bg_path, rig.bg_depth_path = bg, bg_depth
        rig.prompt = photo_files.read_text(photo_files.find_side_file(photo, "prompt"))
        rig.fg_prompt = photo_files.read_text(photo_files.find_side_file(photo, "fg_prompt"))
        return (f"Imported {photo.name}: {result['width']}x{result['height']}, field of view "
                f"{result['fov_deg']:.1f} degrees ({result['fov_note']})")

def menu_func_import(self, context):
    self.layout.operator(DHANDLES_OT_import_photo.bl_idname, text="Photo as 3D Scene (Diffusion Handles)")


CLASSES = (DHANDLES_OT_import_photo,)


def register_extra():
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)


def unregister_extra():
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)
