"""The one size check of a mask, depth map or background against its photo, the same in every door.

A mask or depth map must have the displayed photo's size (its EXIF orientation applied). One case is turned
instead of refused: when the photo is stored turned a quarter (EXIF orientation 5 to 8) and the file has the
*stored* size (width and height swapped), it was made from the stored pixels, so it is turned the way the photo is.
A same-size file is always taken as already displayed (so a square photo's files, or a photo turned by 180 degrees,
must be made from the displayed photo). Anything else is ``SizeMismatch``: nothing is ever stretched.
"""

from __future__ import annotations

import numpy as np

from ..errors import SizeMismatch
from .images import PhotoShape
from .orientation import TRANSPOSING, to_display


def fit_to_photo(array: np.ndarray, photo: PhotoShape, what: str) -> np.ndarray:
    """``array`` (HxW or HxWxC) at the displayed photo's size, turned if it has the stored size (see above)."""
    height, width = array.shape[:2]
    if (height, width) == (photo.height, photo.width):
        return array
    if photo.orientation in TRANSPOSING and (height, width) == (photo.width, photo.height):
        return to_display(array, photo.orientation)
    raise SizeMismatch(f"The {what} is {width}x{height} pixels but the photo is {photo.width}x{photo.height}. "
                       f"Use a {what} made for this photo, at its size.")


def shape_of(array: np.ndarray) -> PhotoShape:
    """The shape of an already displayed photo array (no turning left to do)."""
    return PhotoShape(int(array.shape[1]), int(array.shape[0]), 1)
