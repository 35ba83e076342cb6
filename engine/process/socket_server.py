"""The engine over a local socket instead of stdin/stdout, for tools that cannot hold the engine's pipes
(another program, a second Blender, a notebook) while it keeps its models warm between them.

``python -m engine serve --listen unix`` (a Unix-domain socket in a fresh private folder; ``unix:PATH`` for a
chosen path whose folder is private), ``--listen auto`` (Unix socket where the platform has one, else loopback TCP)
or ``--listen 127.0.0.1:0`` (loopback TCP only). The engine writes one ``listening`` message (``path`` or ``host``
and ``port``, and the ``token``) on its stdout. Each connection logs in with a mutual HMAC challenge-response
(``engine/process/socket_auth.py``): the token itself never travels. Then the protocol is exactly the stdin/stdout one
(``docs/protocol.md``). Every connection queues on the same worker (``job_queue.py``), so one job at a time
runs on the accelerator for the life of the process; one logged-in client is served at a time, the next waits.
A connection that closes (or is reset) cancels its jobs but keeps the engine and its models for the next one;
``shutdown`` ends the process.

Limits: a login must complete within ``LOGIN_DEADLINE_S`` in total, at most ``MAX_PENDING_LOGINS`` connections may
be logging in at once (a further one cuts off the oldest of them), a failed login is answered only after
``FAILED_LOGIN_DELAY_S`` (failures are answered one at a time), and no line may exceed ``protocol.MAX_LINE_BYTES``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import shutil
import socket
import stat
import tempfile
import threading
from pathlib import Path

from ..errors import BadToken
from . import protocol, socket_auth
from .job_queue import JobQueue
from .message_writer import MessageWriter
from .server import Server

TOKEN_ENV = "DHANDLES_ENGINE_TOKEN"
LOGIN_DEADLINE_S = 5.0
MAX_PENDING_LOGINS = 8
FAILED_LOGIN_DELAY_S = 0.5
LOGIN_LINE_BYTES = 4096

log = logging.getLogger(__name__)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` -> (host, port); the host must be a loopback address."""
    host, _, port = text.rpartition(":")
    host = (host or "127.0.0.1").strip("[]")
    try:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError
        number = int(port)
    except ValueError:
        raise ValueError(f"--listen takes a loopback address and port such as 127.0.0.1:0, not {text!r}: the "
                         "engine never listens beyond this machine.") from None
    return host, number


def private_socket_path(text: str) -> tuple[Path, Path | None]:
    """The socket path for ``unix`` / ``unix:PATH``, and the folder this engine made for it (removed at exit).
    A chosen path's folder must belong to this user and be private (0700); it is made so when it is missing."""
    chosen = text.partition(":")[2]
    if not chosen:
        folder = Path(tempfile.mkdtemp(prefix="dhandles-engine-"))
        return folder / "engine.sock", folder
    path = Path(chosen).expanduser()
    if not path.is_absolute():
        raise ValueError(f"--listen unix:PATH needs an absolute path, not {chosen!r}.")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.parent.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError(f"The socket's folder '{path.parent}' must belong to you and be private: "
                         f"chmod 700 '{path.parent}', or use --listen unix for a fresh private folder.")
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ValueError(f"'{path}' exists and is not a socket; choose another path.")
        os.unlink(path)  # a socket left by an engine that ended: sockets are not user data
    return path, None


def serve_socket(address: str, announce, heartbeat: float = 1.0, token: str | None = None) -> int:
    token = socket_auth.check_token(token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32))
    if address == "auto":
        address = "unix" if hasattr(socket, "AF_UNIX") else "127.0.0.1:0"
    if address == "unix" or address.startswith("unix:"):
        path, made = private_socket_path(address)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o600)
            listener.listen(MAX_PENDING_LOGINS)
            announce({"type": protocol.LISTENING, "path": str(path), "token": token})
            return _accept_loop(listener, token, heartbeat)
        finally:
            listener.close()
            Path(path).unlink(missing_ok=True)
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family, backlog=MAX_PENDING_LOGINS) as listener:
        bound_host, bound_port = listener.getsockname()[:2]
        announce({"type": protocol.LISTENING, "host": bound_host, "port": bound_port, "token": token})
        return _accept_loop(listener, token, heartbeat)


