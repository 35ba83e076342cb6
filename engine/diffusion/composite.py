"""Paste the edit into the full-resolution photo, replacing only the region the edit changed.

The diffusion pass works at a working resolution: the photo scaled to 512 on the longer side by default, keeping its
aspect, then padded to sides that are multiples of 64 (``working_layout``: image and depth edge-replicated, the
mask's padding background), and the result is cropped back before compositing, so a 16:9 photo is never squashed.
The changed region is where the object was and where it is now, grown by a margin and given a soft
edge; it is computed at working resolution, scaled to the photo's size, and only there the upscaled edit replaces
the photo. Everything else keeps the photo's own pixels, so a 4K photo keeps its 4K detail outside the edit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class WorkingLayout:
    """Where the photo sits in the working frame: ``content`` (w, h) is the photo scaled with its aspect kept,
    ``padded`` (w, h) the frame the models see (multiples of 64), ``offset`` (x, y) the content's top-left corner
    in it (centred, so the padding is shared by both sides)."""

    content: tuple[int, int]
    padded: tuple[int, int]
    offset: tuple[int, int]

    def pad(self, array, fill=None):
        """HxW[xC] at ``content`` size -> ``padded`` size: edge-replicated, or ``fill`` (e.g. False for a mask)."""
        array = np.asarray(array)
        (w, h), (pw, ph), (x, y) = self.content, self.padded, self.offset
        widths = [(y, ph - h - y), (x, pw - w - x)] + [(0, 0)] * (array.ndim - 2)
        if fill is None:
            return np.pad(array, widths, mode="edge")
        return np.pad(array, widths, mode="constant", constant_values=fill)

    def crop(self, array):
        """The content part of an HxW[xC] array at ``padded`` size."""
        (w, h), (x, y) = self.content, self.offset
        return np.asarray(array)[y:y + h, x:x + w]

    def crop_image_tensor(self, image):
        """The content part of a ...xHxW tensor (e.g. a decoded 1x3xHxW image) at ``padded`` size."""
        (w, h), (x, y) = self.content, self.offset
        return image[..., y:y + h, x:x + w]

    def camera(self, camera):
        """``camera`` (at the photo's size) for the padded working frame: scaled to the content, then with its
        principal point moved by the offset (the padding adds pixels around the image, it does not zoom)."""
        scaled = camera.scaled(*self.content)
        return replace(scaled, width=self.padded[0], height=self.padded[1], cx=scaled.cx + self.offset[0],
                       cy=scaled.cy + self.offset[1])


def working_layout(width: int, height: int, resolution: int) -> WorkingLayout:
    """The layout for a ``width`` x ``height`` photo whose longer side becomes ``resolution`` (a multiple of 64;
    the UNet downsamples 8x the VAE's 8x)."""
    scale = resolution / max(width, height)
    w, h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    pw, ph = -(-w // 64) * 64, -(-h // 64) * 64
    return WorkingLayout(content=(w, h), padded=(pw, ph), offset=((pw - w) // 2, (ph - h) // 2))


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
