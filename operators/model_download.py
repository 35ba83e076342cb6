# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.download_models`` and ``dhandles.cancel_download``: the weights the settings need, as an engine job
(``engine_link/model_download.py`` follows it)."""

import bpy

from ..engine_link import model_download


class DHANDLES_OT_download_models(bpy.types.Operator):
    """Download the model weights the current settings need into the Hugging Face cache (several GB the first
    time). Needs Blender's online access"""

    bl_idname = "dhandles.download_models"
    bl_label = "Download Models"
    bl_options = {"REGISTER"}

    def execute(self, context):
        level, message = model_download.launch(context)
        if message:
            self.report({level}, message)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


class DHANDLES_OT_cancel_download(bpy.types.Operator):
    """Stop the model download (what is downloaded so far is kept and resumed next time)"""

    bl_idname = "dhandles.cancel_download"
    bl_label = "Cancel Download"
    bl_options = {"REGISTER"}

    def execute(self, context):
        return {"FINISHED"} if model_download.stop() else {"CANCELLED"}


CLASSES = (DHANDLES_OT_download_models, DHANDLES_OT_cancel_download)
