# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one engine job to its end from an operator, through the session's shared engine (``engine_session``).

The scene and preview jobs take a second or two, so their operators wait for them; this keeps them usable from
``blender -b`` scripts, where no timer or modal handler ever runs. Behind a render such a job would wait for the
whole render with Blender frozen, so then it fails at once instead.
"""

from __future__ import annotations

import time

from ..engine.errors import Busy, Timeout, error_for
from . import engine_session
from .engine_task import FINISHED, EngineTask

POLL_S = 0.005
RENDER_RUNNING = "A render is running: wait for it to finish or cancel it, then try again."


def run_job(context, name: str, params, label: str | None = None, timeout: float | None = None) -> dict:
    """The result of job ``name`` (``params``: its ``engine.params`` object, or a dict); raises the typed
    ``EngineError`` of the failure's code (with its user-facing message) when it fails or takes too long, or at
    once (code ``busy``) when the engine is busy with a render."""
    if engine_session.rendering():
        raise Busy(RENDER_RUNNING)
    task = EngineTask(name, params, label=label)
    task.start(context)
    deadline = None if timeout is None else time.monotonic() + timeout
    while not task.done:
        if deadline is not None and time.monotonic() > deadline:
            task.cancel()
            raise Timeout(f"{task.label} did not finish within {timeout:g} s and was cancelled.")
        time.sleep(POLL_S)
        task.tick()
    if task.state != FINISHED:
        raise task.error or error_for("cancelled", f"{task.label} was cancelled.")
    return task.result or {}
