"""Protocol messages out on stdout, and nothing else there.

Libraries print (diffusers' progress bars, warnings from C code); a stray line on stdout would corrupt the protocol.
``claim_stdout`` keeps a private copy of the real stdout for messages and points file descriptor 1, and
``sys.stdout``, at stderr, so anything else written to stdout lands in the engine's log instead.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from . import protocol


class MessageWriter:
    """Writes whole protocol lines from any thread; remembers when the reader has gone away."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def emit(self, message: dict) -> None:
        try:
            line = protocol.encode(message)
        except (ValueError, TypeError, RecursionError) as error:  # never let one message end a thread
            logging.getLogger(__name__).warning("engine: dropped a message that cannot be sent (%s: %.300s)",
                                                type(error).__name__, error)
            return
        with self._lock:
            if self.broken:
                return
            try:
                self._stream.write(line)
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.broken = True  # the client is gone; the server notices and stops

    def close(self) -> None:
        """Stop writing: later messages are dropped, as for a reader that went away."""
        with self._lock:
            self.broken = True
            try:
                self._stream.close()
            except (OSError, ValueError):
                pass


def claim_stdout() -> MessageWriter:
    """Reserve the process's stdout for protocol messages; returns the writer for them."""
    sys.stdout.flush()
    private = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return MessageWriter(os.fdopen(private, "w", encoding="utf-8", newline="\n"))
