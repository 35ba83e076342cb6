# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.new_mask_image`` and ``dhandles.mask_from_text``: masks made in Blender (``scene/mask_images.py``)."""

import bpy
from bpy_extras.io_utils import ImportHelper

from ..engine_link.engine_session import EngineError
from ..scene import photo_files
from ..scene.mask_images import mask_from_text, new_mask_image, show_for_approval, show_for_painting


class DHANDLES_OT_new_mask_image(bpy.types.Operator, ImportHelper):
    """Make an image to paint the object's mask on: the photo, dimmed; paint the object white, then import with
    Mask Image set to it"""

    bl_idname = "dhandles.new_mask_image"
    bl_label = "New Mask Image to Paint"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: bpy.props.StringProperty(default="*.png;*.jpg;*.jpeg;*.tif;*.tiff;*.webp;*.bmp", options={"HIDDEN"})
    name: bpy.props.StringProperty(name="Name", description="Name of the new image. Empty: '<photo> mask'")

    def execute(self, context):
        try:
            photo = photo_files.input_file(self.filepath, "photo", "Choose the photo to mask.")
            image = new_mask_image(photo, self.name or f"{photo.stem} mask")
        except (ValueError, RuntimeError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        where = "" if show_for_painting(context, image) else " Open it in an Image Editor,"
        self.report({"INFO"}, f"Made '{image.name}'.{where} paint the object white, then import with Mask Image "
                    f"'{image.name}'.")
        return {"FINISHED"}


class DHANDLES_OT_mask_from_text(bpy.types.Operator, ImportHelper):
    """Make the object's mask from its name ("the chair") with the engine's segmentation model, and show it: if
    it is right, import with Mask Image set to it (or paint over it first)"""

    bl_idname = "dhandles.mask_from_text"
    bl_label = "Mask from Text"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: bpy.props.StringProperty(default="*.png;*.jpg;*.jpeg;*.tif;*.tiff;*.webp;*.bmp", options={"HIDDEN"})
    prompt: bpy.props.StringProperty(name="Object", description="The object's name, e.g. 'the chair'")
    threshold: bpy.props.FloatProperty(
        name="Threshold", default=0.4, min=0.01, max=0.99,
        description="How sure the model must be that a pixel is the object (lower: a larger mask)")
    model: bpy.props.StringProperty(
        name="Model", description="Segmentation model (preset, hub id or folder). Empty: the engine's default, "
        "CLIPSeg")

    def execute(self, context):
        try:
            photo = photo_files.input_file(self.filepath, "photo", "Choose the photo to mask.")
            if not self.prompt.strip():
                raise ValueError("Name the object to mask (for example 'the chair').")
            image, result = mask_from_text(context, photo, self.prompt, self.threshold, self.model)
        except (ValueError, RuntimeError, OSError, EngineError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        where = "" if show_for_approval(context, image) else " Open it in an Image Editor to check it;"
        self.report({"INFO"}, f"Made '{image.name}' with {result.get('model', 'the model')}: "
                    f"{result['coverage']:.1%} of the photo.{where} if it is right, import with Mask Image "
                    f"'{image.name}'; if not, try another threshold or paint it.")
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_new_mask_image, DHANDLES_OT_mask_from_text)
