# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.render_edit``: the edited photo re-rendered by the engine (``engine_link/render_edit.py`` runs it)."""

import bpy

from ..engine_link.render_edit import RenderOperator


class DHANDLES_OT_render_edit(RenderOperator, bpy.types.Operator):
    """Render the edited photo: the engine re-renders it with the object where you moved it. Esc cancels"""

    bl_idname = "dhandles.render_edit"
    bl_label = "Render Edit"
    bl_options = {"REGISTER"}


CLASSES = (DHANDLES_OT_render_edit,)
