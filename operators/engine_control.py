# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.release_engine``: end the engine process and free its GPU memory; ``dhandles.cancel_render``: stop
the running render (the same as Esc over the viewport). The next job starts a fresh engine."""

from __future__ import annotations

import bpy

from ..engine_link import engine_session, render_status


class DHANDLES_OT_release_engine(bpy.types.Operator):
    """End the engine process and free the GPU memory its models hold. The next render starts it again"""

    bl_idname = "dhandles.release_engine"
    bl_label = "Release Engine"
    bl_options = {"REGISTER"}

    def execute(self, context):
        render_status.cancel_all()
        was_running = engine_session.release()
        message = "Engine released; GPU memory freed." if was_running else "The engine was not running."
        render_status.set_engine_status(context, message)
        self.report({"INFO"}, message)
        return {"FINISHED"}


class DHANDLES_OT_cancel_render(bpy.types.Operator):
    """Stop the running render between diffusion steps. Nothing already made is lost"""

    bl_idname = "dhandles.cancel_render"
    bl_label = "Cancel Render"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return render_status.active_count() > 0

    def execute(self, context):
        render_status.cancel_all()
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_release_engine, DHANDLES_OT_cancel_render)
