# SPDX-License-Identifier: GPL-3.0-or-later
"""The one "engine job operator": what every operator that runs engine jobs (Render Edit, Render Animation,
Preview Edit, Preview Animation, Import Photo) shares, so each operator only says how its run starts, ticks and
ends.

A *run* is any object with ``cancel()`` and ``fraction`` (an ``EngineTask``, a ``RenderRun``, an
``AnimationRun``, a ``JobSequence``); a *tick* is a plain function ``tick(run, context) -> state`` that advances it
by whatever the engine sent and never waits. The same tick drives the run three ways:

- **modal** (INVOKE from the UI, or EXEC where ``exec_in_ui`` is ``"modal"``): a window timer calls ``modal``,
  Esc cancels, Blender stays usable;
- **timer** (EXEC from a script or the Python console in the UI, ``exec_in_ui = "timer"``): ``bpy.app.timers``
  calls the tick and the operator returns at once;
- **blocking** (background Blender, where no timer or modal event ever fires, or ``exec_in_ui = "wait"``): the
  tick runs in a loop (``run_to_end``) until the run ends.

The per-tick logic stays in plain functions, so tests drive it directly in background Blender.
"""

from __future__ import annotations

import time

from ..engine.errors import EngineError
from . import engine_session, render_status
from .blocking_job import POLL_S, RENDER_RUNNING
from .engine_task import CANCELLED, FAILED, FINISHED, RUNNING

ENDED = (FINISHED, FAILED, CANCELLED)


def run_to_end(tick, run, context, interval: float = POLL_S, timeout: float | None = None) -> str:
    """Tick ``run`` until it ends (background mode and scripts that wait); returns the final state. The first tick
    also reports a run that ended at its start (no engine). Past ``timeout`` seconds the run is cancelled once and
    ticked on until it ends."""
    deadline = None if timeout is None else time.monotonic() + timeout
    state = tick(run, context)
    while state not in ENDED:
        if deadline is not None and time.monotonic() > deadline:
            run.cancel()
            deadline = None
        time.sleep(interval)
        state = tick(run, context)
    return state


class EngineJobOperator:
    """Mixin for a ``bpy.types.Operator`` that runs engine jobs. A subclass defines ``start_run(context)`` (returns
    the run, or raises one of ``start_errors`` with a message for the user) and ``end_run(context, state)`` (reports
    the end and returns the operator's result set), and sets ``tick_run`` to its tick function."""

    exec_in_ui = "timer"  # what EXEC does in the UI: "timer", "modal" or "wait"
    show_blender_progress = True  # the window manager's progress cursor while modal
    start_errors: tuple = (ValueError, OSError, EngineError)
    wait_while_rendering = True  # False: a waiting EXEC is refused while a render runs (it would freeze Blender)
    tick_run = None  # staticmethod (run, context) -> state

    _run = None
    _timer = None

    def start_run(self, context):
        raise NotImplementedError

    def end_run(self, context, state: str) -> set:
        raise NotImplementedError

    def run_to_end(self, run, context) -> str:
        return run_to_end(self.tick_run, run, context)

    def start_failed(self, context, error: Exception) -> None:
        self.report({"ERROR"}, str(error))

    def _start(self, context) -> bool:
        try:
            self._run = self.start_run(context)
        except self.start_errors as error:
            self.start_failed(context, error)
            return False
        return True

    def execute(self, context):
        mode = self.exec_in_ui if render_status.timers_fire() else "wait"
        if mode == "modal" and context.window is None:  # no window to put a timer on
            mode = "wait"
        if mode == "modal":
            return self._run_modal(context)
        if mode == "wait" and not self.wait_while_rendering and engine_session.rendering():
            self.report({"ERROR"}, RENDER_RUNNING)
            return {"CANCELLED"}
        if not self._start(context):
            return {"CANCELLED"}
        if mode == "wait":
            return self.end_run(context, self.run_to_end(self._run, context))
        state = self.tick_run(self._run, context)
        if state != RUNNING:  # the engine could not start: already reported
            return self.end_run(context, state)
        render_status.drive_with_timer(self._run, self.tick_run)
        self.report({"INFO"}, f"{self.bl_label} started: the status bar shows its progress, Cancel Render stops it.")
        return {"FINISHED"}

    def invoke(self, context, event):
        if not render_status.timers_fire():
            return self.execute(context)
        return self._run_modal(context)

    def _run_modal(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        state = self.tick_run(self._run, context)
        if state != RUNNING:
            return self.end_run(context, state)
        wm = context.window_manager
        self._timer = wm.event_timer_add(render_status.TIMER_SECONDS, window=context.window)
        if self.show_blender_progress:
            wm.progress_begin(0.0, 1.0)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._run.cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}  # Blender stays fully usable while the engine works
        state = self.tick_run(self._run, context)
        self.show_progress(context)
        if state == RUNNING:
            return {"PASS_THROUGH"}  # other handlers may wait for timer events too
        self._stop(context)
        return self.end_run(context, state)

    def show_progress(self, context) -> None:
        if self.show_blender_progress:
            context.window_manager.progress_update(self._run.fraction)

    def cancel(self, context):  # Blender ends the operator (file loaded, window closed)
        if self._run is not None:
            self._run.cancel()
        self._stop(context)

    def _stop(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            if self.show_blender_progress:
                wm.progress_end()
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            workspace.status_text_set(None)

    def report_end(self, state: str, message: str, cancelled: str = "") -> set:
        """Report a run's end: INFO when it finished, WARNING when cancelled, ERROR when it failed."""
        if state == FINISHED:
            self.report({"INFO"}, message)
            return {"FINISHED"}
        self.report({"WARNING"} if state == CANCELLED else {"ERROR"}, cancelled if state == CANCELLED and
                    cancelled else message)
        return {"CANCELLED"}
