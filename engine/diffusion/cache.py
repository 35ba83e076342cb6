"""Inversions and their recorded activations on disk, so that every further edit of a photo (and every frame of
an animation) costs only the guided pass.

One safetensors file per inversion, ``inversion-<key>.safetensors``, named by a key: the SHA-256 of the
working-resolution photo's pixels, its depth, the prompt, the model's identity (which includes which weights: hub
commit, local files' fingerprint or random seed), the dtype and the settings the chosen inversion method uses
(``EditSettings.inversion_key``). Tensors: ``latents_t``, ``null_embeddings`` (null-text only) and
``activations.<layer>``; the metadata holds the method, the reconstruction error and ``sha256``, a hash of every
tensor's name, dtype, shape and bytes, checked on load.

The cache owns its folder without ever touching a user's file: it marks a folder it made (or found empty) with
``MARKER``, and only ever deletes, in a marked folder, files of its own naming (entries and its temporary files).
Writes go to a temporary file first, so a crash never leaves a half-written entry (stale temporary files over an
hour old are cleaned). An entry that is unreadable, fails its hash, lacks a tensor or has the wrong shape is a
miss with a warning (``warning``), is deleted and recomputed, never an error. A cache that cannot be written (full
disk, read-only, a file in its place) is a warning too: the job still delivers its result.

Size: at most ``$DHANDLES_CACHE_MAX_GB`` gigabytes (default 20; 0 for no limit). After each write the least
recently used entries (a hit counts as a use) are deleted until the folder fits; the entry just written stays.
Default folder: ``$DHANDLES_CACHE_DIR`` or ``~/.cache/diffusion-handles/inversions``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_MAX_GB = 20.0
_DEFAULT = object()
MARKER = ".dhandles-inversion-cache"
PREFIX = "inversion-"
_ENTRY = re.compile(r"^inversion-[0-9A-Za-z_-]{1,64}\.safetensors$")
_LEGACY = re.compile(r"^[0-9a-f]{32}\.safetensors$")  # entries of earlier versions (no hash: never read)
_TEMPORARY = re.compile(r"^\.inversion-[0-9A-Za-z_-]{1,64}\.safetensors\.[0-9A-Za-z_]+\.tmp$")
STALE_TEMPORARY_S = 3600.0


def default_cache_dir() -> Path:
    root = os.environ.get("DHANDLES_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "diffusion-handles" / "inversions"


def max_cache_bytes() -> int | None:
    """The size limit from ``$DHANDLES_CACHE_MAX_GB`` (decimal gigabytes), ``DEFAULT_MAX_GB`` when unset, None
    (no limit) for 0 or less."""
    text = os.environ.get("DHANDLES_CACHE_MAX_GB", "").strip()
    if not text:
        return int(DEFAULT_MAX_GB * 1e9)
    try:
        gigabytes = float(text)
    except ValueError:
        raise ValueError(f"DHANDLES_CACHE_MAX_GB must be a number of gigabytes (e.g. 20, or 0 for no limit), not "
                         f"{text!r}.") from None
    return None if gigabytes <= 0 else int(gigabytes * 1e9)


def inversion_key(image, depth, prompt: str, model_identity: str, dtype: str, settings_key: dict) -> str:
    digest = hashlib.sha256()
    for array in (image, depth):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps({"prompt": prompt, "model": model_identity, "dtype": dtype, "settings": settings_key},
                             sort_keys=True).encode())
    return digest.hexdigest()[:32]


class InversionCache:
    def __init__(self, folder=None, enabled: bool = True, max_bytes=_DEFAULT):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.enabled = enabled
        self.max_bytes = max_cache_bytes() if max_bytes is _DEFAULT else max_bytes
        self.warning: str | None = None  # why the last load missed on a damaged entry, or a store failed

    def path(self, key: str) -> Path:
        return self.folder / f"{PREFIX}{key}.safetensors"

    def owns_folder(self) -> bool:
        """Whether the folder is this cache's own (marked): only then does it delete anything there."""
        return (self.folder / MARKER).is_file()

    def load(self, key: str, device, dtype, layers=(), latent_shape=None):
        """The cached ``Inversion`` for ``key``, or None: missing, disabled, or unreadable, failing its hash,
        lacking a tensor (``layers``: the activations it must hold) or of another shape than ``latent_shape``; then
        ``warning`` says so, the entry is deleted and the caller recomputes it."""
        self.warning = None
        path = self.path(key)
        if not self.enabled or not path.is_file():
            return None
        try:
            inversion = _read(path, device, dtype, layers, latent_shape)
        except Exception as error:  # noqa: BLE001 - a damaged or foreign file of any kind is a miss
            self.warning = (f"The cached inversion '{path}' could not be used ({type(error).__name__}: {error}); "
                            "it is computed again and overwritten.")
            warnings.warn(self.warning, RuntimeWarning, stacklevel=2)
            self._delete(path)
            return None
        _touch(path)  # least recently *used*: a hit keeps the entry
        return inversion

    def store(self, key: str, inversion, info: dict | None = None) -> Path | None:
        """Write the entry for ``key``; None (and ``warning`` saying why) when the cache is off or cannot be
        written: the caller's result stands either way."""
        if not self.enabled:
            return None
        try:
            return self._store(key, inversion, info)
        except (OSError, ValueError, RuntimeError) as error:
            self.warning = (f"The inversion cache '{self.folder}' could not be written ({type(error).__name__}: "
                            f"{error}); the result is complete, but the next edit of this photo inverts it again. "
                            "Free disk space or choose a writable cache folder.")
            warnings.warn(self.warning, RuntimeWarning, stacklevel=2)
            return None

    def _store(self, key: str, inversion, info: dict | None) -> Path:
        from safetensors.torch import save_file

        tensors = {"latents_t": inversion.latents_t.detach().float().cpu().contiguous()}
        if inversion.null_embeddings is not None:
            tensors["null_embeddings"] = inversion.null_embeddings.detach().cpu().contiguous()
        for layer, tensor in inversion.activations.items():
            tensors[f"activations.{layer}"] = tensor.detach().cpu().contiguous()
        meta = {"method": inversion.method, "reconstruction_mse": repr(inversion.reconstruction_mse),
                "info": json.dumps(info or {}, sort_keys=True, default=str), "sha256": content_hash(tensors)}
        self._prepare_folder()
        final = self.path(key)
        handle, name = tempfile.mkstemp(dir=self.folder, prefix=f".{final.name}.", suffix=".tmp")
        os.close(handle)
        try:
            save_file(tensors, name, metadata=meta)
            os.replace(name, final)
        finally:
            Path(name).unlink(missing_ok=True)
        self.evict(keep=final)
        return final

    def _prepare_folder(self) -> None:
        """Make the folder (marked as this cache's), or mark one holding nothing but entries of this cache (of this
    version or earlier ones); clean stale temporary files in a marked folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / MARKER
        if not marker.is_file() and all(_ENTRY.match(p.name) or _LEGACY.match(p.name) or _TEMPORARY.match(p.name)
                                         for p in self.folder.iterdir()):
            marker.write_text("The engine's inversion cache: it deletes only inversion-*.safetensors here.\n")
        if marker.is_file():
            now = time.time()
            for path in self._own_files(_TEMPORARY):
                try:
                    if now - path.stat().st_mtime > STALE_TEMPORARY_S:
                        path.unlink(missing_ok=True)
                except OSError:
                    continue

    def _own_files(self, pattern) -> list[Path]:
        try:
            return [path for path in self.folder.iterdir() if pattern.match(path.name) and path.is_file()
                    and not path.is_symlink()]
        except OSError:
            return []

    def _delete(self, path: Path) -> None:
        """Delete an entry of this cache's naming in its own folder; anything else stays."""
        if self.owns_folder() and _ENTRY.match(path.name) and not path.is_symlink():
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Delete least recently used entries until the folder fits ``max_bytes``; returns what was deleted. Only
        entries of this cache's naming, in a folder it owns, are ever deleted."""
        if self.max_bytes is None or not self.owns_folder():
            return []
        entries = []
        for path in self._own_files(_ENTRY):
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted meanwhile by another engine
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        deleted = []
        for _, size, path in sorted(entries, key=lambda entry: entry[0]):
            if total <= self.max_bytes:
                break
            if keep is not None and path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            deleted.append(path)
        return deleted


