# SPDX-License-Identifier: GPL-3.0-or-later
"""The one engine client of this Blender session, shared by every operator that runs engine jobs.

The engine process starts on the first job and stays warm (models loaded) until *Release Engine*, until the
engine Python in the preferences or Blender's *Allow Online Access* changes (the engine runs with downloads off
while it is off: ``preferences.engine_env``), or until Blender exits (the engine ends when its stdin closes). Each
job's messages are routed to that job's inbox, so several operators can have jobs queued at once. No bpy here
beyond reading the preferences: the per-tick logic that uses this module is tested without timers.
"""

from __future__ import annotations

import logging
import sys

from .. import preferences
from ..engine.process.client import EngineClient, EngineError

RENDER_JOBS = ("edit", "invert")  # the diffusion jobs: each holds the engine for seconds to minutes
_client: EngineClient | None = None
ENGINE_LOG = logging.getLogger("diffusion_handles.engine")  # the engine process's stderr lines
if not ENGINE_LOG.handlers:  # Blender configures no logging: show them in its console, once
    _console = logging.StreamHandler(sys.stderr)
    _console.setFormatter(logging.Formatter("[dhandles engine] %(message)s"))
    ENGINE_LOG.addHandler(_console)
    ENGINE_LOG.setLevel(logging.INFO)
    ENGINE_LOG.propagate = False

_inboxes: dict[str, list[dict]] = {}
_unrouted: list[dict] = []


def engine_python(context=None) -> str:
    return preferences.resolve_engine_python(preferences.get(context))


def _log(line: str) -> None:
    ENGINE_LOG.info(line)


def client(context=None) -> EngineClient:
    """The session's client for the configured engine Python (a new one if that setting or online access
    changed)."""
    global _client
    python = engine_python(context)
    env = preferences.engine_env()
    online = preferences.ONLINE_ACCESS_ENV
    if _client is not None and (_client.python != python or (_client.env or {}).get(online) != env.get(online)):
        release()
    if _client is None:
        _client = EngineClient(python=python, cwd=str(preferences.ADDON_ROOT), env=env, log=_log)
    _client.stall_timeout = preferences.stall_timeout(preferences.get(context))  # applies to jobs submitted now
    return _client


def submit(context, name: str, params: dict, workdir: str | None = None) -> str:
    """Queue a job; raises ``EngineError`` when the engine cannot start (the message says what to fix)."""
    job = client(context).submit(name, params, workdir)
    _inboxes[job] = []
    return job


def take(job: str) -> list[dict]:
    """Messages for ``job`` that arrived since the last call (polls the engine, never blocks)."""
    pump()
    messages = _inboxes.get(job, [])
    if messages:
        _inboxes[job] = []
    return messages


def forget(job: str) -> None:
    _inboxes.pop(job, None)


def pump() -> None:
    if _client is None:
        return
    for message in _client.poll():
        inbox = _inboxes.get(message.get("job"))
        if inbox is not None:
            inbox.append(message)
        elif message.get("type") == "error":
            _unrouted.append(message)
            _log(f"{message.get('code')}: {message.get('message')}")


def cancel(job: str) -> bool:
    return _client is not None and _client.cancel(job)


def running() -> bool:
    return _client is not None and _client.running


def busy() -> bool:
    return _client is not None and bool(_client.active_jobs)


def rendering() -> bool:
    """Whether a render (a diffusion job) is queued or running in the engine; a job submitted now would wait for
    it."""
    pump()  # a job that just ended leaves the active list here
    return _client is not None and any(info["name"] in RENDER_JOBS for info in _client.active_jobs.values())


def pid() -> int | None:
    return None if _client is None else _client.pid


def release(timeout: float = 5.0) -> bool:
    """End the engine process (freeing its GPU memory), killing it if it has not exited after ``timeout``
    seconds; jobs it had end with an error in their inboxes. Returns True if a process was running."""
    global _client
    if _client is None:
        return False
    was_running = _client.running
    _client.release(timeout)
    pump()
    _client = None
    return was_running


__all__ = ["EngineError", "busy", "cancel", "client", "engine_python", "forget", "pid", "pump", "release",
           "rendering", "running", "submit", "take"]
