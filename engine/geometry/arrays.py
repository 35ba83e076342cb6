"""numpy <-> torch at the edges of the geometry engine: heavy maths runs in torch on the best device, results go
back in the kind the caller passed."""
from __future__ import annotations

import numpy as np
import torch


def is_torch(a) -> bool:
    return isinstance(a, torch.Tensor)


def pick_device(device=None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_tensor(a, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def like_input(t: torch.Tensor, as_torch: bool):
    """Return a result tensor as torch (same device) or as a numpy array, matching the caller's input kind."""
    return t if as_torch else t.detach().cpu().numpy()


def float_le(a, b) -> torch.Tensor:
    """a <= b as 0/1 floats shaped like the tensor operand (b: a tensor of the same shape, or a number; or a number
    and a tensor): on the CPU a float-valued comparison, and products of such masks, are several times cheaper than
    bool masks and torch.where."""
    if not isinstance(a, torch.Tensor):
        return torch.ge(b, a, out=torch.empty_like(b))
    return torch.le(a, b, out=torch.empty_like(a))


def flat_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """int64 indices of the true entries of a flat bool tensor (numpy's is about twice as fast on the CPU)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask).squeeze(1)


def keep_freed_memory() -> bool:
    """Let this process keep freed memory for reuse instead of returning it to the OS. glibc hands every block of
    128 KB or more straight back on free and page-faults it in again on the next allocation; an edit allocates
    hundreds of 0.1-2 MB temporaries, so that costs an engine process several ms of system time per edit. For
    processes that run the geometry (the geometry command, the benchmark); True where it took effect (glibc)."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    # blocks below 32 MB (glibc's ceiling) from the heap, and up to 256 MB of freed heap kept
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 256 << 20))
