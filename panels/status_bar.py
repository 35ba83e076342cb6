# SPDX-License-Identifier: GPL-3.0-or-later
"""A running render in Blender's status bar (``STATUSBAR_HT_header``): its progress bar with the stage as text, and
a button that cancels it. ``draw_progress`` is also the Render panel's progress bar."""

import bpy

STATUS_BAR_UNITS = 16  # width of the status bar's progress bar, in UI units


def draw_progress(layout, wm) -> None:
    """The running render's progress bar with its stage as the bar's text."""
    layout.progress(factor=wm.dhandles_render_progress, type="BAR", text=wm.dhandles_render_status)


def draw_status_bar(self, context) -> None:
    """Appended to Blender's status bar (``STATUSBAR_HT_header``): while a render runs, its progress bar and stage
    and a button that cancels it."""
    wm = context.window_manager
    if not getattr(wm, "dhandles_render_running", False):
        return
    row = self.layout.row(align=True)
    row.ui_units_x = STATUS_BAR_UNITS
    draw_progress(row, wm)
    row.operator("dhandles.cancel_render", text="", icon="CANCEL")


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(draw_status_bar)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status_bar)
