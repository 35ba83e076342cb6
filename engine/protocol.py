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
import math

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

# Error codes and what each means to a user are listed in docs/protocol.md; every error message itself says what
# to do, so no table of hints is kept here.


class ProtocolError(ValueError):
    """A line that is not a valid protocol message; ``code`` is the error code its reply carries."""

    code = "bad_message"


class VersionMismatch(ProtocolError):
    """A message in another protocol version."""

    code = "unsupported_version"


def encode(message: dict) -> str:
    """One message as one line of JSON (ending in a newline), with the protocol version filled in. NaN and
    infinities (a loss that diverged, an empty average) become ``null``: JSON has no spelling for them."""
    if "v" not in message:
        message = {"v": VERSION, **message}
    return json.dumps(finite(message), separators=(",", ":"), allow_nan=False) + "\n"


def finite(value):
    """``value`` with every non-finite float, at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


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
        raise VersionMismatch(f"protocol version {version!r}, this side speaks {VERSION}")
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
