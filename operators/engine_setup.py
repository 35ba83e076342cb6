# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.setup_engine`` and ``dhandles.cancel_setup``: build the engine's Python environment
(``engine_link/engine_setup.py`` runs it)."""

import bpy

from ..engine_link import engine_setup


class DHANDLES_OT_setup_engine(bpy.types.Operator):
    """Create (or repair) the engine's Python environment in this extension's user folder and install its
    packages. Needs Blender's online access; takes a few minutes"""

    bl_idname = "dhandles.setup_engine"
    bl_label = "Set Up Engine"
    bl_options = {"REGISTER"}

    def execute(self, context):
        level, message = engine_setup.launch(context)
        self.report({level}, message)
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


class DHANDLES_OT_cancel_setup(bpy.types.Operator):
    """Stop the engine set-up (pressing Set Up Engine again carries on where it stopped)"""

    bl_idname = "dhandles.cancel_setup"
    bl_label = "Cancel Set-Up"
    bl_options = {"REGISTER"}

    def execute(self, context):
        return {"FINISHED"} if engine_setup.stop(context) else {"CANCELLED"}


CLASSES = (DHANDLES_OT_setup_engine, DHANDLES_OT_cancel_setup)
