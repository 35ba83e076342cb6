# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.make_perspective_dataset``: render box rooms into a perspective fine-tuning dataset
(``perspective/perspective_dataset.py`` renders them)."""

import bpy

from ..perspective.perspective_dataset import DatasetError, make_perspective_dataset


class DHANDLES_OT_make_perspective_dataset(bpy.types.Operator):
    """Render box rooms with exact vanishing points and depth into a folder, for perspective fine-tuning
    (python -m engine finetune-perspective)"""

    bl_idname = "dhandles.make_perspective_dataset"
    bl_label = "Make Perspective Dataset"
    bl_options = {"REGISTER"}

    directory: bpy.props.StringProperty(name="Folder", subtype="DIR_PATH")
    count: bpy.props.IntProperty(name="Samples", default=16, min=1, max=100000)
    resolution: bpy.props.IntProperty(name="Resolution", default=512, min=16, max=4096)
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    engine: bpy.props.EnumProperty(name="Renderer", items=(
        ("BLENDER_WORKBENCH", "Workbench", "Fast flat-shaded renders"),
        ("CYCLES", "Cycles", "Path-traced renders (slower)"),
    ), default="BLENDER_WORKBENCH")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        if not self.directory:
            self.report({"ERROR"}, "Choose a folder for the dataset.")
            return {"CANCELLED"}
        try:
            samples = make_perspective_dataset(self.directory, self.count, self.resolution, self.resolution,
                                               self.seed, self.engine)
        except (DatasetError, OSError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Rendered {len(samples)} samples into {self.directory}")
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_make_perspective_dataset,)
