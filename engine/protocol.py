"""The engine's wire protocol: JSON objects, one per line, each with the protocol version ``v``.

Standard library only: Blender's own Python imports this module through ``engine/client.py``. The full description
for people writing scripts and tools against the engine is ``docs/protocol.md``; keep the two in step.

Client to engine: ``submit``, ``cancel``, ``ping``, ``shutdown``.
Engine to client: ``hello`` (first line, once), ``queued``, ``started``, ``progress``, ``result``, ``error``,
``pong``, ``heartbeat``, ``bye``.
Arrays and images never travel inline: messages carry paths of ``.npy``/``.png``/``.exr`` files.
"""

from __future__ import annotations

import json

VERSION = 1

# Client -> engine.
SUBMIT = "submit"
CANCEL = "cancel"
PING = "ping"
SHUTDOWN = "shutdown"
AUTH = "auth"  # socket transport only: the first line of a connection, carrying the session token
CLIENT_TYPES = (SUBMIT, CANCEL, PING, SHUTDOWN)

# Engine -> client.
HELLO = "hello"
QUEUED = "queued"
STARTED = "started"
PROGRESS = "progress"
RESULT = "result"
ERROR = "error"
PONG = "pong"
HEARTBEAT = "heartbeat"
BYE = "bye"
LISTENING = "listening"  # socket transport only: on the launcher's stdout, where to connect
ENGINE_TYPES = (HELLO, QUEUED, STARTED, PROGRESS, RESULT, ERROR, PONG, HEARTBEAT, BYE, LISTENING)

# The two messages that end a job: after either, the job id is never mentioned again.
FINAL_TYPES = (RESULT, ERROR)

# Error codes, with what the user should do about each. A job may use its own codes too (``empty_mask``...);
# these are the ones the engine and the client produce themselves.
ERROR_HINTS = {
    "bad_message": "A client sent something that is not a protocol message; this is a bug in that client.",
    "unsupported_version": "The extension and the engine are different versions; reinstall them together.",
    "bad_token": "The connection did not present this engine session's token.",
    "unknown_job": "The engine has no such job; update the engine to the extension's version.",
    "bad_params": "The job was given invalid parameters.",
    "file_not_found": "A file the job needs does not exist; check the path, or re-import the photo.",
    "cancelled": "The job was cancelled.",
    "out_of_memory": "Out of memory: use a smaller image or fewer steps, or close other programs using the GPU.",
    "missing_weights": "Model weights are missing: check the model names in the preferences or connect once "
    "to download them.",
    "engine_missing_packages": "The engine's Python lacks packages it needs: run the setup (make setup) or "
    "install them with pip into that Python.",
    "engine_python_not_found": "The engine Python does not exist: set 'Engine Python' in the add-on preferences "
    "or run the setup (make setup).",
    "engine_start_failed": "The engine process did not start; see the details for its last output.",
    "engine_crashed": "The engine process stopped during the job; the next job starts a fresh engine.",
    "engine_hung": "The engine stopped answering and was ended; the next job starts a fresh engine.",
    "engine_released": "The engine was released while the job was waiting or running.",
    "timeout": "The job took longer than allowed and was cancelled.",
    "internal_error": "The engine hit an unexpected error; see the details and report it.",
}


class ProtocolError(ValueError):
    """A line that is not a valid protocol message."""


def encode(message: dict) -> str:
    """One message as one line of JSON (ending in a newline), with the protocol version filled in."""
    if "v" not in message:
        message = {"v": VERSION, **message}
    return json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n"


def decode(line: str | bytes, allowed_types=None) -> dict:
    """Parse one line into a message dict; raises ``ProtocolError`` saying what is wrong with it."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ProtocolError(f"not UTF-8: {error}") from None
    try:
        message = json.loads(line)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"not a JSON object but {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("no string field 'type'")
    if allowed_types is not None and kind not in allowed_types:
        raise ProtocolError(f"unknown message type {kind!r}")
    version = message.get("v", VERSION)
    if version != VERSION:
        raise ProtocolError(f"protocol version {version!r}, this side speaks {VERSION}")
    return message


# Constructors, so both sides spell fields the same way.


def submit(job: str, name: str, params: dict, workdir: str | None = None) -> dict:
    message = {"type": SUBMIT, "job": job, "name": name, "params": params}
    if workdir is not None:
        message["workdir"] = workdir
    return message


def cancel(job: str) -> dict:
    return {"type": CANCEL, "job": job}


def progress(job: str, stage: str, step: int | None = None, total: int | None = None,
             thumbnail: str | None = None, message: str | None = None) -> dict:
    out = {"type": PROGRESS, "job": job, "stage": stage, "step": step, "total": total}
    if thumbnail is not None:
        out["thumbnail"] = thumbnail
    if message is not None:
        out["message"] = message
    return out


def result(job: str, value: dict, seconds: float | None = None) -> dict:
    return {"type": RESULT, "job": job, "result": value, "seconds": seconds}


def error(job: str | None, code: str, message: str, detail: str | None = None) -> dict:
    return {"type": ERROR, "job": job, "code": code, "message": message, "detail": detail}
