"""The engine's one job queue and its one worker thread: jobs run one at a time on the accelerator, in submission
order, whichever connection submitted them.

The stdin/stdout engine has one client for its whole life; the socket engine (``socket_server.py``) serves
one connection after another but keeps this queue, its worker and the warm models for the life of the process. A
connection that goes away only cancels its own jobs, so a job it left running inside a long step (a model load,
one forward pass) still holds the accelerator until it ends, and the next connection's jobs wait behind it.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field

from . import protocol
from .job_runner import run_job

log = logging.getLogger(__name__)


@dataclass
class QueuedJob:
    job_id: str
    name: str
    params: dict
    workdir: str | None
    emit: object  # where this job's messages go: the connection that submitted it
    owner: object  # that connection; it may cancel only its own jobs
    cancel: threading.Event = field(default_factory=threading.Event)


class JobQueue:
    def __init__(self):
        self._queue: collections.deque[QueuedJob] = collections.deque()
        self._current: QueuedJob | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="engine-worker", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def status(self) -> tuple[str | None, list[str]]:
        """The running job's id (or None) and the queued ids, in order."""
        with self._cond:
            return (self._current.job_id if self._current else None), [job.job_id for job in self._queue]

    def submit(self, job: QueuedJob) -> None:
        """Queue ``job`` and answer its client with ``queued`` (before the worker can send ``started``), or with an
        error when its id is in use by an unfinished job or the engine is stopping."""
        with self._cond:
            active = [queued.job_id for queued in self._queue] + ([self._current.job_id] if self._current else [])
            if job.job_id in active:
                job.emit(protocol.error(None, "bad_message", f"Job id {job.job_id!r} is already in use."))
            elif self._stopping:
                job.emit(protocol.error(job.job_id, "engine_released", "The engine is shutting down; the job was "
                                        "not queued."))
            else:
                self._queue.append(job)
                job.emit({"type": protocol.QUEUED, "job": job.job_id, "position": len(active)})
                self._cond.notify_all()

    def cancel(self, job_id, owner) -> None:
        """Cancel ``owner``'s job ``job_id``: a queued one ends at once, the running one at its next check."""
        with self._cond:
            if self._current is not None and self._current.job_id == job_id and self._current.owner is owner:
                self._current.cancel.set()  # the job raises Cancelled at its next check and reports it
                return
            for job in list(self._queue):
                if job.job_id == job_id and job.owner is owner:
                    self._queue.remove(job)
                    job.emit(protocol.error(job_id, "cancelled", "The job was cancelled before it started."))
                    return

    def drop(self, reason: str, owner=None) -> None:
        """End the queued jobs of ``owner`` (every owner's when None) with ``engine_released`` and cancel its running
        one; the worker goes on with the jobs of others."""
        with self._cond:
            for job in [job for job in self._queue if owner is None or job.owner is owner]:
                self._queue.remove(job)
                job.emit(protocol.error(job.job_id, "engine_released", f"{reason} The job had not started."))
            if self._current is not None and (owner is None or self._current.owner is owner):
                self._current.cancel.set()

    def stop(self, reason: str, timeout: float = 10.0) -> bool:
        """Drop every job, then wait up to ``timeout`` s for the running one to end and the worker to exit; returns
        False if it is still running (a job inside a step that ignores its cancel)."""
        with self._cond:
            self._stopping = True
            self.drop(reason)
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout=timeout)
        return not self._worker.is_alive()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._current = self._queue.popleft()
            log.info("engine: job %s (%s) started", job.job_id, job.name)
            ended = []

            def emit(message, job=job, ended=ended):
                if message.get("type") in protocol.FINAL_TYPES:
                    ended.append(message.get("code") or "result")
                job.emit(message)

            try:
                run_job(job.job_id, job.name, job.params, emit, job.cancel, job.workdir)
            finally:
                with self._cond:
                    self._current = None
            log.info("engine: job %s (%s) ended: %s", job.job_id, job.name, ", ".join(ended) or "no result")
