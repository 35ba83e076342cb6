"""The one rule that turns pixels into an object mask (numpy only: Blender's painted masks use it too).

White on black: a pixel is the object when its brightest colour channel is above half the range. An image with an
alpha channel (grey+alpha or RGBA) whose alpha is not the same everywhere is a cut-out: then the alpha alone is the
mask (above half the range), whatever the colour of the transparent pixels. A uniform alpha (an opaque mask saved
as RGBA) carries nothing, so the colour decides.
"""

from __future__ import annotations

import numpy as np


def mask_from_pixels(pixels: np.ndarray, top: float) -> np.ndarray:
    """HxW bool from HxW grey or HxWxC pixels (C = 2 or 4: the last channel is alpha) with values in [0, top]."""
    pixels = np.asarray(pixels)
    half = top / 2.0
    if pixels.ndim == 2:
        return pixels > half
    if pixels.ndim != 3:
        raise ValueError(f"mask pixels must be HxW or HxWxC, not {pixels.shape}")
    channels = pixels.shape[2]
    if channels in (2, 4):
        alpha = pixels[..., -1]
        if alpha.min() != alpha.max():
            return alpha > half
        pixels = pixels[..., :-1]
    return pixels.max(axis=2) > half