class _Engine:
    """What every connection shares: the job queue, one served session at a time, the login limits."""

    def __init__(self, token: str, heartbeat: float):
        self.token, self.heartbeat = token, heartbeat
        self.jobs = JobQueue()  # one worker for every connection, for the life of the process
        self.session = threading.Lock()
        self.failures = threading.Lock()
        self.stop = threading.Event()
        self._pending: list[socket.socket] = []  # connections logging in, oldest first
        self._lock = threading.Lock()

    def admit(self, connection: socket.socket) -> None:
        """Count a connection that starts its login; at the cap, the oldest one logging in is cut off, so that
        idle or slow connections can never keep a real client out."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING_LOGINS:
                oldest = self._pending.pop(0)
                log.warning("engine: cut off a connection still logging in: too many are")
                _shut(oldest)
            self._pending.append(connection)

    def logged_in(self, connection: socket.socket) -> None:
        """The connection's login ended (either way)."""
        with self._lock:
            if connection in self._pending:
                self._pending.remove(connection)


def _accept_loop(listener: socket.socket, token: str, heartbeat: float) -> int:
    engine = _Engine(token, heartbeat)
    engine.jobs.start()
    listener.settimeout(0.2)
    while not engine.stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError as error:  # a connection reset before accept, too many open files: this one only
            log.warning("engine: accept failed: %s", error)
            continue
        connection.settimeout(None)
        engine.admit(connection)
        threading.Thread(target=_serve_guarded, args=(connection, engine), daemon=True,
                         name="engine-connection").start()
    return 0


def _serve_guarded(connection: socket.socket, engine: _Engine) -> None:
    try:
        if serve_connection(connection, engine):
            engine.stop.set()
    except Exception:
        log.exception("engine: a connection failed")
    finally:
        _close(connection)


def serve_connection(connection: socket.socket, engine: _Engine) -> bool:
    """Log one client in and serve it; returns True when it asked the engine to shut down."""
    writer = MessageWriter(connection.makefile("w", encoding="utf-8", newline="\n"))
    stream = connection.makefile("rb")
    try:
        try:
            lines = _login(connection, stream, writer, engine)
        finally:
            engine.logged_in(connection)
        if lines is None:
            return False
        with engine.session:  # one logged-in client at a time; the next one waits here
            server = Server(lines, writer.emit, heartbeat=engine.heartbeat, jobs=engine.jobs)
            server.serve()
        return server.shutdown_requested
    finally:
        writer.close()  # a job this client left running may still emit: those messages go nowhere now
        stream.close()


def _login(connection, stream, writer: MessageWriter, engine: _Engine):
    """The client's lines after a successful login, or None (refused, timed out, gone)."""
    deadline = threading.Timer(LOGIN_DEADLINE_S, _shut, args=(connection,))  # in total, however slow the bytes
    deadline.start()
    lines = protocol.read_lines(stream, limit=LOGIN_LINE_BYTES)
    lines.give_up = True  # an over-long login line is not read to its end
    nonce = socket_auth.new_nonce()
    try:
        writer.emit({"type": protocol.CHALLENGE, "nonce": nonce})
        first = next(lines, None)
    finally:
        deadline.cancel()
    if first is None:
        return None
    try:
        message = protocol.decode(first, allowed_types=(protocol.AUTH,))
        client_nonce = message.get("nonce")
        valid = socket_auth.valid_nonce(client_nonce) and socket_auth.is_valid(
            socket_auth.proof(engine.token, "client", nonce, client_nonce), message.get("proof"))
    except protocol.ProtocolError:
        valid = False
    if not valid:
        with engine.failures:  # failed logins are answered one at a time, each after a delay
            engine.stop.wait(FAILED_LOGIN_DELAY_S)
        writer.emit(BadToken("The engine refused the login: the first message must be an 'auth' answering the "
                             "challenge with this engine session's token (see docs/protocol.md).").as_message(None))
        log.warning("engine: refused a connection without the session token")
        return None
    writer.emit({"type": protocol.WELCOME, "proof": socket_auth.proof(engine.token, "engine", client_nonce, nonce)})
    lines.limit, lines.give_up = protocol.MAX_LINE_BYTES, False
    return lines


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(connection: socket.socket) -> None:
    _shut(connection)
    try:
        connection.close()
    except OSError:
        pass
