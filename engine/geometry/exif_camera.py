"""A photo's field of view from its EXIF camera numbers, passed as plain values: the dict of
``engine.io.exif_camera_numbers`` (which reads the tags), with x across the displayed photo.

The numbers, all optional (missing, zero, negative or non-finite values count as absent):

- ``focal_length_35mm``: FocalLengthIn35mmFilm, mm; defined on the 43.27 mm diagonal of a 36 x 24 mm frame;
- ``focal_length_mm``: FocalLength, mm;
- ``focal_plane_x_resolution``, ``focal_plane_y_resolution``: sensor pixels per ``focal_plane_unit_mm``;
- ``focal_plane_unit_mm``: the FocalPlaneResolutionUnit in mm (25.4 for EXIF's default, the inch); None: unknown;
- ``pixel_x_dimension``, ``pixel_y_dimension``: the size of the image the camera wrote (PixelX/YDimension);
- ``has_exif``: False when the photo has no EXIF at all (an empty dict means the same).

The field of view comes out across the longer side between the outer pixel edges (see fov.py). Standard library only.
"""
from __future__ import annotations

import math

from .fov import fov_from_sensor

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


def _positive(numbers: dict, key: str) -> float | None:
    try:
        value = float(numbers[key])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def fov_from_35mm_equivalent(focal_35mm: float, width: int, height: int) -> float:
    """Degrees across the longer side: that side spans 43.27 mm * max(W, H) / hypot(W, H) at the equivalent focal."""
    return fov_from_sensor(FULL_FRAME_DIAGONAL_MM * max(width, height) / math.hypot(width, height), focal_35mm)


def focal_plane_side_mm(numbers: dict, width: int, height: int) -> float | None:
    """The sensor's extent along the photo's longer side in mm, from the focal plane resolution; None if unknown.

    The resolution counts pixels of the image the camera wrote (PixelX/YDimension when present and of the photo's
    aspect; a resized photo keeps the same sensor), so the side is those pixels over the resolution.
    """
    across = width >= height
    resolution = _positive(numbers, "focal_plane_x_resolution" if across else "focal_plane_y_resolution")
    unit_mm = _positive(numbers, "focal_plane_unit_mm")
    if resolution is None or unit_mm is None:
        return None
    original_w, original_h = _positive(numbers, "pixel_x_dimension"), _positive(numbers, "pixel_y_dimension")
    if original_w is None or original_h is None or abs(original_w * height - original_h * width) > \
            0.01 * original_w * height:
        original_w, original_h = width, height  # no or cropped dimensions: assume the photo as the camera wrote it
    return (original_w if across else original_h) / resolution * unit_mm


def fov_from_exif(numbers: dict, width: int, height: int) -> tuple[float | None, str, str]:
    """(field of view across the longer side in degrees, or None; its source; a sentence saying where it came from).

    Sources: ``"exif_35mm"`` (the 35 mm-equivalent focal length, preferred), ``"exif_focal_plane"`` (the focal
    length on the sensor size the focal plane resolution gives), ``"default"`` (None: the EXIF cannot say).
    """
    if not numbers or numbers.get("has_exif") is False:
        return None, "default", "the default: the photo has no EXIF data"
    focal_35 = _positive(numbers, "focal_length_35mm")
    if focal_35 is not None:
        return fov_from_35mm_equivalent(focal_35, width, height), "exif_35mm", \
            f"from the EXIF 35 mm equivalent focal length, {focal_35:g} mm"
    focal = _positive(numbers, "focal_length_mm")
    if focal is None:
        return None, "default", "the default: the photo's EXIF has no focal length"
    side_mm = focal_plane_side_mm(numbers, width, height)
    if side_mm is None:
        return None, "default", (f"the default: the photo's EXIF has a focal length ({focal:g} mm) but no focal "
                                 "plane resolution, so the sensor size is unknown")
    return fov_from_sensor(side_mm, focal), "exif_focal_plane", \
        f"from the EXIF focal length, {focal:g} mm, on a {side_mm:.2f} mm wide sensor (focal plane resolution)"
