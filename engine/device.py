"""Where the models run and in which precision, and what to do when the accelerator runs out of memory.

Policy: CUDA, then MPS, then the CPU. Half precision where the accelerator does it well (bf16 on CUDA GPUs that
do it in hardware, Ampere and newer, else fp16: older GPUs only emulate bf16, slowly; fp16 on MPS), fp32 on the
CPU, where half precision is slow or missing. ``DHANDLES_DEVICE``
and ``DHANDLES_DTYPE`` (environment) override the choice, e.g. for benchmarks.

Out of memory: ``is_out_of_memory(exc)`` recognises the error on every backend, ``LOW_MEMORY_LEVELS`` names the
fallbacks ``engine.models`` applies in order (attention slicing, VAE tiling, keeping idle models on the CPU), and
``out_of_memory_message`` says in words, for that device, what happened, what was tried and what to do.
"""

from __future__ import annotations

import os

LOW_MEMORY_LEVELS = ("attention slicing", "VAE tiling", "CPU offload of idle models")


def pick_device(prefer: str | None = None):
    """The torch device to run on: ``prefer`` (or ``$DHANDLES_DEVICE``) if given and usable, else CUDA, MPS, CPU."""
    import torch

    prefer = prefer or os.environ.get("DHANDLES_DEVICE") or None
    if prefer and prefer != "auto":
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"Device {prefer!r} was asked for, but torch sees no CUDA GPU here.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"Device {prefer!r} was asked for, but torch sees no Apple GPU (MPS) here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


_DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
           "bf16": "bfloat16", "bfloat16": "bfloat16"}


def pick_dtype(device, prefer: str | None = None):
    """The compute dtype for ``device``: ``prefer`` (or ``$DHANDLES_DTYPE``: fp32/fp16/bf16) if given, else bf16 on
    CUDA GPUs with native bf16, fp16 on other CUDA GPUs and MPS, fp32 on the CPU."""
    import torch

    prefer = prefer or os.environ.get("DHANDLES_DTYPE") or None
    if prefer and prefer != "auto":
        if prefer not in _DTYPES:
            raise ValueError(f"Unknown dtype {prefer!r}; use one of fp32, fp16, bf16.")
        return getattr(torch, _DTYPES[prefer])
    device = torch.device(device)
    if device.type == "cuda":
        # emulated bf16 (pre-Ampere) "works" but is many times slower than fp16: count native support only
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors, whatever class the backend raises."""
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())) or isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "mps backend out of memory" in text)


def out_of_memory_message(device, tried: list[str]) -> str:
    """What ran out, what was tried and what the user can do, for ``device``'s kind (a CPU has no smaller device
    to move to; a GPU can fall back to the CPU)."""
    import torch

    kind = torch.device(device).type
    tried_text = ", ".join(tried) if tried else "nothing yet"
    lower = "lower the Working Size (Render panel > Settings > Working Size; `--resolution` on the command line)"
    if kind == "cpu":
        return (f"The computer ran out of memory (RAM) on the CPU (already tried: {tried_text}). Close other "
                f"programs or {lower}.")
    name = "GPU" if kind == "cuda" else "Apple GPU (MPS)" if kind == "mps" else str(device)
    return (f"The {name} ran out of memory (already tried: {tried_text}). Close other programs that use the GPU, "
            f"{lower}, or run the engine on the CPU (environment variable DHANDLES_DEVICE=cpu), which is slow but "
            "has more memory.")


def reset_peak_memory(device) -> None:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device) -> int | None:
    """Peak memory since the last reset, as ``peak_memory_measure`` names it: on CUDA the most the tensors held
    (``max_memory_allocated``; the caching allocator reserves more, see ``peak_memory_reserved_bytes``), on MPS
    what the driver holds now, on the CPU the process's peak resident size (an upper bound: everything the
    process ever held)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return None


def peak_memory_reserved_bytes(device) -> int | None:
    """On CUDA the peak the caching allocator reserved from the driver (what other programs cannot use, and
    what an out-of-memory error is about); None elsewhere."""
    import torch

    device = torch.device(device)
    return int(torch.cuda.max_memory_reserved(device)) if device.type == "cuda" else None


def peak_memory_measure(device) -> str:
    """Which quantity ``peak_memory_bytes`` reports on ``device``."""
    import torch

    kind = torch.device(device).type
    return {"cuda": "torch.cuda.max_memory_allocated", "mps": "torch.mps.driver_allocated_memory"}.get(
        kind, "process peak resident set size (ru_maxrss)")


def synchronize(device) -> None:
    """Wait for queued accelerator work, so that wall-clock stage timings are honest."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_memory() -> None:
    from . import model_cache

    model_cache.free_accelerator_memory()
