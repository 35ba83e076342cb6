"""Opening image files safely and reading photos: PNG (8/16-bit), JPEG, TIFF, WebP, BMP.

PIL reads the header first (size, EXIF orientation) and refuses a decompression bomb (more pixels than
``PIL.Image.MAX_IMAGE_PIXELS``) before anything is decoded; OpenCV then decodes the pixels when it can (about
twice as fast as PIL for large PNGs and JPEGs), PIL otherwise. Every photo comes back as displayed: the EXIF
orientation applied.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadImage, BadInput
from .orientation import displayed_size, to_display
from .paths import input_path

EXIF_ORIENTATION = 0x0112
FORMATS_HINT = "Use a PNG, JPEG, TIFF or WebP file."
# OpenCV decodes these without turning them (it ignores their EXIF orientation with IMREAD_UNCHANGED); it turns a
# TIFF by its orientation tag itself, so TIFFs and the rest go through PIL
_CV2_FORMATS = frozenset(("PNG", "JPEG", "WEBP", "BMP"))


@dataclass(frozen=True)
class PhotoShape:
    """A photo as displayed: its width and height once turned by its EXIF ``orientation`` (1: stored as shown)."""

    width: int
    height: int
    orientation: int = 1


@contextmanager
def open_image(path: Path, what: str, error=BadImage):
    """PIL's image for ``path`` (header read, pixels not yet decoded); ``BadInput`` for a decompression bomb,
    ``error`` for a file that is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except Image.DecompressionBombError as bomb:
        raise _bomb(path, what, str(bomb)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as failure:
        raise error(f"The {what} '{path}' is not an image the engine can read ({failure}). {FORMATS_HINT}") from None
    with image:
        limit = Image.MAX_IMAGE_PIXELS
        if limit and image.width * image.height > limit:
            raise _bomb(path, what, f"{image.width}x{image.height} pixels, more than the limit of {limit}")
        yield image


def _bomb(path: Path, what: str, detail: str) -> BadInput:
    return BadInput(f"The {what} '{path}' is too large to read safely ({detail}); it may be a decompression bomb. "
                    "Use a smaller image.")


def orientation_of(image) -> int:
    """The EXIF orientation (1 to 8) of an open PIL image; 1 when it has none. A PNG's EXIF after its pixels is not
    looked for (finding it means decoding them all)."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - broken EXIF: shown as stored
        return 1
    return value if 1 <= value <= 8 else 1


def photo_shape(path, what: str = "photo") -> PhotoShape:
    """The displayed size and EXIF orientation of a photo, from its header (no pixels decoded)."""
    path = input_path(path, what)
    with open_image(path, what) as image:
        orientation = orientation_of(image)
        if image.format == "TIFF":  # PIL gives a TIFF's size as displayed already (it turns it as it decodes)
            return PhotoShape(image.width, image.height, orientation)
        width, height = displayed_size(image.width, image.height, orientation)
    return PhotoShape(width, height, orientation)


def decode(path: Path, what: str, error=BadImage) -> tuple[np.ndarray, float, int]:
    """(stored pixels as HxW or HxWxC in RGB(A) order, the value of full white, EXIF orientation)."""
    with open_image(path, what, error) as image:
        array = _cv2_decode(path, image.width, image.height) if image.format in _CV2_FORMATS else None
        if array is None:
            array, top = _pil_pixels(image, path, what, error)
        else:
            top = 65535.0 if array.dtype == np.uint16 else 255.0
        # after decoding: PIL turns a TIFF by its orientation tag as it decodes it, and then drops the tag
        orientation = orientation_of(image)
    return array, top, orientation


def _cv2_decode(path: Path, width: int, height: int) -> np.ndarray | None:
    """8/16-bit pixels as OpenCV decodes them (channels turned to RGB(A) order), or None when it cannot, or when it
    gives another size than the header (it turned the image itself)."""
    import cv2

    try:
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if array is None or array.dtype not in (np.uint8, np.uint16) or array.shape[:2] != (height, width):
        return None
    if array.ndim == 3 and array.shape[2] in (3, 4):
        order = [2, 1, 0] + ([3] if array.shape[2] == 4 else [])
        array = array[..., order]
    return array if array.ndim in (2, 3) else None


def _pil_pixels(image, path: Path, what: str, error) -> tuple[np.ndarray, float]:
    try:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return np.asarray(image, dtype=np.uint16), 65535.0
        if image.mode in ("I", "F"):
            values = np.asarray(image, dtype=np.float64)
            return values, float(values.max()) or 1.0
        if image.mode in ("RGBA", "LA", "L", "RGB"):
            return np.asarray(image), 255.0
        keeps_alpha = "A" in image.mode or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if keeps_alpha else "RGB")), 255.0
    except (OSError, ValueError, SyntaxError) as failure:
        raise error(f"The {what} '{path}' could not be decoded ({failure}). {FORMATS_HINT}") from None


def read_photo(path, what: str = "photo") -> np.ndarray:
    """HxWx3 uint8 RGB as displayed (EXIF orientation applied); 16-bit scaled to 8, grey repeated, alpha dropped."""
    path = input_path(path, what)
    array, top, orientation = decode(path, what)
    if array.ndim == 3:
        array = array[..., :3] if array.shape[2] >= 3 else np.repeat(array[..., :1], 3, axis=2)
    else:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = (array / top * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    return to_display(np.ascontiguousarray(array), orientation)
