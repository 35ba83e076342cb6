"""The EXIF camera numbers of a photo, as plain values (the camera maths lives in ``engine/geometry``)."""

from __future__ import annotations

import math

from .images import EXIF_ORIENTATION, open_image, orientation_of
from .paths import input_path

_EXIF_IFD = 0x8769
_TAGS = {  # key: EXIF tag
    "focal_length_mm": 37386,             # a rational
    "focal_length_35mm": 41989,           # FocalLengthIn35mmFilm
    "pixel_x_dimension": 40962,           # the image the camera wrote, in pixels (stored orientation)
    "pixel_y_dimension": 40963,
    "focal_plane_x_resolution": 41486,    # sensor pixels per focal_plane_unit (stored orientation)
    "focal_plane_y_resolution": 41487,
}
_FOCAL_PLANE_UNIT = 41488
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch (the EXIF default), centimetre; mm and um as some cameras write


def exif_camera_numbers(path) -> dict:
    """{focal_length_mm, focal_length_35mm, pixel_x_dimension, pixel_y_dimension, focal_plane_x_resolution,
    focal_plane_y_resolution: a positive finite float or None; focal_plane_unit_mm: millimetres per focal plane
    resolution unit (25.4 when the tag is absent, None when it is unknown or there is no EXIF); orientation: 1 to 8}.

    The pixel dimensions and focal plane resolutions are as the camera stored them: with an ``orientation`` of 5
    to 8 the displayed photo's width is their y. A photo without EXIF gives None everywhere and orientation 1; a
    missing file is ``InputNotFound``, a file that is not an image ``BadImage``.
    """
    path = input_path(path, "photo")
    with open_image(path, "photo") as image:
        orientation = orientation_of(image)
        tags = _tags(image)
    numbers = {key: _positive(tags.get(tag)) for key, tag in _TAGS.items()}
    numbers["focal_plane_unit_mm"] = _UNIT_MM.get(_integer(tags.get(_FOCAL_PLANE_UNIT, 2))) if tags else None
    numbers["orientation"] = orientation
    numbers["has_exif"] = bool(tags)
    return numbers


def _tags(image) -> dict:
    """IFD0 with the Exif sub-IFD merged over it; {} when there are none or they cannot be read."""
    if image.format == "PNG" and "exif" not in image.info:
        return {}
    try:
        exif = image.getexif()
        tags = {**dict(exif), **dict(exif.get_ifd(_EXIF_IFD))}
    except Exception:  # noqa: BLE001 - broken EXIF: as if there were none
        return {}
    tags.pop(EXIF_ORIENTATION, None)
    return tags


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _integer(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
