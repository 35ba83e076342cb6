# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.new_mask_image``: an image to paint the object's mask on in Blender's Image Editor.

The image is the photo at 30 % brightness, so the artist sees what to paint, and the engine reads it like any
mask: a pixel is the object where its brightest channel is above one half, so white paint is the object and the
dimmed photo is not. Import with *Mask Image* set to it (``import_photo(mask_image=...)``).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy_extras.io_utils import ImportHelper

from . import photo_files

GUIDE_BRIGHTNESS = 0.3  # below the mask threshold (0.5) for every photo pixel


def new_mask_image(photo_path: Path, name: str) -> bpy.types.Image:
    """A new image the size of the photo, showing the photo dimmed; the photo's own image is not changed."""
    photo = bpy.data.images.load(str(photo_path), check_existing=True)
    width, height = photo.size
    if width == 0 or height == 0:
        raise ValueError(f"'{photo_path}' could not be read as an image.")
    pixels = np.empty(width * height * photo.channels, dtype=np.float32)
    photo.pixels.foreach_get(pixels)
    pixels = pixels.reshape(-1, photo.channels)
    guide = np.ones((width * height, 4), dtype=np.float32)
    guide[:, :3] = pixels[:, :3] * GUIDE_BRIGHTNESS if photo.channels >= 3 else pixels[:, :1] * GUIDE_BRIGHTNESS
    image = bpy.data.images.new(name, width, height, alpha=False)
    image.pixels.foreach_set(guide.ravel())
    image.update()
    return image


def show_for_painting(context, image) -> bool:
    """Show ``image`` in an open Image Editor in Paint mode with a white brush; False when no editor is open."""
    shown = False
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
                area.spaces.active.ui_mode = "PAINT"
                shown = True
    settings = getattr(context.tool_settings, "unified_paint_settings", None)
    if settings is not None and hasattr(settings, "color"):
        settings.color = (1.0, 1.0, 1.0)
    return shown


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


CLASSES = (DHANDLES_OT_new_mask_image,)
