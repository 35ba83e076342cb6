# SPDX-License-Identifier: GPL-3.0-or-later
"""The perspective panel: which vanishing points go with each edit, the perspective guidance, and the dataset
renderer for perspective fine-tuning."""

import bpy

from .sidebar import SidebarPanel


class DHANDLES_PT_perspective(SidebarPanel, bpy.types.Panel):
    bl_label = "Perspective"
    bl_idname = "DHANDLES_PT_perspective"
    bl_order = 60
    bl_options = {"DEFAULT_CLOSED"}

    def draw_header(self, context):
        settings = getattr(context.scene, "dhandles_perspective", None)
        if settings is not None:
            self.layout.prop(settings, "enabled", text="")

    def draw(self, context):
        layout = self.layout
        settings = getattr(context.scene, "dhandles_perspective", None)
        if settings is None:
            return
        column = layout.column()
        column.active = settings.enabled
        column.prop(settings, "source")
        if settings.source != "WORLD":
            column.prop(settings, "reference_object")
        column.operator("dhandles.show_vanishing_points", icon="VIEW_PERSPECTIVE").source = settings.source
        if hasattr(context.scene, "dhandles_draw_vps"):
            column.prop(context.scene, "dhandles_draw_vps")
        column.separator()
        column.prop(settings, "guidance_weight")
        guided = column.column()
        guided.active = settings.guidance_weight > 0
        guided.prop(settings, "guidance_mode")
        guided.prop(settings, "guidance_every")
        row = guided.row(align=True)
        row.prop(settings, "guidance_t_min", text="From t")
        row.prop(settings, "guidance_t_max", text="To t")
        layout.separator()
        layout.operator("dhandles.make_perspective_dataset", icon="RENDER_STILL")


CLASSES = (DHANDLES_PT_perspective,)
