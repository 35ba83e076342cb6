"""Drive an engine that is already running with ``python -m engine serve --listen`` (``engine/socket_server.py``):
the same client as ``engine.client.EngineClient`` (submit, poll, cancel, run, release), over a loopback socket.

    client = SocketEngineClient(port=port, token=token)   # from the engine's 'listening' message
    client.run("ping", {})

This client did not start the engine, so it cannot start a fresh one: a closed connection ends the jobs it had
with ``engine_crashed`` and the next ``submit`` reconnects. ``release()`` asks the engine to shut down;
``disconnect()`` leaves it running, models loaded, for the next client.
"""

from __future__ import annotations

import io
import queue
import socket
import subprocess
import threading

from . import protocol
from .client import EngineClient, EngineError  # noqa: F401  (EngineError re-exported)
from .errors import BadToken, EngineStartFailed


class _Lines:
    """The socket's incoming lines; notes when the engine closes the connection."""

    def __init__(self, stream, closed: threading.Event):
        self._stream, self._closed = stream, closed

    def __iter__(self):
        try:
            yield from self._stream
        finally:
            self._closed.set()

    def close(self):
        self._stream.close()


class _Connection:
    """The parts of ``subprocess.Popen`` that ``EngineClient`` uses, over a socket."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._closed = threading.Event()
        self.stdin = sock.makefile("wb")
        self.stdout = _Lines(sock.makefile("rb"), self._closed)
        self.stderr = io.BytesIO()  # the engine's log stays with the engine
        self.pid = None
        self.returncode = None

    def poll(self):
        if self._closed.is_set():
            self.returncode = 0
        return self.returncode

    def wait(self, timeout=None):
        if not self._closed.wait(timeout):
            raise subprocess.TimeoutExpired("engine connection", timeout)
        return self.poll()

    def kill(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._closed.set()


class SocketEngineClient(EngineClient):
    # ending "the engine" closes only this connection: the shared engine serves its other clients on
    AFTER_A_STOP = ("this connection to it was closed (the engine serves other programs too: restart it by hand if "
                    "it stays stuck).")

    def __init__(self, port: int, token: str, host: str = "127.0.0.1", **options):
        super().__init__(python="", **options)
        self.host, self.port, self.token = host, int(port), token

    def _spawn(self):
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.start_timeout)
        except OSError as error:
            raise EngineStartFailed(f"No engine answers on {self.host}:{self.port} "
                              f"({error.strerror or error}). Start one with: python -m engine serve --listen "
                              f"{self.host}:{self.port}") from None
        sock.settimeout(None)
        connection = _Connection(sock)
        connection.stdin.write(protocol.encode({"type": protocol.AUTH, "token": self.token}).encode("utf-8"))
        connection.stdin.flush()
        return connection

    def start(self) -> dict:
        hello = super().start()
        if self._proc is not None and self._proc.pid is None:
            self._proc.pid = hello.get("pid")
        return hello

    def _wait_for_hello(self, proc) -> dict:
        # A refused token comes back as an error message, then the connection closes.
        try:
            first = self._messages.get(timeout=self.start_timeout)
        except queue.Empty:
            first = None
        if isinstance(first, dict) and first.get("type") == protocol.ERROR and first.get("code") == "bad_token":
            self._discard_process()
            raise BadToken(first.get("message") or "The engine refused the session token.")
        if first is not None:
            self._messages.put(first)  # the hello (or the end): the usual handshake takes it from here
        return super()._wait_for_hello(proc)

    def disconnect(self) -> None:
        """Close the connection and leave the engine running for the next client; its jobs here are cancelled."""
        self._discard_process()
        for job in list(self._active):
            self._finish(job, protocol.error(job, "engine_released", "The client disconnected from the engine."))
