"""Disparity for depth-conditioned diffusion, as the official implementation feeds it: 1/depth min-max normalised
to [0, 255], and maps resampled to the latent grid."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import is_torch, like_input, to_tensor
from .errors import GeometryError


def normalised_disparity(depth, bounds=None):
    """255 * (1/depth - min) / (max - min), float32; min/max over the map unless bounds=(min, max) of 1/depth are
    given (the official use_input_depth_normalization). A constant map gives all zeros."""
    as_torch = is_torch(depth)
    dev = depth.device if as_torch else torch.device("cpu")
    # float64 where the device has it, so the extremes land exactly on 0 and 255
    d = to_tensor(depth, dev, dtype=torch.float32 if dev.type == "mps" else torch.float64)
    if not bool((torch.isfinite(d) & (d > 0)).all()):
        raise GeometryError("depth must be positive and finite everywhere to turn it into disparity")
    disp = 1.0 / d
    lo, hi = (disp.min(), disp.max()) if bounds is None else (torch.as_tensor(float(bounds[0])),
                                                              torch.as_tensor(float(bounds[1])))
    span = hi - lo
    out = torch.zeros_like(disp) if float(span) <= 0 else (disp - lo) * (255.0 / span)
    return like_input(out.to(torch.float32), as_torch)


def disparity_bounds(depth) -> tuple[float, float]:
    """(min, max) of 1/depth, to normalise an edited depth like its input."""
    d = np.asarray(depth.detach().cpu().numpy() if is_torch(depth) else depth, dtype=np.float64)
    return float((1.0 / d).min()), float((1.0 / d).max())


def resample_to_grid(array, size, mode: str = "area"):
    """Resample an HxW (or CxHxW) map to size=(h, w).

    mode "area": mean over each cell (disparity, depth); "nearest": pick (masks, indices);
    "bicubic": what the official SD2-depth pipeline uses before it renormalises.
    """
    if mode not in ("area", "nearest", "bicubic", "bilinear"):
        raise ValueError(f"unknown resampling mode {mode!r}: use area, nearest, bicubic or bilinear")
    as_torch = is_torch(array)
    src = array if as_torch else torch.from_numpy(np.ascontiguousarray(array))
    dtype = src.dtype
    x = src.to(torch.float32)
    squeeze = x.dim() == 2
    x = x[None, None] if squeeze else x[None]
    h, w = int(size[0]), int(size[1])
    if mode == "nearest":
        y = F.interpolate(x, size=(h, w), mode="nearest-exact")
    elif mode == "area":
        y = F.interpolate(x, size=(h, w), mode="area")
    else:
        y = F.interpolate(x, size=(h, w), mode=mode, align_corners=False)
    y = y[0, 0] if squeeze else y[0]
    if dtype == torch.bool:
        y = y > 0.5
    elif not dtype.is_floating_point and mode == "nearest":
        y = y.to(dtype)
    return like_input(y, as_torch)


def latent_depth_condition(disparity, size=(64, 64)):
    """What the official SD2-depth pipeline feeds the UNet: the 0..255 disparity resampled bicubically to the
    latent grid, then min-max normalised to [-1, 1] (GuidedStableDiffuser.init_depth). HxW in, h x w out."""
    small = resample_to_grid(disparity, size, mode="bicubic")
    as_torch = is_torch(small)
    t = small if as_torch else torch.from_numpy(small)
    lo, hi = t.min(), t.max()
    out = torch.zeros_like(t) if float(hi - lo) <= 0 else 2.0 * (t - lo) / (hi - lo) - 1.0
    return like_input(out, as_torch)
