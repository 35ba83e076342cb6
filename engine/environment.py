"""What this engine's Python has: the packages the engine needs and their versions, and the accelerator torch sees.

One home for these facts, below every layer that reports them: ``python -m engine info`` (``engine/commands/info.py``),
the server's ``hello`` (``engine/process/server.py``) and the ``ping`` job's ``device`` answer
(``engine/jobs/ping.py``). Importing this module is cheap: torch is imported only by :func:`accelerator`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform

# Import names of the packages the engine needs (``pyproject.toml`` lists their distributions).
PACKAGES = ("numpy", "scipy", "torch", "diffusers", "transformers", "safetensors", "OpenEXR", "cv2", "peft")
# What the hello checks: the same, plus Pillow.
REQUIRED_PACKAGES = (*PACKAGES, "PIL")
# Import names whose distribution has another name.
_DISTRIBUTIONS = {"PIL": "pillow", "cv2": "opencv-python-headless", "OpenEXR": "OpenEXR"}


def installed_versions(names=REQUIRED_PACKAGES) -> dict:
    """Each import name mapped to its installed version ("unknown" without metadata), or None when it cannot be
    found. Uses import specs and metadata only: importing torch here would slow every engine start by seconds."""
    report = {}
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        version = None
        if found:
            try:
                version = importlib.metadata.version(_DISTRIBUTIONS.get(name, name))
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
        report[name] = version
    return report


def imported_versions(names=PACKAGES) -> dict:
    """Each import name mapped to ``{"version": ...}`` after importing it, or ``{"error": ...}`` saying why it
    could not be imported (slow: this imports torch and friends, which is what proves an installation works)."""
    versions = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # a broken install raises more than ImportError
            versions[name] = {"error": f"{type(error).__name__}: {error}"}
        else:
            versions[name] = {"version": str(getattr(module, "__version__", "unknown"))}
    return versions


def accelerator() -> dict:
    """The accelerator torch would run on: ``{"type": "cuda" | "mps" | "cpu", "name": ...}``."""
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0)}
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return {"type": "mps", "name": "Apple GPU"}
    return {"type": "cpu", "name": platform.processor() or platform.machine()}
