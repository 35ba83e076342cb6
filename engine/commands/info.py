"""``python -m engine info``: what this engine's Python can do, as one JSON object.

The extension and users run it to check an engine installation: the engine version, the Python, and for each
package the engine needs, its version or why it could not be imported, plus the accelerator torch sees.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys

from .. import __version__

NAME = "info"
HELP = "Print the engine's version, Python, packages and accelerator as JSON."

PACKAGES = ("numpy", "scipy", "torch", "diffusers", "transformers", "safetensors", "OpenEXR", "cv2", "peft")


def add_arguments(parser) -> None:
    parser.add_argument("--no-accelerator", action="store_true", help="skip importing torch to query the device")


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # a broken install raises more than ImportError
            versions[name] = {"error": f"{type(error).__name__}: {error}"}
        else:
            versions[name] = {"version": str(getattr(module, "__version__", "unknown"))}
    return versions


def accelerator() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0)}
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return {"type": "mps", "name": "Apple GPU"}
    return {"type": "cpu", "name": platform.processor() or platform.machine()}


def run(args) -> int:
    report = {
        "engine": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "packages": package_versions(),
    }
    if not args.no_accelerator and "version" in report["packages"]["torch"]:
        report["accelerator"] = accelerator()
    print(json.dumps(report))
    missing = [name for name, entry in report["packages"].items() if "error" in entry]
    return 1 if missing else 0
