# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.render_animation``: one edit per frame into an image sequence (``engine_link/render_animation.py``
runs it)."""

import bpy

from ..engine_link import render_animation
from ..engine_link.render_edit import RenderOperator


class DHANDLES_OT_render_animation(RenderOperator, bpy.types.Operator):
    """Render one edit per frame of the scene's frame range into an image sequence. Esc cancels (frames already
    rendered are kept)"""

    bl_idname = "dhandles.render_animation"
    bl_label = render_animation.LABEL
    bl_options = {"REGISTER"}

    start_render = staticmethod(render_animation.start)
    tick_run = staticmethod(render_animation.tick)

    def run_to_end(self, run, context) -> str:
        return render_animation.run_to_end(run, context)


CLASSES = (DHANDLES_OT_render_animation,)
