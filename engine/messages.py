"""The engine's messages: their type names and the constructors of the plain dicts they are.

The vocabulary of the wire protocol (``engine/process/protocol.py`` frames, encodes, checks and reads them; the
full description is ``docs/protocol.md``). It lives below every layer that builds a message: a job's progress
(``engine/jobs``), an error's message (``engine/errors.py``), the server and the clients (``engine/process``).
It imports nothing: Blender's own Python imports it through the client.
"""

from __future__ import annotations

# Client -> engine.
SUBMIT = "submit"
CANCEL = "cancel"
PING = "ping"
SHUTDOWN = "shutdown"
AUTH = "auth"  # socket transport only: the first line of a connection, carrying the session token
CLIENT_TYPES = (SUBMIT, CANCEL, PING, SHUTDOWN)

# Socket login (``engine/process/socket_auth.py``): each side proves it holds the session token without sending it.
CHALLENGE = "challenge"  # engine -> client, first line: the engine's nonce
WELCOME = "welcome"  # engine -> client: the engine's proof, after the client's ``auth``

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
