"""Drive an engine that is already running with ``python -m engine serve --listen`` (``socket_server.py``):
the same client as ``engine.process.client.EngineClient`` (submit, poll, cancel, run, release), over a local socket.

    client = SocketEngineClient(path=path, token=token)   # or port=..., from the engine's 'listening' message
    client.run("ping", {})

The client logs in by proving it holds the token and makes the engine prove the same (``engine/process/socket_auth.py``)
before it sends anything else: a program that only listens on the port or path gets neither the token nor a job,
and the client refuses it with ``not_the_engine``.

This client did not start the engine, so it cannot start a fresh one: a closed connection ends the jobs it had
with ``engine_crashed`` and the next ``submit`` reconnects. ``release()`` asks the engine to shut down;
``disconnect()`` leaves it running, models loaded, for the next client.
"""

from __future__ import annotations

import io
import socket
import subprocess
import threading
import time

from ..errors import BadToken, EngineStartFailed, NotTheEngine
from . import protocol, socket_auth
from .client import EngineClient, EngineError  # noqa: F401  (EngineError re-exported)


class _Lines:
    """The socket's incoming lines (bounded, ``protocol.LineReader``); notes when the engine closes the connection."""

    def __init__(self, stream, closed: threading.Event):
        self._stream, self._closed = stream, closed
        self.reader = protocol.read_lines(stream)

    def __iter__(self):
        try:
            yield from self.reader
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

    def __init__(self, port: int | None = None, token: str = "", host: str = "127.0.0.1", path: str | None = None,
                 **options):
        super().__init__(python="", **options)
        if path is None and port is None:
            raise ValueError("SocketEngineClient needs the engine's 'path' (Unix socket) or 'port'.")
        self.host, self.port, self.path, self.token = host, None if port is None else int(port), path, token

    @property
    def address(self) -> str:
        return f"unix:{self.path}" if self.path is not None else f"{self.host}:{self.port}"

    def _connect(self) -> socket.socket:
        try:
            if self.path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.start_timeout)
                sock.connect(self.path)
                return sock
            return socket.create_connection((self.host, self.port), timeout=self.start_timeout)
        except OSError as error:
            raise EngineStartFailed(f"No engine answers on {self.address} ({error.strerror or error}). Start one "
                                    f"with: python -m engine serve --listen {self.address}") from None

    def _spawn(self):
        socket_auth.check_token(self.token)  # a short token is refused before anything is sent
        sock = self._connect()
        connection = _Connection(sock)
        try:
            self._log_in(sock, connection)
        except BaseException:
            connection.kill()
            raise
        sock.settimeout(None)
        return connection

    def _log_in(self, sock: socket.socket, connection: _Connection) -> None:
        """Answer the engine's challenge and check its proof, all within ``start_timeout``."""
        deadline = time.monotonic() + self.start_timeout
        reader = connection.stdout.reader
        reader.limit = 4096
        challenge = self._login_message(sock, reader, deadline, protocol.CHALLENGE)
        nonce = challenge.get("nonce")
        if not socket_auth.valid_nonce(nonce):
            raise self._impostor("its challenge has no valid nonce")
        mine = socket_auth.new_nonce()
        connection.stdin.write(protocol.encode({"type": protocol.AUTH, "nonce": mine, "proof": socket_auth.proof(
            self.token, "client", nonce, mine)}).encode("utf-8"))
        connection.stdin.flush()
        welcome = self._login_message(sock, reader, deadline, protocol.WELCOME)
        if not socket_auth.is_valid(socket_auth.proof(self.token, "engine", mine, nonce), welcome.get("proof")):
            raise self._impostor("it could not prove it holds the session token")
        reader.limit = protocol.MAX_LINE_BYTES

    def _login_message(self, sock, reader, deadline: float, kind: str) -> dict:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        line = next(reader, None)
        if line is None:
            raise EngineStartFailed(f"The engine on {self.address} closed the connection or did not answer within "
                                    f"{self.start_timeout:g} s while logging in.")
        try:
            message = protocol.decode(line, allowed_types=(kind, protocol.ERROR))
        except protocol.ProtocolError as error:
            raise self._impostor(f"it sent {error}") from None
        if message["type"] == protocol.ERROR and message.get("code") == "bad_token":
            raise BadToken(str(message.get("message") or "The engine refused the session token."))
        if message["type"] != kind:
            raise self._impostor(f"it answered {message['type']!r} instead of {kind!r}")
        return message

    def _lines(self, proc):
        return proc.stdout  # already bounded lines; the login read the first ones

    def _impostor(self, why: str) -> NotTheEngine:
        return NotTheEngine(f"The program on {self.address} is not this engine session ({why}); nothing was sent "
                            "to it. Check the address and token from the engine's 'listening' message.")

    def start(self) -> dict:
        hello = super().start()
        if self._proc is not None and self._proc.pid is None:
            self._proc.pid = hello.get("pid")
        return hello

    def disconnect(self) -> None:
        """Close the connection and leave the engine running for the next client; its jobs here are cancelled."""
        self._discard_process()
        for job in list(self._active):
            self._finish(job, protocol.error(job, "engine_released", "The client disconnected from the engine."))
