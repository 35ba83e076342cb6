"""Paste the edit into the full-resolution photo, replacing only the region the edit changed.

The diffusion pass works at a working resolution (512 on the longer side by default, sides multiples of 64, any
aspect ratio). The changed region is where the object was and where it is now, grown by a margin and given a soft
edge; it is computed at working resolution, scaled to the photo's size, and only there the upscaled edit replaces
the photo. Everything else keeps the photo's own pixels, so a 4K photo keeps its 4K detail outside the edit.
"""

from __future__ import annotations

import numpy as np


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """(w, h) with the longer side ``resolution`` and both sides multiples of 64 (the UNet downsamples 8x the
    VAE's 8x), keeping the aspect ratio as closely as that allows."""
    scale = resolution / max(width, height)
    return (max(64, int(round(width * scale / 64)) * 64), max(64, int(round(height * scale / 64)) * 64))


def resize(array, size: tuple[int, int], kind: str):
    """Resize HxW[xC] to ``size`` = (w, h). kind: 'image' (area down, cubic up), 'mask' (area, > 0.5 for bool),
    'nearest' (depth: never mixes a near and a far value across an edge), 'soft' (float mask, linear)."""
    import cv2

    array = np.asarray(array)
    w, h = size
    if array.shape[1] == w and array.shape[0] == h:
        return array.copy()
    shrinking = w < array.shape[1]
    if kind == "image":
        return cv2.resize(array, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    if kind == "mask":
        soft = cv2.resize(array.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA if shrinking
                          else cv2.INTER_LINEAR)
        return soft > 0.5
    if kind == "nearest":
        return cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST)
    if kind == "soft":
        return cv2.resize(array.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    raise ValueError(kind)


def changed_region(source_mask, target_mask, dilate_px: int, feather_px: int):
    """HxW float32 alpha in [0, 1]: 1 where the edit changed the picture (old and new object place, grown by
    ``dilate_px``), falling smoothly to 0 over ``feather_px``."""
    import cv2

    region = (np.asarray(source_mask, bool) | np.asarray(target_mask, bool)).astype(np.uint8)
    if dilate_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1,) * 2)
        region = cv2.dilate(region, kernel)
    alpha = region.astype(np.float32)
    if feather_px > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=feather_px / 2.0)
    return np.clip(alpha, 0.0, 1.0)


def composite(photo, edited_working, alpha_working):
    """The photo (HxWx3 uint8, full resolution) with the edit (working resolution) pasted where ``alpha``."""
    photo = np.asarray(photo)
    height, width = photo.shape[:2]
    edited = resize(edited_working, (width, height), "image").astype(np.float32)
    alpha = resize(alpha_working, (width, height), "soft")[..., None]
    out = photo.astype(np.float32) * (1.0 - alpha) + edited * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
