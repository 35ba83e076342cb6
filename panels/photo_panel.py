# SPDX-License-Identifier: GPL-3.0-or-later
"""The main sidebar panel: the imported photo (photo, mask, prompt), the object's current edit in the camera's
frame, and the actions (import, apply an official edit, reset, preview)."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..properties.photo_rig import active_rig
from ..scene.edit_transform import describe, edit_matrix
from .sidebar import SidebarPanel

FOV_SOURCES = {"given": "given", "exif_35mm": "EXIF 35 mm focal length", "exif_focal_plane": "EXIF focal plane",
               "default": "default, no usable EXIF"}


def _file_label(path: str) -> str:
    return Path(path).name if path else "none"


class DHANDLES_PT_photo(SidebarPanel, bpy.types.Panel):
    bl_label = "Photo"
    bl_idname = "DHANDLES_PT_photo"
    bl_order = 0

    def draw(self, context):
        layout = self.layout
        layout.operator("dhandles.import_photo", icon="IMPORT")
        rig = active_rig(context)
        if rig is None:
            layout.label(text="Import a photo with its depth and an object mask", icon="INFO")
            row = layout.row(align=True)
            row.operator("dhandles.new_mask_image", icon="BRUSH_DATA")
            row.operator("dhandles.mask_from_text", icon="SYNTAX_ON")
            return

        _draw_thumbnails(layout, rig)
        box = layout.box()
        box.label(text=f"Photo: {_file_label(rig.photo_path)} ({rig.width}x{rig.height})", icon="IMAGE_DATA")
        mask = f"image '{rig.mask_image}'" if rig.mask_image else _file_label(rig.mask_path)
        box.label(text=f"Mask: {mask}", icon="MOD_MASK")
        for number, entry in enumerate(rig.extra_objects, start=2):
            extra = f"image '{entry.mask_image}'" if entry.mask_image else _file_label(entry.mask_path)
            name = entry.target.name if entry.target else "deleted"
            box.label(text=f"Object {number} ({name}): {extra}", icon="MOD_MASK")
        box.label(text=f"Depth: {_file_label(rig.depth_path)}", icon="MOD_DISPLACE")
        if rig.bg_path:
            box.label(text=f"Background: {_file_label(rig.bg_path)}", icon="IMAGE_BACKGROUND")
        source = FOV_SOURCES.get(rig.fov_source, rig.fov_source)
        box.label(text=f"Field of view: {rig.fov:.1f} degrees ({source})", icon="CAMERA_DATA")
        layout.prop(rig, "prompt")
        layout.prop(rig, "fg_prompt")

        problem = rig.problem()
        box = layout.box()
        if problem:
            box.label(text=problem, icon="ERROR")
            return
        edit = describe(edit_matrix(rig), rig.centroid)
        box.label(text="Edit (camera frame: x right, y down, z forward)")
        t = edit["translation"]
        box.label(text=f"Move: {t[0]:+.3f}  {t[1]:+.3f}  {t[2]:+.3f}")
        a = edit["axis"]
        box.label(text=f"Rotate: {edit['angle']:.1f} deg about ({a[0]:+.2f}, {a[1]:+.2f}, {a[2]:+.2f})")
        s = edit["scale"]
        box.label(text=f"Scale: {s[0]:.3f}  {s[1]:.3f}  {s[2]:.3f}")

        layout.operator("dhandles.add_object", icon="ADD")
        row = layout.row(align=True)
        row.operator("dhandles.apply_official_edit", icon="FILE")
        row.operator("dhandles.reset_edit", icon="LOOP_BACK")
        row = layout.row(align=True)
        row.operator("dhandles.preview_edit", icon="RENDER_STILL")
        row.operator("dhandles.preview_animation", icon="RENDER_ANIMATION")
        if rig.last_preview:
            layout.label(text=f"Last preview: {_file_label(rig.last_preview)}", icon="CHECKMARK")


def _thumbnail_image(path: str, name: str = ""):
    """The image of this .blend for a mask or depth shown in the panel (loaded by the import), or None."""
    if name:
        return bpy.data.images.get(name)
    if not path:
        return None
    wanted = bpy.path.abspath(path)
    return next((image for image in bpy.data.images if image.filepath and bpy.path.abspath(image.filepath) == wanted),
                None)


def _draw_thumbnails(layout, rig) -> None:
    """Small previews of the photo, its mask and its depth, side by side."""
    photo = rig.camera.data.background_images[0].image if rig.camera and rig.camera.data.background_images else None
    images = [("Photo", photo), ("Mask", _thumbnail_image(rig.mask_path, rig.mask_image)),
              ("Depth", _thumbnail_image(rig.depth_path))]
    row = layout.row()
    for label, image in images:
        column = row.column(align=True)
        column.label(text=label)
        if image is not None and image.preview is not None:
            column.template_icon(icon_value=image.preview.icon_id, scale=4.0)
        else:
            column.label(text="-")


CLASSES = (DHANDLES_PT_photo,)
