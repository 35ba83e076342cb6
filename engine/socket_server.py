"""The engine over a loopback TCP socket instead of stdin/stdout, for tools that cannot hold the engine's pipes
(another program, a second Blender, a notebook) while it keeps its models warm between them.

``python -m engine serve --listen 127.0.0.1:0``: the engine binds a loopback address only, writes one
``listening`` message (host, port, token) on its stdout and serves one connection at a time. A connection's
first line must be ``{"type": "auth", "token": ...}`` with the session token (``$DHANDLES_ENGINE_TOKEN``, or a
random one given in the ``listening`` message); then the protocol is exactly the stdin/stdout one
(``docs/protocol.md``). Every connection queues on the same worker (``engine/job_queue.py``), so one job at a
time runs on the accelerator for the life of the process. A connection that closes cancels its jobs but keeps the
engine and its models for the next one, whose jobs start only once the cancelled one has ended; ``shutdown`` ends
the process.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
import sys

from . import protocol
from .job_queue import JobQueue
from .message_writer import MessageWriter
from .server import Server

TOKEN_ENV = "DHANDLES_ENGINE_TOKEN"
AUTH_TIMEOUT_S = 10.0


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


def serve_socket(address: str, announce, heartbeat: float = 1.0, token: str | None = None) -> int:
    host, port = parse_address(address)
    token = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as listener:
        bound_host, bound_port = listener.getsockname()[:2]
        announce({"type": protocol.LISTENING, "host": bound_host, "port": bound_port, "token": token})
        jobs = JobQueue()  # one worker for every connection, for the life of the process
        jobs.start()
        while True:
            connection, peer = listener.accept()
            with connection:
                if serve_connection(connection, token, heartbeat, jobs):
                    return 0


def serve_connection(connection: socket.socket, token: str, heartbeat: float, jobs: JobQueue) -> bool:
    """Serve one client; returns True when it asked the engine to shut down."""
    reader = connection.makefile("r", encoding="utf-8", errors="replace", newline=None)
    writer = MessageWriter(connection.makefile("w", encoding="utf-8", newline="\n"))
    try:
        return _serve_authenticated(connection, reader, writer, token, heartbeat, jobs)
    finally:
        writer.close()  # a job this client left running may still emit: those messages go nowhere now
        reader.close()


def _serve_authenticated(connection, reader, writer, token: str, heartbeat: float, jobs: JobQueue) -> bool:
    connection.settimeout(AUTH_TIMEOUT_S)
    try:
        first = reader.readline()
    except (OSError, TimeoutError):
        first = ""
    connection.settimeout(None)
    try:
        message = protocol.decode(first, allowed_types=(protocol.AUTH,))
        presented = message.get("token")
        valid = isinstance(presented, str) and hmac.compare_digest(presented.encode(), token.encode())
    except protocol.ProtocolError:
        valid = False
    if not valid:
        writer.emit(protocol.error(None, "bad_token", "The first message must be {\"type\": \"auth\", \"token\": "
                                   "...} with this engine session's token."))
        print("engine: refused a connection without the session token", file=sys.stderr)
        return False
    server = Server(reader, writer.emit, heartbeat=heartbeat, jobs=jobs)
    server.serve()
    return server.shutdown_requested
