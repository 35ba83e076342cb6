"""``python -m engine job NAME --params FILE``: run one job in this process and exit.

Prints the same JSON-line messages as the server (``docs/protocol.md``): started, progress..., then one result or
error. Exit status 0 after a result, 1 after an error. Ctrl-C (SIGINT) cancels the job between its steps.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid

NAME = "job"
HELP = "Run one engine job (ping, estimate_depth, edit...) and print its progress and result as JSON lines."


def add_arguments(parser) -> None:
    parser.add_argument("name", help="job name, e.g. ping; see engine/jobs/")
    parser.add_argument("--params", metavar="FILE", help="JSON file with the job's parameters ('-': read stdin)")
    parser.add_argument("--workdir", metavar="DIR", help="folder for the job's default outputs, kept (default: a "
                        "private one, removed when the job ends)")
    parser.add_argument("--key", metavar="KEY", help="take the parameters from this field of the JSON object, e.g. "
                        "'params' to re-run a render from its sidecar (edit_0001.json)")
    parser.add_argument("--job-id", default=None, help="id used in the messages (default: a fresh one)")


def read_params(path: str | None, key: str | None = None) -> dict:
    from ..errors import BadParams, InputNotFound

    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as error:
        raise InputNotFound(f"Cannot read the parameters file '{path}': {error.strerror}.") from None
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadParams(f"The parameters file '{path}' is not valid JSON: {error}.") from None
    if key is not None:
        if not isinstance(params, dict) or key not in params:
            raise BadParams(f"The file '{path}' has no field {key!r}.")
        params = params[key]
    if not isinstance(params, dict):
        raise BadParams(f"The parameters file '{path}' must hold a JSON object.")
    return params


def run(args) -> int:
    from ..jobs import JobError
    from ..process import protocol
    from ..process.job_runner import run_job
    from ..process.message_writer import claim_stdout

    writer = claim_stdout()
    job_id = args.job_id or uuid.uuid4().hex[:12]
    try:
        params = read_params(args.params, args.key)
    except JobError as error:
        writer.emit(protocol.error(job_id, error.code, error.message))
        return 1

    cancel = threading.Event()

    def on_interrupt(signum, frame):
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    signal.signal(signal.SIGINT, on_interrupt)
    workdir = os.path.abspath(args.workdir) if args.workdir else None  # on a command line, relative to here
    return 0 if run_job(job_id, args.name, params, writer.emit, cancel, workdir) else 1
