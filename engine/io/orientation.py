"""EXIF orientation as numpy array operations (numpy only, so Blender's Python can use it too).

A photo's pixels are stored in the camera's orientation; the EXIF ``Orientation`` tag (1 to 8) says how to turn
them for display. The engine works on the displayed photo, so every reader turns what it reads with
:func:`to_display`.
"""

from __future__ import annotations

import numpy as np

TRANSPOSING = frozenset((5, 6, 7, 8))  # width and height swap between the stored and the displayed image


def to_display(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (HxW or HxWxC, rows top first) as displayed under EXIF ``orientation`` (unknown values: as is)."""
    if orientation == 2:
        turned = array[:, ::-1]
    elif orientation == 3:
        turned = array[::-1, ::-1]
    elif orientation == 4:
        turned = array[::-1]
    elif orientation == 5:
        turned = array.swapaxes(0, 1)
    elif orientation == 6:
        turned = np.rot90(array, -1)
    elif orientation == 7:
        turned = np.rot90(array, 2).swapaxes(0, 1)
    elif orientation == 8:
        turned = np.rot90(array, 1)
    else:
        return array
    return np.ascontiguousarray(turned)


def displayed_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """(width, height) of a stored ``width`` x ``height`` image once displayed."""
    return (height, width) if orientation in TRANSPOSING else (width, height)
