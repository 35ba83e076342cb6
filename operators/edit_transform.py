# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.apply_official_edit`` and ``dhandles.reset_edit``: move the imported object by an official edit, or
back to its import pose. The maths and the rig's readers live in ``scene/edit_transform.py``."""

from pathlib import Path

import bpy
import numpy as np
from bpy_extras.io_utils import ImportHelper

from ..properties.photo_rig import usable_rig
from ..scene import photo_files
from ..scene.edit_transform import official_edit_matrix, read_official_edit, set_edit


class DHANDLES_OT_apply_official_edit(bpy.types.Operator, ImportHelper):
    """Move the imported object by an edit in the official Diffusion Handles format (transforms.json): translation,
    rotation axis and angle in degrees about the object's 3D centroid, in the official camera frame"""

    bl_idname = "dhandles.apply_official_edit"
    bl_label = "Apply Official Edit"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})
    edit: bpy.props.StringProperty(name="Edit", description="Name of the edit in the file", default="edit_000")

    def execute(self, context):
        try:
            rig = usable_rig(context)
            path = photo_files.input_file(self.filepath, "edit file", "Choose the photo's transforms.json.")
            edit = read_official_edit(str(path), self.edit)
            matrix = official_edit_matrix(rig, edit)
        except ValueError as error:  # GeometryError is a ValueError
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        set_edit(rig, matrix)
        context.view_layer.update()
        self.report({"INFO"}, f"Applied {self.edit} from {Path(self.filepath).name}")
        return {"FINISHED"}


class DHANDLES_OT_reset_edit(bpy.types.Operator):
    """Put the imported object back where it was imported, as seen from the camera"""

    bl_idname = "dhandles.reset_edit"
    bl_label = "Reset Edit"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            rig = usable_rig(context)
        except ValueError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        set_edit(rig, np.eye(4))
        context.view_layer.update()
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_apply_official_edit, DHANDLES_OT_reset_edit)