def content_hash(tensors: dict) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _read(path: Path, device, dtype, layers, latent_shape=None):
    import torch
    from safetensors import safe_open

    from .inversion import Inversion

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 - safe_open is not iterable
    method = meta.get("method")
    required = ["latents_t"] + (["null_embeddings"] if method == "null-text" else [])
    required += [f"activations.{layer}" for layer in layers]
    missing = [name for name in required if name not in tensors]
    if method is None or missing:
        raise ValueError(f"missing {', '.join(missing or ['method'])}")
    if meta.get("sha256") != content_hash(tensors):
        raise ValueError("its content does not match its hash (damaged, or written by another program)")
    _check_shapes(tensors, latent_shape)
    activations = {int(name.split(".", 1)[1]): tensor.to(device=device, dtype=dtype)
                   for name, tensor in tensors.items() if name.startswith("activations.")}
    null = tensors.get("null_embeddings")
    return Inversion(latents_t=tensors["latents_t"].to(device=device, dtype=torch.float32),
                     null_embeddings=None if null is None else null.to(device=device, dtype=dtype),
                     activations=activations, reconstruction_mse=float(meta.get("reconstruction_mse", "nan")),
                     method=method)


def _check_shapes(tensors: dict, latent_shape) -> None:
    """ValueError for tensors of a shape no inversion of this photo has."""
    latents = tensors["latents_t"]
    if latents.ndim != 4 or (latent_shape is not None and tuple(latents.shape) != tuple(latent_shape)):
        raise ValueError(f"latents of shape {tuple(latents.shape)}, not {latent_shape or '4-D'}")
    null = tensors.get("null_embeddings")
    if null is not None and null.ndim != 3:
        raise ValueError(f"null embeddings of shape {tuple(null.shape)}")
    for name, tensor in tensors.items():
        if name.startswith("activations.") and (tensor.ndim not in (3, 4) or not name[12:].isdigit()):
            raise ValueError(f"{name} of shape {tuple(tensor.shape)}")


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves hits
        pass
