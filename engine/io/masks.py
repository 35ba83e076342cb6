"""Reading object masks: an image (white on black, or an RGBA cut-out whose alpha is the mask; see
``mask_rule``) or an NPY (HxW bool, or numbers where > 0.5 is the object)."""

from __future__ import annotations

import numpy as np

from ..errors import BadMask
from .fit import fit_to_photo
from .images import PhotoShape, decode
from .mask_rule import mask_from_pixels
from .orientation import to_display
from .paths import input_path


def read_mask(path, photo: PhotoShape | None = None, what: str = "mask") -> np.ndarray:
    """HxW bool, as displayed (the file's own EXIF orientation applied); with ``photo``, at its size
    (``fit_to_photo``)."""
    path = input_path(path, what)
    if path.suffix.lower() == ".npy":
        mask = _read_npy(path, what)
    else:
        pixels, top, orientation = decode(path, what, BadMask)
        mask = to_display(mask_from_pixels(pixels, top), orientation)
    return mask if photo is None else fit_to_photo(mask, photo, what)


def _read_npy(path, what: str) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise BadMask(f"The {what} '{path}' could not be read as an NPY array ({error}). Save it with numpy.save "
                      "as an HxW array.") from None
    if values.ndim not in (2, 3) or not (values.dtype == bool or np.issubdtype(values.dtype, np.number)):
        raise BadMask(f"The {what} '{path}' must be an HxW (or HxWxC) array of numbers, not {values.shape} "
                      f"{values.dtype}.")
    return values.copy() if values.dtype == bool and values.ndim == 2 else mask_from_pixels(values, 1.0)
