"""The long-lived engine: reads protocol messages on stdin, runs jobs one at a time, keeps models warm.

Threads: the caller's thread reads stdin (so a cancel is seen while a job runs), one worker runs queued jobs in
submission order (``job_queue.py``: one job at a time on the accelerator), and a heartbeat thread tells the
client the process is alive. Models stay cached between jobs in ``engine/model_cache.py``. End of stdin means the
client is gone: the server cancels what it has and exits, as it does on ``shutdown``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from .. import __version__, model_cache
from ..environment import installed_versions
from ..jobs import job_names
from . import protocol
from .job_queue import JobQueue, QueuedJob


def hello_message(heartbeat: float) -> dict:
    packages = installed_versions()
    return {
        "type": protocol.HELLO,
        "protocol": protocol.VERSION,
        "engine": __version__,
        "pid": os.getpid(),
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "jobs": job_names(),
        "packages": packages,
        "missing_packages": [name for name, version in packages.items() if version is None],
        "heartbeat": heartbeat,
    }


class Server:
    """One client's session: reads its messages, queues its jobs on ``jobs`` and sends it heartbeats. Without
    ``jobs`` the session has a queue of its own and ends it (and frees the models) when the client goes away,
    as the stdin/stdout engine does; with a shared one, only this client's jobs end with it."""

    def __init__(self, lines, emit, heartbeat: float = 1.0, jobs: JobQueue | None = None):
        self._lines = lines
        self._emit = emit
        self._heartbeat = heartbeat
        self._owns_jobs = jobs is None
        self.jobs = JobQueue() if jobs is None else jobs
        self._ended = threading.Event()
        self.shutdown_requested = False

    # Reading side.

    def serve(self) -> int:
        """Run until ``shutdown`` or the end of the input."""
        self._emit(hello_message(self._heartbeat))
        if self._owns_jobs:
            self.jobs.start()
        beat = threading.Thread(target=self._beat, name="engine-heartbeat", daemon=True)
        beat.start()
        for line in self._lines:
            if isinstance(line, protocol.OversizedLine) or line.strip():
                self.handle_line(line)
            if self.shutdown_requested:
                break
        self._ended.set()
        reason = "The engine was shut down." if self.shutdown_requested else "The client went away."
        if self._owns_jobs or self.shutdown_requested:
            self.jobs.stop(reason)
            model_cache.clear()
        else:
            self.jobs.drop(reason, owner=self)  # the worker, the models and others' jobs stay
        self._emit({"type": protocol.BYE})
        return 0

    def handle_line(self, line: str | bytes) -> None:
        """Act on one line; whatever the line holds, only this message fails (``bad_message``)."""
        try:
            message = protocol.decode(line, allowed_types=protocol.CLIENT_TYPES)
        except protocol.ProtocolError as error:
            self._emit(protocol.error(None, error.code, f"Ignored a message that is not valid: {error}."))
            return
        try:
            self._dispatch(message)
        except Exception as error:
            logging.getLogger(__name__).exception("engine: a message could not be handled")
            self._emit(protocol.error(message.get("job") if isinstance(message.get("job"), str) else None,
                                      "bad_message", f"Ignored a message that could not be handled: "
                                      f"{type(error).__name__}."))

    def _dispatch(self, message: dict) -> None:
        kind = message["type"]
        if kind == protocol.SUBMIT:
            self._submit(message)
        elif kind == protocol.CANCEL:
            self.jobs.cancel(message.get("job"), owner=self)
        elif kind == protocol.PING:
            busy, queued = self.jobs.status()
            self._emit({"type": protocol.PONG, "id": message.get("id"), "busy": busy, "queued": queued})
        elif kind == protocol.SHUTDOWN:
            self.shutdown_requested = True

    def _submit(self, message: dict) -> None:
        job_id, name, params = message.get("job"), message.get("name"), message.get("params", {})
        workdir = message.get("workdir")
        if not isinstance(job_id, str) or not job_id:
            self._emit(protocol.error(None, "bad_message", "A submit message needs a non-empty string 'job' id."))
            return
        problem = None
        if not isinstance(name, str) or not name:
            problem = "a string 'name'"
        elif not isinstance(params, dict):
            problem = "'params' as a JSON object"
        elif workdir is not None and not isinstance(workdir, str):
            problem = "'workdir' as a string"
        if problem:
            self._emit(protocol.error(job_id, "bad_message", f"A submit message needs {problem}."))
            return
        self.jobs.submit(QueuedJob(job_id, name, params, workdir, self._emit, self))

    def _beat(self) -> None:
        while not self._ended.wait(self._heartbeat):
            self._emit({"type": protocol.HEARTBEAT, "busy": self.jobs.status()[0]})
