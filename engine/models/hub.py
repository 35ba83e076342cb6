"""Load a component from a hub id or a local folder, safetensors only, never remote code, offline-aware.

Which source to load from is ``engine.models.sources``' choice (a ``Located``); given a plain string, a source is a
local folder if it exists on disk; otherwise, if ``$DHANDLES_MODELS_DIR`` holds a folder named like the hub id
(``<dir>/<org>/<name>`` or ``<dir>/<name>``), that folder; otherwise the hub id, read from the Hugging Face cache
only when ``HF_HUB_OFFLINE`` is set. Every failure to find weights becomes ``ModelMissingError``. Downloads are
off when ``HF_HUB_OFFLINE`` is set or ``DHANDLES_ONLINE_ACCESS=0`` (Blender's online access off):
``offline_reason`` says which.

With the network down but ``HF_HUB_OFFLINE`` unset, the hub client would retry each file for half a minute or more
and then blame a missing ``config.json``. So before a hub load a quick connection to the hub's host decides: if
it cannot be reached the load reads the local cache only, and a failure says the network is unreachable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import ModelMissingError

ONLINE_ACCESS_ENV = "DHANDLES_ONLINE_ACCESS"  # "0": Blender's Allow Online Access is off (the add-on sets it)
ONLINE_ACCESS_WHERE = "Blender's Preferences > System > Network > Allow Online Access"


def offline_reason() -> str | None:
    """Why downloads are off (a phrase), or None when they are allowed."""
    if os.environ.get(ONLINE_ACCESS_ENV) == "0":
        return f"online access is off in Blender (turn it on in {ONLINE_ACCESS_WHERE})"
    if offline():
        return "downloads are off (HF_HUB_OFFLINE is set)"
    return None


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


def load(cls, source, what: str, subfolder: str | None = None, safetensors: bool = True, **kwargs):
    """``cls.from_pretrained`` with the project's rules; ``what`` names the model in error messages. ``source``: a
    hub id or folder, or where ``engine.models.sources.find`` found it (then a cached copy is read offline)."""
    if not isinstance(source, str):  # a sources.Located
        location, source, cached_only = source.where, source.name, source.kind == "cache"
    else:
        location, cached_only = locate(source), False
    is_local = Path(location).is_dir()
    options = dict(kwargs)
    if subfolder:
        options["subfolder"] = subfolder
    if safetensors:
        options["use_safetensors"] = True
    unreachable = not is_local and not cached_only and not offline() and not hub_reachable()
    if not is_local and (offline() or unreachable or cached_only):
        options["local_files_only"] = True  # the cache only: no retries against a hub that cannot answer
    options.pop("trust_remote_code", None)  # never run code from a model repository
    try:
        return cls.from_pretrained(location, **options)
    except ModelMissingError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelMissingError(source, what, _reason(exc, is_local, subfolder, unreachable),
                                detail=str(exc)) from exc
    except Exception as exc:  # hub errors have their own classes; all mean "cannot get the files"
        if type(exc).__module__.startswith(("huggingface_hub", "requests", "httpx", "urllib3")):
            raise ModelMissingError(source, what, _reason(exc, is_local, subfolder, unreachable),
                                    detail=str(exc)) from exc
        raise


_PROBE_SECONDS = 3.0
_PROBE_VALID_SECONDS = 30.0
_probe: tuple[float, bool] | None = None  # (when, reachable): one probe serves a whole bundle's loads


def hub_reachable() -> bool:
    """Whether a TCP connection to the hub's host opens within a few seconds. Behind a proxy the proxy decides,
    so then the answer is yes and the hub client's own errors speak."""
    global _probe
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                             "ALL_PROXY", "all_proxy")):
        return True
    now = time.monotonic()
    if _probe is not None and now - _probe[0] < _PROBE_VALID_SECONDS:
        return _probe[1]
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=_PROBE_SECONDS).close()
        reachable = True
    except OSError:  # refused, unreachable, no DNS, timed out
        reachable = False
    _probe = (now, reachable)
    return reachable


def endpoint() -> str:
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def connection_failed(exc: BaseException) -> bool:
    """True when ``exc`` or an error it was raised from is a failure to reach the network (the libraries wrap
    the socket error in their own OSErrors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if isinstance(exc, (ConnectionError, TimeoutError)) or name in (
                "ConnectError", "ConnectTimeout", "NewConnectionError", "MaxRetryError", "gaierror"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reason(exc: BaseException, is_local: bool, subfolder: str | None, unreachable: bool = False) -> str:
    text = str(exc)
    part = f" (part '{subfolder}')" if subfolder else ""
    if "safetensors" in text.lower():
        return f"no safetensors weights were found{part}; only safetensors files are loaded"
    if is_local:
        return f"the folder is incomplete{part}: {text.splitlines()[0] if text else type(exc).__name__}"
    if offline_reason():
        return f"{offline_reason()} and it is not complete in the local Hugging Face cache{part}"
    if unreachable or connection_failed(exc):
        return (f"the network is unreachable (no connection to {endpoint()}) and it is not in the local Hugging "
                f"Face cache{part}")
    return f"it could not be downloaded{part}: {text.splitlines()[0] if text else type(exc).__name__}"


_FINGERPRINT_BYTES = 1 << 20


def weights_identity(location: str, probe_file: str) -> str:
    """Which weights ``location`` (a local folder or a hub id, as ``locate`` returns it) holds, for cache keys:
    a local folder's fingerprint (each safetensors file's path, size, time and a hash of its first and last MiB:
    cheap for gigabytes, and a changed file changes it); for a hub id the commit of the cached snapshot that
    ``probe_file`` (e.g. ``unet/config.json``) was read from."""
    import hashlib

    folder = Path(location)
    if folder.is_dir() or folder.is_file():
        digest = hashlib.sha256()
        files = [folder] if folder.is_file() else sorted(folder.rglob("*.safetensors"))
        folder = folder.parent if folder.is_file() else folder
        for weights in files:
            stat = weights.stat()
            digest.update(f"{weights.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            with open(weights, "rb") as f:
                digest.update(f.read(_FINGERPRINT_BYTES))
                if stat.st_size > 2 * _FINGERPRINT_BYTES:
                    f.seek(-_FINGERPRINT_BYTES, os.SEEK_END)
                    digest.update(f.read())
        return f"files:{digest.hexdigest()[:16]}"
    return f"hub:{location}@{hub_commit(location, probe_file) or 'unknown'}"


def hub_commit(repo_id: str, probe_file: str) -> str | None:
    """The commit hash of the cached snapshot holding ``probe_file`` of ``repo_id`` (its default revision)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return None
    cached = try_to_load_from_cache(repo_id, probe_file)
    if not isinstance(cached, str):
        return None
    parts = Path(cached).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None
