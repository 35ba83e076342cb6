# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.preview_edit`` and ``dhandles.preview_animation``: the photo after the edit, by reprojection only
(no diffusion). ``engine_link/preview_edit.py`` builds the jobs and shows their results."""

import bpy

from ..engine_link import preview_edit
from ..engine_link.preview_edit import PreviewOperator


class DHANDLES_OT_preview_edit(PreviewOperator, bpy.types.Operator):
    """Preview the edit without diffusion: reproject the photo's object through its new pose, fill what it
    reveals, and show the result"""

    bl_idname = "dhandles.preview_edit"
    bl_label = "Preview Edit"
    bl_options = {"REGISTER"}

    output_path: bpy.props.StringProperty(
        name="Output", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="PNG to write (a folder: the default name in it). Empty: beside the .blend (or in the cache "
        "folder for an unsaved file)")

    make_params = staticmethod(preview_edit.edit_preview_params)
    show_result = staticmethod(preview_edit.show_edit_preview)


class DHANDLES_OT_preview_animation(PreviewOperator, bpy.types.Operator):
    """Preview the edit at every frame of the scene's range (the object's animation, constraints, drivers), as an
    image sequence"""

    bl_idname = "dhandles.preview_animation"
    bl_label = "Preview Animation"
    bl_options = {"REGISTER"}

    output_path: bpy.props.StringProperty(
        name="Output", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="PNG path pattern; '#' marks the frame number (added before the extension when missing); a "
        "folder: the default name in it. Empty: beside the .blend (or in the cache folder for an unsaved file)")

    make_params = staticmethod(preview_edit.animation_preview_params)
    show_result = staticmethod(preview_edit.show_animation_preview)


CLASSES = (DHANDLES_OT_preview_edit, DHANDLES_OT_preview_animation)
