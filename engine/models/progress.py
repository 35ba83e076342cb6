"""Progress of model loading and downloading, reported to whichever job is loading: the job's context sets a
reporter around a load (``reporting``), and the loaders call ``report`` and ``check_cancelled`` without knowing the
job. Outside a job (the CLI, tests) both do nothing."""

from __future__ import annotations

import contextlib
import contextvars

_reporter: contextvars.ContextVar = contextvars.ContextVar("dhandles_model_progress", default=None)


@contextlib.contextmanager
def reporting(progress, check_cancelled):
    """Inside the block, ``report(stage, step, total, message)`` calls ``progress`` with the same arguments and
    ``check_cancelled()`` calls the job's."""
    token = _reporter.set((progress, check_cancelled))
    try:
        yield
    finally:
        _reporter.reset(token)


def report(stage: str, step: int | None = None, total: int | None = None, message: str | None = None) -> None:
    current = _reporter.get()
    if current is not None:
        current[0](stage, step, total, message)


def check_cancelled() -> None:
    current = _reporter.get()
    if current is not None:
        current[1]()
