"""The long-lived engine: reads protocol messages on stdin, runs jobs one at a time, keeps models warm.

Threads: the caller's thread reads stdin (so a cancel is seen while a job runs), one worker runs queued jobs in
submission order (one job at a time on the accelerator), and a heartbeat thread tells the client the process is
alive. Models stay cached between jobs in ``engine/model_cache.py``. End of stdin means the client is gone: the
server cancels what it has and exits, as it does on ``shutdown``.
"""

from __future__ import annotations

import collections
import importlib.metadata
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass, field

from . import __version__, model_cache, protocol
from .commands.info import PACKAGES
from .job_runner import run_job
from .jobs import job_names

# Import names and the distributions they come from, for the versions the hello reports.
_DISTRIBUTIONS = {"PIL": "pillow", "cv2": "opencv-python-headless", "OpenEXR": "OpenEXR"}
REQUIRED_PACKAGES = tuple(PACKAGES) + ("PIL",)


def package_report() -> dict:
    """Each required import name mapped to its installed version, or None when it cannot be found.
    Uses import specs and metadata only: importing torch here would slow every engine start by seconds."""
    report = {}
    for name in REQUIRED_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        version = None
        if found:
            try:
                version = importlib.metadata.version(_DISTRIBUTIONS.get(name, name))
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
        report[name] = version
    return report


def hello_message(heartbeat: float) -> dict:
    packages = package_report()
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


@dataclass
class QueuedJob:
    job_id: str
    name: str
    params: dict
    workdir: str | None
    cancel: threading.Event = field(default_factory=threading.Event)


class Server:
    def __init__(self, lines, emit, heartbeat: float = 1.0):
        self._lines = lines
        self._emit = emit
        self._heartbeat = heartbeat
        self._queue: collections.deque[QueuedJob] = collections.deque()
        self._current: QueuedJob | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self.shutdown_requested = False

    # Reading side.

    def serve(self, keep_models: bool = False, hello_extra: dict | None = None) -> int:
        """Run until ``shutdown`` or the end of the input. ``keep_models``: leave the model cache loaded for the
        next connection (socket transport) instead of freeing it."""
        self._emit({**hello_message(self._heartbeat), **(hello_extra or {})})
        worker = threading.Thread(target=self._work, name="engine-worker", daemon=True)
        worker.start()
        beat = threading.Thread(target=self._beat, name="engine-heartbeat", daemon=True)
        beat.start()
        for line in self._lines:
            if line.strip():
                self.handle_line(line)
            if self._stopping:
                break
        self.stop("The engine was shut down." if self.shutdown_requested else "The client went away.")
        worker.join(timeout=10.0)
        if not keep_models or self.shutdown_requested:
            model_cache.clear()
        self._emit({"type": protocol.BYE})
        return 0

    def handle_line(self, line: str) -> None:
        try:
            message = protocol.decode(line, allowed_types=protocol.CLIENT_TYPES)
        except protocol.ProtocolError as error:
            code = "unsupported_version" if "protocol version" in str(error) else "bad_message"
            self._emit(protocol.error(None, code, f"Ignored a message that is not valid: {error}."))
            return
        kind = message["type"]
        if kind == protocol.SUBMIT:
            self._submit(message)
        elif kind == protocol.CANCEL:
            self._cancel(message.get("job"))
        elif kind == protocol.PING:
            with self._cond:
                busy = self._current.job_id if self._current else None
                queued = [job.job_id for job in self._queue]
            self._emit({"type": protocol.PONG, "id": message.get("id"), "busy": busy, "queued": queued})
        elif kind == protocol.SHUTDOWN:
            self.shutdown_requested = True
            self._stopping = True

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
        with self._cond:
            active = [job.job_id for job in self._queue] + ([self._current.job_id] if self._current else [])
            if job_id in active:
                self._emit(protocol.error(None, "bad_message", f"Job id {job_id!r} is already in use."))
                return
            self._queue.append(QueuedJob(job_id, name, params, workdir))
            self._emit({"type": protocol.QUEUED, "job": job_id, "position": len(active)})
            self._cond.notify_all()

    def _cancel(self, job_id) -> None:
        with self._cond:
            if self._current is not None and self._current.job_id == job_id:
                self._current.cancel.set()  # the job raises Cancelled at its next check and reports it
                return
            for job in list(self._queue):
                if job.job_id == job_id:
                    self._queue.remove(job)
                    self._emit(protocol.error(job_id, "cancelled", "The job was cancelled before it started."))
                    return

    def stop(self, reason: str) -> None:
        with self._cond:
            self._stopping = True
            while self._queue:
                job = self._queue.popleft()
                self._emit(protocol.error(job.job_id, "engine_released", f"{reason} The job had not started."))
            if self._current is not None:
                self._current.cancel.set()
            self._cond.notify_all()

    # Working side.

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                job = self._current = self._queue.popleft()
            print(f"engine: job {job.job_id} ({job.name}) started", file=sys.stderr)
            try:
                run_job(job.job_id, job.name, job.params, self._emit, job.cancel, job.workdir)
            finally:
                with self._cond:
                    self._current = None
            print(f"engine: job {job.job_id} ({job.name}) ended", file=sys.stderr)

    def _beat(self) -> None:
        stopped = threading.Event()
        while not stopped.wait(self._heartbeat):
            with self._cond:
                if self._stopping:
                    return
                busy = self._current.job_id if self._current else None
            self._emit({"type": protocol.HEARTBEAT, "busy": busy})
