"""Models kept loaded between jobs, so the long-lived engine (``python -m engine serve``) loads each model once.

Loaders call ``get_or_load(key, load)``: the first call runs ``load()`` and keeps what it returns; later calls with
the same key (model id, dtype, device...) return it at once. ``clear()`` forgets everything and gives the GPU memory
back, which the engine does on out-of-memory errors and on release.
"""

from __future__ import annotations

import gc
import sys
import threading

_models: dict = {}
_lock = threading.RLock()


def get_or_load(key, load):
    """The model cached under ``key`` (any hashable), loading it with ``load()`` the first time."""
    with _lock:
        if key not in _models:
            _models[key] = load()
        return _models[key]


def keys() -> list:
    with _lock:
        return list(_models)


def clear() -> None:
    """Drop every cached model and return the accelerator's cached memory to the driver."""
    with _lock:
        _models.clear()
    free_accelerator_memory()


def free_accelerator_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # never import torch just to free memory it never held
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        mps.empty_cache()
