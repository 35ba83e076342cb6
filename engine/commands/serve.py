"""``python -m engine serve``: the long-lived engine Blender (or any script) drives over stdin/stdout.

Speaks the JSON-lines protocol of ``docs/protocol.md``: one message per line on stdin, one per line on stdout,
logs on stderr. Runs until ``shutdown`` or the end of stdin. ``--listen`` serves the same protocol over a local
(Unix or loopback TCP) socket with a mutual token login instead (``engine/process/socket_server.py``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

NAME = "serve"
HELP = "Run the long-lived engine process that Blender drives: JSON-line protocol on stdin/stdout."


def add_arguments(parser) -> None:
    parser.add_argument("--heartbeat", type=float, default=1.0, metavar="SECONDS",
                        help="how often to tell the client the engine is alive (default 1)")
    parser.add_argument("--listen", metavar="ADDRESS", default=None,
                        help="serve over a local socket instead of stdin/stdout: 'unix' (a Unix socket in a fresh "
                        "private folder), 'unix:PATH', 'auto' (unix where available, else loopback TCP) or a "
                        "loopback HOST:PORT such as 127.0.0.1:0; the address and session token are printed as one "
                        "'listening' message")


def run(args) -> int:
    from ..errors import BadToken
    from ..process.message_writer import claim_stdout
    from ..process.server import Server

    writer = claim_stdout()
    heartbeat = max(0.05, args.heartbeat)
    if args.listen is not None:
        from ..process.socket_server import serve_socket

        try:
            code = serve_socket(args.listen, writer.emit, heartbeat)
        except (ValueError, OSError, BadToken) as error:
            log.error("error: %s", error)
            return 2
    else:
        from ..process.protocol import read_lines

        code = Server(read_lines(sys.stdin.buffer), writer.emit, heartbeat=heartbeat).serve()
    sys.stderr.flush()
    if any(t.name == "engine-worker" and t.is_alive() for t in threading.enumerate()):
        os._exit(code)  # a job ignored its cancel; do not let interpreter shutdown wait on it
    return code
