# SPDX-License-Identifier: GPL-3.0-or-later
"""The Render panel: prompt and guidance settings, Render Edit / Render Animation, the progress of the running
render with a Cancel button, the last failure in words, and Release Engine."""

from __future__ import annotations

import textwrap

import bpy

from ..engine_link import engine_session
from . import status_bar
from .sidebar import SidebarPanel


def wrapped_label(layout, text: str, icon: str = "NONE", width: int = 48) -> None:
    """A long message as several labels, so the whole sentence is readable in the sidebar."""
    lines = textwrap.wrap(text, width) or [""]
    for number, line in enumerate(lines):
        layout.label(text=line, icon=icon if number == 0 else "BLANK1")


class DHANDLES_PT_render(SidebarPanel, bpy.types.Panel):
    bl_label = "Render"
    bl_idname = "DHANDLES_PT_render"
    bl_order = 50

    def draw(self, context):
        layout = self.layout
        settings = context.scene.dhandles_render
        wm = context.window_manager
        width = max(20, int(context.region.width / 7)) if context.region else 48

        layout.prop(settings, "prompt")
        row = layout.row(align=True)
        row.operator("dhandles.render_edit", icon="RENDER_STILL")
        row.operator("dhandles.render_animation", icon="RENDER_ANIMATION")
        row = layout.row(align=True)
        row.label(text="Show:")
        row.prop(settings, "show_in_image_editor", toggle=True)
        row.prop(settings, "show_on_plane", toggle=True)
        row.prop(settings, "show_as_camera_background", toggle=True)
        if settings.show_on_plane:
            layout.prop(settings, "render_plane")

        if wm.dhandles_render_running:
            box = layout.box()
            status_bar.draw_progress(box, wm)
            box.operator("dhandles.cancel_render", icon="CANCEL")
        elif wm.dhandles_render_status:
            wrapped_label(layout, wm.dhandles_render_status, "INFO", width)
        if wm.dhandles_render_error:
            box = layout.box()
            box.alert = True
            wrapped_label(box, wm.dhandles_render_error, "ERROR", width)

        row = layout.row()
        pid = engine_session.pid()
        row.label(text=f"Engine running (pid {pid})" if engine_session.running() else "Engine not running",
                  icon="PLAY" if engine_session.running() else "PAUSE")
        row.operator("dhandles.release_engine", text="Release", icon="X")


class DHANDLES_PT_render_settings(SidebarPanel, bpy.types.Panel):
    bl_label = "Settings"
    bl_idname = "DHANDLES_PT_render_settings"
    bl_parent_id = "DHANDLES_PT_render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        settings = context.scene.dhandles_render
        for name in ("seed", "steps", "guidance_scale", "identity_weight", "background_weight", "resolution",
                     "inversion", "model", "perspective_adapters"):
            layout.prop(settings, name)
        row = layout.row()
        row.active = bool(settings.perspective_adapters)
        row.prop(settings, "perspective_adapter_scale")


CLASSES = (DHANDLES_PT_render, DHANDLES_PT_render_settings)
