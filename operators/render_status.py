# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a running render shows itself: window-manager properties the panel draws (status line, progress bar,
last error), the status bar text, and the list of renders in flight that Esc, *Cancel Render* and *Release
Engine* reach. Failures stay in ``dhandles_render_error`` until the next render, so they are seen in the panel,
not only in the console."""

from __future__ import annotations

import bpy

_active: list = []  # runs in flight: objects with cancel()


def add(run) -> None:
    _active.append(run)


def remove(run) -> None:
    if run in _active:
        _active.remove(run)


def active_count() -> int:
    return len(_active)


def cancel_all() -> None:
    for run in list(_active):
        run.cancel()


def update(context, status: str, fraction: float | None = None, running: bool = True, error: str | None = None):
    wm = context.window_manager
    wm.dhandles_render_status = status
    if fraction is not None:
        wm.dhandles_render_progress = max(0.0, min(1.0, float(fraction)))
    wm.dhandles_render_running = running
    if error is not None:
        wm.dhandles_render_error = error
    workspace = getattr(context, "workspace", None)
    if workspace is not None:
        workspace.status_text_set(status if running else None)
    redraw(context)


def set_engine_status(context, text: str) -> None:
    wm = context.window_manager
    if hasattr(wm, "dhandles_engine_status"):
        wm.dhandles_engine_status = text
    redraw(context)


def redraw(context) -> None:
    for window in getattr(context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "IMAGE_EDITOR", "STATUSBAR"):
                area.tag_redraw()


CLASSES = ()


def register_extra():
    wm = bpy.types.WindowManager
    wm.dhandles_render_status = bpy.props.StringProperty(name="Render Status", default="", options={"SKIP_SAVE"})
    wm.dhandles_render_progress = bpy.props.FloatProperty(name="Render Progress", default=0.0, min=0.0, max=1.0,
                                                         subtype="FACTOR", options={"SKIP_SAVE"})
    wm.dhandles_render_running = bpy.props.BoolProperty(name="Rendering", default=False, options={"SKIP_SAVE"})
    wm.dhandles_render_error = bpy.props.StringProperty(name="Last Render Error", default="",
                                                        options={"SKIP_SAVE"})


def unregister_extra():
    cancel_all()
    for name in ("dhandles_render_status", "dhandles_render_progress", "dhandles_render_running",
                 "dhandles_render_error"):
        delattr(bpy.types.WindowManager, name)
