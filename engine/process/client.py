"""Drive the engine process from Blender or a script: start it, submit jobs, poll for progress, cancel, release.

Standard library only, and never blocking for long: Blender calls ``poll()`` from a timer, so the UI stays live.
The engine runs as ``<python> -m engine serve`` in its own process (see ``docs/protocol.md``). This client notices
when that process is missing, broken, crashed or hung (silent, or a job stuck in one step: its heartbeats go on,
but no progress comes), ends every job it had with an ``error`` message whose ``code`` says which, and starts a
fresh engine on the next ``submit``.

    client = EngineClient(python="/path/.venv/bin/python")
    job = client.submit("ping", {"steps": 3})
    for message in client.poll(): ...           # {"type": "progress"|"result"|"error"|..., "job": job, ...}
    client.cancel(job)
    result = client.run("ping", {}, on_progress=print)   # blocking; raises EngineError(code, message)
    client.release()                                      # ends the process, frees GPU memory
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from ..errors import (
    EngineCrashed,
    EngineError,  # noqa: F401  (re-exported: engine.process.client.EngineError is the base every client catches)
    EngineFault,
    EngineHung,
    EngineMissingPackages,
    EnginePythonNotFound,
    EngineReleased,
    EngineStartFailed,
    Timeout,
    UnsupportedVersion,
    error_for,
)
from . import protocol, python_check

# The folder that holds the ``engine`` package: the engine runs as ``python -m engine`` from there.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent

# Import names the hello may report missing, and the pip distributions that provide them.
PIP_NAMES = {"PIL": "pillow", "cv2": "opencv-python-headless"}

_EOF = object()


class EngineClient:
    """One engine process at a time, started on demand; jobs run in it one after another."""

    AFTER_A_STOP = "the next job starts a fresh engine."  # what follows when this client ends a hung engine

    def __init__(self, python: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
                 hang_timeout: float = 120.0, start_timeout: float = 60.0, require_packages: bool = True,
                 log=None, stderr_lines: int = 200, heartbeat: float = 1.0, stall_timeout: float = 900.0):
        self.python = str(python)
        self.cwd = str(cwd) if cwd is not None else str(PACKAGE_PARENT)
        self.env = env
        self.hang_timeout = hang_timeout
        # Seconds a running job may go without a progress message (the heartbeats go on while it is stuck inside
        # one step); None: no limit. Generous: one guided step of the full-size model on a 2-core CPU takes minutes.
        self.stall_timeout = stall_timeout
        self.start_timeout = start_timeout
        self.require_packages = require_packages
        self.heartbeat = heartbeat  # seconds between the engine's heartbeats; keep well under hang_timeout
        self.log = log  # called with each line the engine writes to stderr, from a background thread
        self.hello: dict | None = None
        self.starts = 0
        self.faults = 0  # lines from the engine that were not valid messages
        self._proc: subprocess.Popen | None = None
        self._messages: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._active: dict[str, dict] = {}
        self._pending: list[dict] = []
        self._last_heard = 0.0
        self._eof_seen = False
        self._readers: list[threading.Thread] = []

    # Process lifetime.

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def active_jobs(self) -> dict[str, dict]:
        """Jobs submitted and not yet ended: id -> {"name", "state", "stage", "step", "total", "stall_timeout",
        "progress_at"} (``progress_at``: ``time.monotonic()`` of its last start or progress message)."""
        return {job: dict(info) for job, info in self._active.items()}

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def start(self) -> dict:
        """Start the engine if it is not running and wait for its hello; returns the hello message."""
        if self.running and self.hello is not None:
            return self.hello
        self._discard_process()
        proc = self._spawn()
        self._proc = proc
        self._messages = queue.Queue()
        self._stderr.clear()
        self.hello = None
        self.starts += 1
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(proc, self._messages), daemon=True,
                             name="engine-client-stdout"),
            threading.Thread(target=self._read_stderr, args=(proc,), daemon=True, name="engine-client-stderr"),
        ]
        for reader in self._readers:
            reader.start()
        self.hello = self._wait_for_hello(proc)
        self._last_heard = time.monotonic()
        return self.hello

    def _spawn(self):
        """Start ``python -m engine serve``; the process's pipes carry the protocol."""
        python = Path(self.python)
        if not self.python or not python.is_file() or not os.access(python, os.X_OK):
            raise EnginePythonNotFound(f"The engine Python '{self.python}' does not exist or "
                                       "cannot be run. Set 'Engine Python' in the add-on preferences to the Python of "
                                       "an environment with torch and diffusers, or leave it empty and press Set Up "
                                       "Engine there (in a clone of the source: make setup).")
        env = dict(os.environ if self.env is None else self.env)
        for variable in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"):  # Blender's own settings must not leak in
            if self.env is None:
                env.pop(variable, None)
        env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        extra = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else \
            {"start_new_session": True}  # Ctrl-C in Blender's terminal must not kill the engine mid-job
        try:
            return subprocess.Popen([self.python, "-u", "-m", "engine", "serve", "--heartbeat", str(self.heartbeat)],
                                    cwd=self.cwd, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **extra)
        except OSError as error:
            raise EnginePythonNotFound(f"Could not run the engine Python '{self.python}': "
                              f"{error.strerror or error}. Check 'Engine Python' in the add-on preferences.") from None

    def _wait_for_hello(self, proc) -> dict:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                item = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._kill()
                self._join_readers()
                raise EngineStartFailed(f"The engine did not answer within {self.start_timeout:.0f}"
                                  " s of starting.", self.stderr_tail()) from None
            if item is _EOF:
                code = self._wait_exit(proc, 5.0)
                self._join_readers()  # the stderr reader may still hold the reason
                tail = self.stderr_tail()
                self._discard_process()
                found = refused_python(tail)
                if found is not None:
                    raise EngineStartFailed(python_check.wrong_python_message(found, self.python),
                                      tail)
                hint = ""
                if "No module named engine" in tail:
                    hint = f" The engine package was not found in '{self.cwd}'."
                elif "SyntaxError" in tail or "invalid syntax" in tail:
                    hint = f" The engine needs Python {python_check.required_text()}."
                raise EngineStartFailed(f"The engine stopped while starting ({describe_exit(code)})."
                                  f"{hint} Check 'Engine Python' in the add-on preferences.", tail)
            if not isinstance(item, dict) or item.get("type") != protocol.HELLO:
                continue
            version = item.get("python_version")
            if version is not None and not python_check.is_supported(version):
                self._kill()  # packages would not help: what they need is another Python
                raise EngineStartFailed(python_check.wrong_python_message(
                    version, item.get("python") or self.python))
            if item.get("protocol") != protocol.VERSION:
                self._kill()
                raise UnsupportedVersion(f"The engine speaks protocol {item.get('protocol')}, the "
                                  f"extension {protocol.VERSION}: install matching versions of both.")
            missing = item.get("missing_packages") or []
            if missing and self.require_packages:
                self._kill()
                names = " ".join(PIP_NAMES.get(name, name) for name in missing)
                raise EngineMissingPackages(f"The engine Python '{self.python}' lacks "
                                            f"{', '.join(missing)}. Press Set Up Engine in the add-on preferences to "
                                            "repair it (in a clone of the source: make setup), or install them: "
                                            f"\"{self.python}\" -m pip install {names}")
            return item

    def release(self, timeout: float = 5.0) -> None:
        """End the engine process (it frees its GPU memory by exiting). Jobs still running end with an error."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self._send(protocol.encode({"type": protocol.SHUTDOWN}))
                proc.stdin.close()
            except OSError:
                pass
            if self._wait_exit(proc, timeout) is None:
                self._kill()
        self._join_readers()  # the engine's last messages may still be in the pipes
        self._pending.extend(self._drain())
        for job in list(self._active):
            self._finish(job, EngineReleased("The engine was released before the job ended."
                                          ).as_message(job))
        self._discard_process()

    close = release

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    # Jobs.

    def submit(self, name: str, params: dict | None = None, workdir: str | os.PathLike | None = None,
               stall_timeout: float | None = None) -> str:
        """Queue job ``name`` in the engine (starting it if needed); returns the job id at once. ``stall_timeout``:
        this job's limit on seconds without progress once it runs (None: the client's)."""
        job = uuid.uuid4().hex[:12]
        line = protocol.encode(protocol.submit(job, name, params or {},
                                               None if workdir is None else str(workdir)))
        for attempt in (1, 2):
            self.start()
            try:
                self._send(line)
                break
            except OSError:
                if attempt == 2:  # a fresh engine that dies at once: report it like any other crash
                    raise EngineCrashed("The engine stopped as soon as it started.",
                                      self.stderr_tail()) from None
                self._collect_crash()
        self._active[job] = {"name": name, "state": "submitted", "stage": None, "step": None, "total": None,
                             "stall_timeout": self.stall_timeout if stall_timeout is None else stall_timeout,
                             "progress_at": None}
        self._last_heard = time.monotonic()
        return job

    def cancel(self, job: str) -> bool:
        """Ask the engine to stop ``job``; its error message (code ``cancelled``) follows in ``poll()``."""
        if job not in self._active:
            return False
        try:
            self._send(protocol.encode(protocol.cancel(job)))
        except OSError:
            self._finish(job, protocol.error(job, "cancelled", "The job was cancelled."))
        return True

    def poll(self) -> list[dict]:
        """Messages that arrived since the last call, without waiting. Heartbeats are consumed here; a dead or
        silent engine, or a job stuck in one step, shows up as ``error`` messages for each job it had."""
        out, self._pending = self._pending, []
        for message in self._drain():
            out.append(message)
        if self._proc is not None and not self._active:
            return out
        stalled = self._stalled_job()
        if self._proc is not None and self._eof_seen:
            self._collect_crash()
        elif self._proc is not None and self._active and time.monotonic() - self._last_heard > self.hang_timeout:
            text = (f"The engine did not respond for {self.hang_timeout:.0f} s and was stopped. The next job starts "
                    "a fresh engine.")
            self._stop_hung(lambda job: text)
        elif self._proc is not None and stalled is not None:
            self._stop_hung(lambda job: self._stall_message(job, stalled))
        out.extend(self._pending)
        self._pending = []
        return out

    def run(self, name: str, params: dict | None = None, on_progress=None, timeout: float | None = None,
            workdir=None, interval: float = 0.02, stall_timeout: float | None = None) -> dict:
        """Run a job to its end and return its result; raises ``EngineError`` on error, cancel or timeout."""
        job = self.submit(name, params, workdir, stall_timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for message in self.poll():
                if message.get("job") != job:
                    continue
                if message["type"] == protocol.PROGRESS and on_progress is not None:
                    on_progress(message)
                elif message["type"] == protocol.RESULT:
                    return message.get("result")
                elif message["type"] == protocol.ERROR:
                    code, text = message.get("code"), message.get("message")
                    raise error_for(code if isinstance(code, str) else "engine_fault",
                                    text if isinstance(text, str) else "The engine reported an error without a "
                                    "message.", message.get("detail"))
            if deadline is not None and time.monotonic() > deadline:
                self.cancel(job)
                self._wait_for_end(job, 5.0)
                raise Timeout(f"Job {name!r} did not finish within {timeout:g} s and was cancelled.")
            time.sleep(interval)

    def ping(self, timeout: float = 5.0) -> dict:
        """Round trip to the engine (starting it if needed): the pong, with the busy job and the queue."""
        self.start()
        token = uuid.uuid4().hex[:8]
        self._send(protocol.encode({"type": protocol.PING, "id": token}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.poll():
                if message.get("type") == protocol.PONG and message.get("id") == token:
                    return message
                self._pending.append(message)  # keep the rest for the caller's next poll
            time.sleep(0.01)
        raise EngineHung(f"The engine did not answer a ping within {timeout:g} s.")

    # Internals.

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise BrokenPipeError("no engine process")
        self._proc.stdin.write(line.encode("utf-8"))
        self._proc.stdin.flush()

    def _lines(self, proc):
        """The engine's stdout as bounded lines (``protocol.read_lines``): no line can exhaust this process."""
        return protocol.read_lines(proc.stdout)

    def _read_stdout(self, proc, messages: queue.Queue) -> None:
        try:
            for raw in self._lines(proc):
                self._last_heard = time.monotonic()
                try:
                    message = protocol.decode(raw, allowed_types=protocol.ENGINE_TYPES)
                except protocol.ProtocolError as error:  # an engine fault: report it, never fail on it
                    self._engine_fault(messages, error, raw)
                    continue
                if message["type"] != protocol.HEARTBEAT:  # heard is all a heartbeat says; an idle engine
                    messages.put(message)                  # must not fill a queue nobody polls
        except Exception as error:  # noqa: BLE001 - the reader must end with _EOF, whatever happened
            self._stderr.append(f"[engine client reader stopped: {type(error).__name__}: {error}]")
        messages.put(_EOF)

    def _engine_fault(self, messages: queue.Queue, error, raw: bytes) -> None:
        """A line from the engine that is not a message: logged, and passed on as a job-less ``engine_fault``."""
        self.faults += 1
        self._stderr.append(f"[engine fault: {error}] {bytes(raw[:200])!r}")
        messages.put(EngineFault(f"The engine sent a line that is not a valid message ({error}); it was ignored. "
                                 "Report it with the engine's log if it happens again.").as_message(None))

    def _read_stderr(self, proc) -> None:
        try:
            for raw in proc.stderr:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self._stderr.append(line)
                if self.log is not None:
                    try:
                        self.log(line)
                    except Exception:  # noqa: BLE001 - a broken log callback must not stop the reader
                        pass
        except (OSError, ValueError):
            pass

    def _drain(self) -> list[dict]:
        out = []
        while True:
            try:
                item = self._messages.get_nowait()
            except queue.Empty:
                return out
            if item is _EOF:
                self._eof_seen = True
                continue
            kind = item.get("type")
            if kind in (protocol.HEARTBEAT, protocol.HELLO, protocol.BYE):
                continue
            job = item.get("job")
            info = self._active.get(job)
            if info is not None:
                if kind in protocol.FINAL_TYPES:
                    del self._active[job]
                elif kind == protocol.STARTED:
                    info.update(state="running", progress_at=time.monotonic())
                elif kind == protocol.QUEUED:
                    info["state"] = "queued"
                elif kind == protocol.PROGRESS:
                    info.update(state="running", stage=item.get("stage"), step=item.get("step"),
                                total=item.get("total"), progress_at=time.monotonic())
            out.append(item)

    def _finish(self, job: str, message: dict) -> None:
        self._active.pop(job, None)
        self._pending.append(message)

    def _stalled_job(self) -> str | None:
        """A running job that has sent no progress for longer than its stall timeout."""
        now = time.monotonic()
        for job, info in self._active.items():
            limit, since = info["stall_timeout"], info["progress_at"]
            if info["state"] == "running" and None not in (limit, since) and now - since > limit:
                return job
        return None

    def _stall_message(self, job: str, stalled: str) -> str:
        info = self._active[job]
        if job != stalled:
            return (f"The engine was stopped because job '{self._active[stalled]['name']}' was stuck; "
                    f"'{info['name']}' had not finished. Submit it again.")
        if info["stage"] is not None:
            where = f"the last was step {info['step']} of {info['total']} of stage '{info['stage']}'"
        else:
            where = "none since it started: it may be loading a model"
        return (f"The job '{info['name']}' made no progress for {info['stall_timeout']:g} s ({where}), so the "
                f"engine was stopped as hung; {self.AFTER_A_STOP} If one step really takes that long "
                "on this machine (a full-size model on the CPU, a first download of the weights), give the job a "
                "longer stall_timeout (in Blender: the Stall Timeout preference); otherwise try a smaller image or "
                "fewer steps, and report it with the details if it happens again.")

    def _stop_hung(self, message_for) -> None:
        """End the engine as hung: each unfinished job gets ``engine_hung`` with ``message_for(job)``."""
        texts = {job: message_for(job) for job in self._active}
        self._kill()
        self._pending.extend(self._drain())  # what it said before it stopped, a result that just made it included
        for job in list(self._active):
            self._finish(job, protocol.error(job, "engine_hung", texts[job], self.stderr_tail()))
        self._discard_process()

    def _collect_crash(self) -> None:
        """The engine's stdout ended: report each unfinished job as crashed and forget the process."""
        proc = self._proc
        code = self._wait_exit(proc, 2.0) if proc is not None else None
        if code is None and proc is not None:
            self._kill()
            code = proc.returncode
        self._join_readers()  # the last messages and stderr lines (the traceback, if any)
        self._pending.extend(self._drain())
        for job, info in list(self._active.items()):
            self._finish(job, protocol.error(job, "engine_crashed", f"The engine stopped ({describe_exit(code)}) "
                                             f"while running '{info['name']}'. Nothing in Blender was lost; the "
                                             "next job starts a fresh engine.", self.stderr_tail()))
        self._discard_process()

    def _wait_for_end(self, job: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while job in self._active and time.monotonic() < deadline:
            self._pending.extend(self.poll())
            time.sleep(0.02)
        self._pending = [m for m in self._pending if m.get("job") != job]

    def _join_readers(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(timeout=max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _wait_exit(proc, timeout: float):
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            self._wait_exit(proc, 5.0)

    def _discard_process(self) -> None:
        proc, self._proc = self._proc, None
        self.hello = None
        self._eof_seen = False
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            self._wait_exit(proc, 5.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def refused_python(log: str) -> str | None:
    """The version an engine named when it refused to run on that Python (``python_check.py``), if it did."""
    for line in log.splitlines():
        if line.startswith(python_check.MARKER):
            return line[len(python_check.MARKER):].split()[0].rstrip(".") or None
    return None


def describe_exit(code) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ", perhaps out of memory" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"
