# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine panel: which Python runs the engine and whether it works; Set Up Engine when there is none yet, and
the set-up's and a model download's progress."""

import os

import bpy

from .. import preferences
from .sidebar import SidebarPanel


class DHANDLES_PT_engine(SidebarPanel, bpy.types.Panel):
    bl_label = "Engine"
    bl_idname = "DHANDLES_PT_engine"
    bl_order = 100

    def draw(self, context):
        layout = self.layout
        python = preferences.resolve_engine_python(preferences.get(context))
        layout.label(text=python, icon="CONSOLE")
        status = context.window_manager.dhandles_engine_status
        if status:
            layout.label(text=status, icon="INFO")
        row = layout.row()
        row.operator("dhandles.check_engine", icon="CHECKMARK")
        if not os.path.isfile(python):
            row.operator("dhandles.setup_engine", icon="IMPORT")
        wm = context.window_manager
        for text in (wm.dhandles_setup_status, wm.dhandles_download_status):
            if text:
                layout.label(text=text, icon="INFO")


CLASSES = (DHANDLES_PT_engine,)
