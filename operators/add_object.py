# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.add_object``: cut a further object out of an imported photo (``scene/add_object.py``)."""

import shutil
import tempfile
from pathlib import Path

import bpy

from ..engine_link.engine_session import EngineError
from ..properties.photo_rig import active_rig
from ..scene.add_object import add_object


class DHANDLES_OT_add_object(bpy.types.Operator):
    """Cut another object out of the imported photo (a mask file, or an image painted in Blender): a mesh of its
    own, moved and rendered like the first"""

    bl_idname = "dhandles.add_object"
    bl_label = "Add Object"
    bl_options = {"REGISTER", "UNDO"}

    mask_path: bpy.props.StringProperty(name="Mask", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                        description="The new object's mask image, white on black")
    mask_image: bpy.props.StringProperty(name="Mask Image", options={"SKIP_SAVE"},
                                         description="Instead of a file: an image of this .blend painted as mask")

    @classmethod
    def poll(cls, context):
        rig = active_rig(context)
        return rig is not None and rig.problem() is None

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context):
        self.layout.prop(self, "mask_path")
        self.layout.prop_search(self, "mask_image", bpy.data, "images")

    def execute(self, context):
        folder = Path(tempfile.mkdtemp(prefix="dhandles-add-object-"))
        try:
            message = add_object(context, active_rig(context), self.mask_path, self.mask_image, folder)
        except (ValueError, EngineError, RuntimeError, OSError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.report({"INFO"}, message)
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_add_object,)
