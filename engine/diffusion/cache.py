"""Inversions and their recorded activations on disk, so that every further edit of a photo (and every frame of
an animation) costs only the guided pass.

One safetensors file per inversion, named by a key: the SHA-256 of the working-resolution photo's pixels, its
depth, the prompt, the model's identity (which includes which weights: hub commit, local files' fingerprint or
random seed), the dtype and the settings the chosen inversion method uses (``EditSettings.inversion_key``).
Tensors: ``latents_t``, ``null_embeddings`` (null-text only) and ``activations.<layer>``; the metadata holds the
method and the reconstruction error. Writes go to a temporary file first, so a crash never leaves a half-written
entry; an entry that is unreadable or lacks a tensor anyway (a foreign or damaged file) is a miss, with a warning,
and is recomputed and overwritten.

Size: at most ``$DHANDLES_CACHE_MAX_GB`` gigabytes (default 20; 0 for no limit). After each write the least
recently used entries (a hit counts as a use) are deleted until the folder fits; the entry just written stays.
Default folder: ``$DHANDLES_CACHE_DIR`` or ``~/.cache/diffusion-handles/inversions``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

DEFAULT_MAX_GB = 20.0
_DEFAULT = object()


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
        self.warning: str | None = None  # why the last load missed on a damaged entry, for the report

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def load(self, key: str, device, dtype, layers=()):
        """The cached ``Inversion`` for ``key``, or None: missing, disabled, or unreadable or lacking a tensor
        (``layers``: the activations it must hold); then ``warning`` says so and the caller recomputes it."""
        self.warning = None
        path = self.path(key)
        if not self.enabled or not path.is_file():
            return None
        try:
            inversion = _read(path, device, dtype, layers)
        except Exception as error:  # noqa: BLE001 - a damaged or foreign file of any kind is a miss
            self.warning = (f"The cached inversion '{path}' could not be used ({type(error).__name__}: {error}); "
                            "it is computed again and overwritten.")
            warnings.warn(self.warning, RuntimeWarning, stacklevel=2)
            return None
        _touch(path)  # least recently *used*: a hit keeps the entry
        return inversion

    def store(self, key: str, inversion, info: dict | None = None) -> Path | None:
        if not self.enabled:
            return None
        from safetensors.torch import save_file

        tensors = {"latents_t": inversion.latents_t.detach().float().cpu().contiguous()}
        if inversion.null_embeddings is not None:
            tensors["null_embeddings"] = inversion.null_embeddings.detach().cpu().contiguous()
        for layer, tensor in inversion.activations.items():
            tensors[f"activations.{layer}"] = tensor.detach().cpu().contiguous()
        meta = {"method": inversion.method, "reconstruction_mse": repr(inversion.reconstruction_mse),
                "info": json.dumps(info or {}, sort_keys=True, default=str)}
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(key)
        temporary = final.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(temporary), metadata=meta)
        os.replace(temporary, final)
        self.evict(keep=final)
        return final

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Delete least recently used entries until the folder fits ``max_bytes``; returns what was deleted."""
        if self.max_bytes is None:
            return []
        entries = []
        for path in self.folder.glob("*.safetensors"):
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


def _read(path: Path, device, dtype, layers):
    import torch
    from safetensors import safe_open

    from .inversion import Inversion

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    method = meta.get("method")
    required = ["latents_t"] + (["null_embeddings"] if method == "null-text" else [])
    required += [f"activations.{layer}" for layer in layers]
    missing = [name for name in required if name not in tensors]
    if method is None or missing:
        raise ValueError(f"missing {', '.join(missing or ['method'])}")
    activations = {int(name.split(".", 1)[1]): tensor.to(device=device, dtype=dtype)
                   for name, tensor in tensors.items() if name.startswith("activations.")}
    null = tensors.get("null_embeddings")
    return Inversion(latents_t=tensors["latents_t"].to(device=device, dtype=torch.float32),
                     null_embeddings=None if null is None else null.to(device=device, dtype=dtype),
                     activations=activations, reconstruction_mse=float(meta.get("reconstruction_mse", "nan")),
                     method=method)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves hits
        pass
