# SPDX-License-Identifier: GPL-3.0-or-later
"""One engine job as Blender's operators see it: submitted, then advanced by ``tick()`` until it ends.

Plain Python over ``engine_session`` (no bpy), so that tests drive it directly: bpy in background mode never fires
the timers that call ``tick()`` in the UI. ``status`` is the line the panel and the status bar show, ``fraction``
the progress bar; a failure keeps the engine's code and its user-facing message.
"""

from __future__ import annotations

import time

from ..engine.errors import error_for
from ..engine.params import Params
from . import engine_session
from .engine_session import EngineError

NEW, RUNNING, FINISHED, FAILED, CANCELLED = "NEW", "RUNNING", "FINISHED", "FAILED", "CANCELLED"

STAGE_NAMES = {"invert": "Inverting the photo", "edit": "Editing", "estimate_depth": "Estimating depth",
               "segment": "Segmenting", "preview": "Preview", "load": "Loading models", "ping": "Ping",
               "reconstruct": "Reconstructing", "frame": "Frame", "load_model": "Loading the model",
               "loading model": "Loading the model", "download": "Downloading"}
BYTE_STAGES = ("download",)  # stages whose step and total count bytes


def human_bytes(count: float) -> str:
    """``1.2 GB``, ``350.0 MB``, ``12 B``: decimal units, as download sizes are usually given."""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000.0
    return f"{count:.1f} GB"  # pragma: no cover


class EngineTask:
    """``stages``: the job's stages in order with their share of the work, e.g. ``(("invert", 1), ("edit", 3))``,
    so that ``fraction`` grows steadily over the whole job (a skipped stage counts as done); without it the
    fraction is that of the current stage."""

    cancel_grace = 5.0  # seconds a cancelled job may take to stop before the engine process is ended

    def __init__(self, name: str, params: Params | dict, workdir: str | None = None, label: str | None = None,
                 stages: tuple = ()):
        self.name = name
        self.stages = tuple((str(stage), float(weight)) for stage, weight in stages)
        # typed parameters (engine/params) travel as their JSON; a plain dict (a job without a class) as it is
        self.params = params.to_json() if isinstance(params, Params) else params
        self.workdir = workdir
        self.label = label or name
        self.job: str | None = None
        self.state = NEW
        self.status = ""
        self.fraction = 0.0
        self.stage: str | None = None
        self.thumbnail: str | None = None
        self.result: dict | None = None
        self.error_code: str | None = None
        self.error_message: str | None = None
        self.error_detail: str | None = None
        self.started_at: float | None = None
        self.cancel_requested_at: float | None = None

    @property
    def error(self) -> EngineError | None:
        """The failure as its typed class (``engine/errors.py``), to catch by type; None unless it failed."""
        if self.error_code is None:
            return None
        return error_for(self.error_code, self.error_message or "", self.error_detail)

    @property
    def done(self) -> bool:
        return self.state in (FINISHED, FAILED, CANCELLED)

    def start(self, context=None) -> str:
        self.started_at = time.monotonic()
        self.status = f"{self.label}: starting the engine"
        try:
            self.job = engine_session.submit(context, self.name, self.params, self.workdir)
        except EngineError as error:
            self._fail(error.code, error.message, error.detail)
            return self.state
        self.state = RUNNING
        self.status = f"{self.label}: waiting for the engine"
        return self.state

    def tick(self) -> str:
        """Apply the messages that arrived; returns the state. Cheap enough for a 10 Hz timer."""
        if self.done or self.job is None:
            return self.state
        for message in engine_session.take(self.job):
            self._apply(message)
            if self.done:
                engine_session.forget(self.job)
                return self.state
        if self.cancel_requested_at is not None and time.monotonic() - self.cancel_requested_at > self.cancel_grace:
            # The job is not between steps (loading a model, stuck): end the engine rather than keep the user
            # waiting. Other jobs it had end too; the next job starts a fresh engine.
            engine_session.release(timeout=0.5)
            engine_session.forget(self.job)
            self.state = CANCELLED
            self.error_code = "cancelled"
            self.status = f"{self.label}: cancelled (the engine did not stop in time and was restarted)"
        return self.state

    def cancel(self) -> None:
        if self.done:
            return
        self.cancel_requested_at = time.monotonic()
        self.status = f"{self.label}: cancelling"
        if self.job is None or not engine_session.cancel(self.job):
            self.state = CANCELLED
            self.status = f"{self.label}: cancelled"

    def _apply(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "queued" and message.get("position"):
            self.status = f"{self.label}: waiting for {message['position']} job(s) before it"
        elif kind == "started":
            self.status = f"{self.label}: started"
        elif kind == "progress":
            self.stage = message.get("stage")
            step, total = message.get("step"), message.get("total")
            stage = STAGE_NAMES.get(self.stage, str(self.stage).replace("_", " ").capitalize())
            if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
                self.fraction = max(self.fraction if self.stages else 0.0, self._overall(step / total))
                done = (f"{human_bytes(step)} of {human_bytes(total)}" if self.stage in BYTE_STAGES
                        else f"{step}/{total}")
                self.status = f"{self.label}: {stage} {done}"
            else:
                self.status = f"{self.label}: {stage}"
            if message.get("message"):
                self.status += f" ({message['message']})"
            if message.get("thumbnail"):
                self.thumbnail = message["thumbnail"]
        elif kind == "result":
            self.result = message.get("result") or {}
            self.state = FINISHED
            self.fraction = 1.0
            seconds = message.get("seconds")
            self.status = f"{self.label}: done" + (f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else "")
        elif kind == "error":
            if message.get("code") == "cancelled":
                self.state = CANCELLED
                self.error_code = "cancelled"
                self.status = f"{self.label}: cancelled"
            else:
                self._fail(message.get("code") or "internal_error", message.get("message") or "The job failed.",
                           message.get("detail"))

    def _overall(self, within: float) -> float:
        within = max(0.0, min(1.0, within))
        names = [name for name, _ in self.stages]
        if self.stage not in names:
            return within
        total = sum(weight for _, weight in self.stages) or 1.0
        index = names.index(self.stage)
        done = sum(weight for _, weight in self.stages[:index])
        return (done + self.stages[index][1] * within) / total

    def _fail(self, code: str, message: str, detail: str | None = None) -> None:
        self.state = FAILED
        self.error_code, self.error_message, self.error_detail = code, message, detail
        self.status = f"{self.label} failed: {message}"
