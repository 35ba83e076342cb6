"""Load a component from a hub id or a local folder, safetensors only, never remote code, offline-aware.

A source is a local folder if it exists on disk; otherwise, if ``$DHANDLES_MODELS_DIR`` holds a folder named like
the hub id (``<dir>/<org>/<name>`` or ``<dir>/<name>``), that folder; otherwise the hub id, read from the Hugging
Face cache only when ``HF_HUB_OFFLINE`` is set. Every failure to find weights becomes ``ModelMissingError``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelMissingError


def offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")


def locate(source: str) -> str:
    """A local folder for ``source`` if there is one, else ``source`` unchanged (a hub id)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return str(path)
    root = os.environ.get("DHANDLES_MODELS_DIR")
    if root:
        for candidate in (Path(root) / source, Path(root) / source.split("/")[-1]):
            if candidate.is_dir():
                return str(candidate)
    if source.startswith((".", "/", "~")) or os.sep in source.strip("/").replace("/", "", 1):
        raise ModelMissingError(source, "model folder", "that folder does not exist",
                                hint="Check the path, or give a preset name or a Hugging Face hub id instead.")
    return source


def load(cls, source: str, what: str, subfolder: str | None = None, safetensors: bool = True, **kwargs):
    """``cls.from_pretrained`` with the project's rules; ``what`` names the model in error messages."""
    location = locate(source)
    is_local = Path(location).is_dir()
    options = dict(kwargs)
    if subfolder:
        options["subfolder"] = subfolder
    if safetensors:
        options["use_safetensors"] = True
    if not is_local and offline():
        options["local_files_only"] = True
    options.pop("trust_remote_code", None)  # never run code from a model repository
    try:
        return cls.from_pretrained(location, **options)
    except ModelMissingError:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelMissingError(source, what, _reason(exc, is_local, subfolder), detail=str(exc)) from exc
    except Exception as exc:  # hub errors have their own classes; all mean "cannot get the files"
        if type(exc).__module__.startswith(("huggingface_hub", "requests", "httpx", "urllib3")):
            raise ModelMissingError(source, what, _reason(exc, is_local, subfolder), detail=str(exc)) from exc
        raise


def _reason(exc: BaseException, is_local: bool, subfolder: str | None) -> str:
    text = str(exc)
    part = f" (part '{subfolder}')" if subfolder else ""
    if "safetensors" in text.lower():
        return f"no safetensors weights were found{part}; only safetensors files are loaded"
    if is_local:
        return f"the folder is incomplete{part}: {text.splitlines()[0] if text else type(exc).__name__}"
    if offline():
        return f"the network is off (HF_HUB_OFFLINE) and it is not in the local Hugging Face cache{part}"
    return f"it could not be downloaded{part}: {text.splitlines()[0] if text else type(exc).__name__}"
