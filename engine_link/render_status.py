# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a running render keeps its state, and what keeps it going: the window-manager properties the panel and the
status bar draw (``properties/window_manager.py``: status line, progress, last error), the list of renders in
flight that Esc, *Cancel Render* and *Release Engine* reach, the ``bpy.app.timers`` driver of a render started
without a modal operator (EXEC from a script or the Python console), and the handler that ends renders when
another file is loaded. Failures stay in ``dhandles_render_error`` until the next render, so they are seen in the
panel, not only in the console. The drawing is in ``panels/status_bar.py``."""

from __future__ import annotations

import bpy

from .engine_task import RUNNING

TIMER_SECONDS = 0.1  # how often a running render polls the engine (never waits on it)

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
    redraw(context)


def timers_fire() -> bool:
    """Whether Blender runs timers and modal handlers: not in background Blender (``blender -b``, the bpy module)."""
    return not bpy.app.background


def drive_with_timer(run, tick):
    """Advance ``run`` with ``tick(run, context)`` from ``bpy.app.timers`` until it ends, so the call that started
    it returns at once. Returns the registered callback: it returns the next interval while ``tick`` reports
    RUNNING and None at the end, which unregisters it. Loading a file drops it (``_cancel_on_load``)."""
    def step():
        return TIMER_SECONDS if tick(run, bpy.context) == RUNNING else None

    bpy.app.timers.register(step, first_interval=TIMER_SECONDS)
    return step


def _see_through(tasks) -> None:
    """Tick cancelled tasks until they end: one stuck in a long step is ended by its cancel grace (the engine is
    restarted), instead of holding the engine, so that later jobs would find it busy. The timer outlives the load
    that dropped the runs' own."""
    def step():
        for task in tasks:
            if task is not None and not task.done:
                task.tick()
        return TIMER_SECONDS if any(task is not None and not task.done for task in tasks) else None

    bpy.app.timers.register(step, first_interval=TIMER_SECONDS, persistent=True)


@bpy.app.handlers.persistent
def _cancel_on_load(*_args) -> None:
    """Loading a file ends the renders in flight: their timers are dropped with the old file (modal operators get
    ``cancel()``), and their results belong to the file they were started in."""
    tasks = []
    for run in list(_active):
        run.cancel()
        remove(run)
        tasks.append(run.task)
    if tasks and timers_fire():
        _see_through(tasks)
    wm = bpy.context.window_manager
    if wm is not None and getattr(wm, "dhandles_render_running", False):
        wm.dhandles_render_running = False
        wm.dhandles_render_status = "The render was cancelled: another file was loaded."


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


def register() -> None:
    bpy.app.handlers.load_pre.append(_cancel_on_load)


def unregister() -> None:
    cancel_all()
    if _cancel_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_cancel_on_load)
