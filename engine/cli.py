"""The engine's command line.

Each command lives in its own module under ``engine/commands/`` and defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Commands are discovered from that folder, so adding one never
means editing a central list. Command modules are imported only to build the parser; their heavy imports
(torch, diffusers) belong inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import __version__, commands


class CurrentStderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when each message is logged.

    Tests and embedding programs swap ``sys.stderr``; a plain StreamHandler would keep writing to the old one.
    """

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(fmt: str = "%(message)s", datefmt: str | None = None, level: int = logging.INFO) -> None:
    """Send the engine's log messages (human messages, errors) to stderr; stdout stays for machine output.

    Called once by ``main``; a command may call it again to change the format (``batch`` adds the time).
    """
    logger = logging.getLogger("engine")
    handler = next((h for h in logger.handlers if isinstance(h, CurrentStderrHandler)), None)
    if handler is None:
        handler = CurrentStderrHandler()
        logger.addHandler(handler)
    handler.setFormatter(logging.Formatter(fmt, datefmt))
    logger.setLevel(level)
    logger.propagate = False


def discover_commands() -> dict:
    """Map each command name to its module, in name order."""
    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        found[module.NAME] = module
    return dict(sorted(found.items()))


def build_parser(found: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Diffusion Handles engine: 3D-aware photo editing with depth-conditioned diffusion.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in found.items():
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    found = discover_commands()
    parser = build_parser(found)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(found[args.command].run(args) or 0)
