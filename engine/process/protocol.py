"""The engine's wire protocol: JSON objects, one per line, each with the protocol version ``v``.

Standard library only: Blender's own Python imports this module through ``engine/process/client.py``. The full
description for people writing scripts and tools against the engine is ``docs/protocol.md``; keep the two in step.

The messages' types and constructors are ``engine/messages.py`` (re-exported here: ``protocol.SUBMIT``,
``protocol.progress(...)``). Client to engine: ``submit``, ``cancel``, ``ping``, ``shutdown``.
Engine to client: ``hello`` (first line, once), ``queued``, ``started``, ``progress``, ``result``, ``error``,
``pong``, ``heartbeat``, ``bye``.
Arrays and images never travel inline: messages carry paths of ``.npy``/``.png``/``.exr`` files.
Both sides read lines through ``read_lines`` (bounded: ``MAX_LINE_BYTES``) and parse them with ``decode``, which
turns anything a line may hold (bad UTF-8, bad JSON, huge integers, deep nesting) into a ``ProtocolError``.
"""

from __future__ import annotations

import json
import math
import os

# The messages themselves (types and constructors) live below the layers that build them: ``engine/messages.py``.
from ..messages import (  # noqa: F401  (re-exported: protocol.SUBMIT, protocol.progress(...), ...)
    AUTH,
    BYE,
    CANCEL,
    CHALLENGE,
    CLIENT_TYPES,
    ENGINE_TYPES,
    ERROR,
    FINAL_TYPES,
    HEARTBEAT,
    HELLO,
    LISTENING,
    PING,
    PONG,
    PROGRESS,
    QUEUED,
    RESULT,
    SHUTDOWN,
    STARTED,
    SUBMIT,
    WELCOME,
    cancel,
    error,
    progress,
    result,
    submit,
)

VERSION = 1

# Limits on what one line may be, on both transports and in both directions (``docs/protocol.md``). A line longer
# than MAX_LINE_BYTES is never held whole: the reader discards the rest up to its newline and reports it.
MAX_LINE_BYTES = int(os.environ.get("DHANDLES_MAX_LINE_BYTES", "") or 4 * 1024 * 1024)
MAX_DEPTH = 32  # nesting of arrays and objects within one message
READ_CHUNK = 64 * 1024

# Error codes and what each means to a user are listed in docs/protocol.md; every error message itself says what
# to do, so no table of hints is kept here.


class ProtocolError(ValueError):
    """A line that is not a valid protocol message; ``code`` is the error code its reply carries."""

    code = "bad_message"


class VersionMismatch(ProtocolError):
    """A message in another protocol version."""

    code = "unsupported_version"


class OversizedLine(bytes):
    """What ``read_lines`` yields for a line over the limit: its first bytes only (for a log)."""

    size: int = 0


class LineReader:
    """The lines of a binary stream (``bytes``, newline included), read in bounded chunks: memory never holds more
    than ``limit`` bytes of one line. A longer line is skipped up to its newline and yielded as an
    ``OversizedLine``. Iteration ends at the end of the stream or at a transport error (a reset connection).
    ``limit`` may be changed between lines (a socket's login line is held to less than the lines after it)."""

    def __init__(self, stream, limit: int | None = None):
        self.limit = MAX_LINE_BYTES if limit is None else limit
        self._read = stream.read1 if hasattr(stream, "read1") else stream.read
        self._buffer = bytearray()
        self._ended = False
        self.give_up = False  # True: an over-long line ends the reading there (a login), instead of being skipped

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        skipped, head = 0, b""  # bytes dropped of an over-long line, and its first ones
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline + 1])
                del self._buffer[:newline + 1]
                if skipped or len(line) > self.limit:
                    return _oversized(head or line, skipped + len(line))
                return line
            if len(self._buffer) > self.limit:
                head = head or bytes(self._buffer[:200])
                skipped += len(self._buffer)
                self._buffer.clear()
                if self.give_up:
                    self._ended = True
                    return _oversized(head, skipped)
            chunk = b"" if self._ended else self._chunk()
            if not chunk:
                self._ended = True
                if skipped or self._buffer:
                    rest, size = bytes(self._buffer), skipped + len(self._buffer)
                    self._buffer.clear()
                    if skipped or size > self.limit:
                        return _oversized(head or rest, size)
                    return rest  # a last line without its newline
                raise StopIteration
            self._buffer += chunk

    def _chunk(self) -> bytes:
        try:
            return self._read(READ_CHUNK)
        except (OSError, ValueError):  # reset, timed out, or closed under us: the end of this stream
            return b""


def read_lines(stream, limit: int | None = None) -> LineReader:
    """``LineReader(stream, limit)``: the bounded lines of a binary stream."""
    return LineReader(stream, limit)


def _oversized(head: bytes, size: int) -> OversizedLine:
    line = OversizedLine(head[:200])
    line.size = size
    return line


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep in the parsed ``value`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


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
    if isinstance(line, OversizedLine):
        raise ProtocolError(f"a line of {line.size} bytes, over the limit of {MAX_LINE_BYTES} bytes")
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ProtocolError(f"not UTF-8: {error}") from None
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"a line of {len(line)} characters, over the limit of {MAX_LINE_BYTES}")
    try:
        message = json.loads(line)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"not JSON: {error.msg} at column {error.colno}") from None
    except RecursionError:
        raise ProtocolError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # an integer of thousands of digits
        raise ProtocolError(f"not usable JSON: {str(error)[:200]}") from None
    if too_deep(message):
        raise ProtocolError(f"JSON nested deeper than {MAX_DEPTH} levels")
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
