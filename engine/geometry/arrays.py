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
