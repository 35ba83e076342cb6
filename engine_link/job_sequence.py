# SPDX-License-Identifier: GPL-3.0-or-later
"""Several engine jobs in a row, driven a tick at a time, so an operator can run them without blocking Blender
(import: depth estimation, then the scene job), with progress and cancel as Render Edit has.

The work is a generator: it yields an ``EngineTask`` (not started), receives that job's result when it finishes
(or the job's ``EngineError`` thrown in at the ``yield``), and returns what the caller reports. ``tick`` is a plain
function of the sequence, so scripts and tests drive it in a loop (bpy in background mode fires no timers) and
the UI drives it from a modal timer. Cancelling cancels the running job and closes the generator, whose
``finally``/``except`` clauses clean up.
"""

from __future__ import annotations

from . import engine_session, job_operator
from .blocking_job import POLL_S, RENDER_RUNNING
from .engine_session import EngineError
from .engine_task import CANCELLED, FAILED, FINISHED, RUNNING

ERRORS = (ValueError, EngineError, RuntimeError, OSError)  # what the work may raise for the user to read


class JobSequence:
    def __init__(self, work, label: str):
        self.work = work
        self.label = label
        self.task = None
        self.state = RUNNING
        self.result = None          # what the work returned
        self.error: str | None = None
        self.jobs_done = 0

    @property
    def status(self) -> str:
        return self.task.status if self.task is not None and not self.task.done else self.label

    @property
    def fraction(self) -> float:
        return self.task.fraction if self.task is not None else 0.0

    def start(self, context) -> str:
        if engine_session.rendering():
            return self._fail(RENDER_RUNNING, close=True)
        return self._advance(context, lambda: next(self.work))

    def cancel(self) -> None:
        if self.state != RUNNING:
            return
        if self.task is not None and not self.task.done:
            self.task.cancel()  # the next tick sees it cancelled and closes the work
        else:
            self.work.close()
            self.state = CANCELLED

    def _advance(self, context, step) -> str:
        try:
            task = step()
        except StopIteration as stop:
            self.result, self.state = stop.value, FINISHED
            return self.state
        except ERRORS as error:
            return self._fail(str(error))
        self.task = task
        task.start(context)
        return self.state

    def _fail(self, message: str, close: bool = False) -> str:
        if close:
            self.work.close()
        self.error, self.state = message, FAILED
        return self.state


def tick(run: JobSequence, context) -> str:
    """Advance by whatever the engine sent: the next job when one finishes, the end when the work returns."""
    if run.state != RUNNING:
        return run.state
    task = run.task
    task.tick()
    if not task.done:
        return run.state
    if task.state == FINISHED:
        run.jobs_done += 1
        return run._advance(context, lambda: run.work.send(task.result or {}))
    if task.state == CANCELLED:
        run.work.close()
        run.state = CANCELLED
        return run.state
    error = EngineError(task.error_code or "failed", task.error_message or f"{task.label} failed.", task.error_detail)
    return run._advance(context, lambda: run.work.throw(error))


def run_to_end(run: JobSequence, context) -> str:
    """Drive the sequence to its end, waiting between ticks (scripts and background mode)."""
    if run.task is None and run.state == RUNNING:
        run.start(context)
    return job_operator.run_to_end(tick, run, context, POLL_S)
