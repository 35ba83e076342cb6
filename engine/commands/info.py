"""``python -m engine info``: what this engine's Python can do, as one JSON object.

The extension and users run it to check an engine installation: the engine version, the Python, and for each
package the engine needs, its version or why it could not be imported, plus the accelerator torch sees.
"""

from __future__ import annotations

import json
import sys

from .. import __version__
from ..environment import accelerator, imported_versions

NAME = "info"
HELP = "Print the engine's version, Python, packages and accelerator as JSON."


def add_arguments(parser) -> None:
    parser.add_argument("--no-accelerator", action="store_true", help="skip importing torch to query the device")


def run(args) -> int:
    report = {
        "engine": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "packages": imported_versions(),
    }
    if not args.no_accelerator and "version" in report["packages"]["torch"]:
        report["accelerator"] = accelerator()
    sys.stdout.write(json.dumps(report) + "\n")
    missing = [name for name, entry in report["packages"].items() if "error" in entry]
    return 1 if missing else 0
