"""Inversions and their recorded activations on disk, so that every further edit of a photo (and every frame of
an animation) costs only the guided pass.

One safetensors file per inversion, named by a key: the SHA-256 of the working-resolution photo's pixels, its
depth, the prompt, the model's identity, the dtype and the inversion-relevant settings. Tensors: ``latents_t``,
``null_embeddings`` (null-text only) and ``activations.<layer>``; the metadata holds the method and the
reconstruction error. Writes go to a temporary file first, so a crash never leaves a half-written entry.
Default folder: ``$DHANDLES_CACHE_DIR`` or ``~/.cache/diffusion-handles/inversions``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    root = os.environ.get("DHANDLES_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "diffusion-handles" / "inversions"


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
    def __init__(self, folder=None, enabled: bool = True):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def load(self, key: str, device, dtype):
        """The cached ``Inversion`` for ``key``, or None (missing, disabled, or unreadable: then recomputed)."""
        if not self.enabled or not self.path(key).is_file():
            return None
        from safetensors import safe_open

        from .inversion import Inversion

        try:
            with safe_open(str(self.path(key)), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except Exception:  # a truncated or foreign file: treat as a miss, it is rewritten after recomputing
            return None
        activations = {int(name.split(".", 1)[1]): tensor.to(device=device, dtype=dtype)
                       for name, tensor in tensors.items() if name.startswith("activations.")}
        null = tensors.get("null_embeddings")
        return Inversion(latents_t=tensors["latents_t"].to(device=device, dtype=torch_float32()),
                         null_embeddings=None if null is None else null.to(device=device, dtype=dtype),
                         activations=activations, reconstruction_mse=float(meta.get("reconstruction_mse", "nan")),
                         method=meta.get("method", "?"))

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
        return final


def torch_float32():
    import torch

    return torch.float32
