"""Classical inpainting of the background an object leaves behind, for previews with no background image.

OpenCV's Telea inpainting costs time in proportion to the hole's area, so large photos are inpainted at a reduced
size (at most ``MAX_SIDE`` pixels on the long side) and only the hole is pasted back, upsampled; the rest of the
photo keeps its full resolution.
"""

from __future__ import annotations

import numpy as np

MAX_SIDE = 1024
RADIUS_PX = 5


def colour_hole_dilation(height: int, width: int) -> int:
    """How far the colour hole extends beyond the object mask: masks rarely hold the object's antialiased edge
    and contact shadow, and any of it left at the hole's border is smeared inward by the inpainting. 6 pixels at
    512, scaled to the photo."""
    return max(2, round(6 * max(height, width) / 512))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` grown by ``pixels`` (a square structuring element)."""
    if pixels <= 0:
        return mask.astype(bool)
    import cv2

    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` (HxWx3 uint8) with the pixels of ``hole`` (HxW bool) filled from their surroundings."""
    import cv2

    hole = hole.astype(bool)
    if not hole.any():
        return image.copy()
    height, width = hole.shape
    scale = min(1.0, MAX_SIDE / max(height, width))
    if scale == 1.0:
        return cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8), RADIUS_PX, cv2.INPAINT_TELEA)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # any hole pixel in a small pixel's footprint makes it a hole pixel, plus one for the upsampling's blur
    small_hole = dilate(cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0, 1)
    filled = cv2.inpaint(small, small_hole.astype(np.uint8), RADIUS_PX, cv2.INPAINT_TELEA)
    up = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    out = image.copy()
    out[hole] = up[hole]
    return out


def fill_background(photo: np.ndarray, hole: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """The photo with ``hole`` replaced by the background image there, or inpainted when there is none."""
    if background is None:
        return inpaint(photo, hole)
    out = photo.copy()
    out[hole] = background[hole]
    return out


def save_png(path, image: np.ndarray) -> None:
    """Write an RGB uint8 image fast (low zlib level: previews are written often and read once)."""
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write '{path}'")


LOSSLESS_TEXTURE_MAX_SIDE = 2048


def save_texture(stem, image: np.ndarray):
    """Write a mesh texture and return its path: a PNG up to ``LOSSLESS_TEXTURE_MAX_SIDE`` pixels, above that a
    quality-95 JPEG, because a 4K PNG alone takes about a second to encode and the texture is only for the
    viewport (previews are written losslessly, from the photo itself)."""
    import cv2
    from pathlib import Path

    stem = Path(stem)
    if max(image.shape[:2]) <= LOSSLESS_TEXTURE_MAX_SIDE:
        path = stem.with_suffix(".png")
        save_png(path, image)
        return path
    path = stem.with_suffix(".jpg")
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write '{path}'")
    return path
