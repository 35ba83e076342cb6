"""Field-of-view conventions: focal length in pixels from a field of view, and back.

A field of view is an angle across one extent of the image, so it only means something with its convention named:

- ``across``: which extent, ``"horizontal"`` (the width), ``"vertical"`` (the height), ``"longer"`` (the larger
  side: Blender's sensor fit AUTO) or ``"diagonal"`` (camera makers' and 35 mm-equivalent figures);
- ``span``: ``"edges"`` (between the outer pixel edges, W pixels wide: a lens's true field of view, Blender's) or
  ``"centres"`` (between the outermost pixel centres, W - 1 pixels: the official Diffusion Handles code).

The one default of every door (the ``edit``/``geometry`` commands, the jobs and Blender's import): 55 degrees across
the longer side, spanning the outermost pixel centres (``DEFAULT_FOV_*``; the official test set's convention).
Square pixels: fx = fy. numpy-free, standard library only (Blender's Python imports this).
"""
from __future__ import annotations

import math

from .errors import GeometryError

FOV_ACROSS = ("longer", "horizontal", "vertical", "diagonal")
FOV_SPANS = ("centres", "edges")
DEFAULT_FOV_DEG = 55.0
DEFAULT_FOV_ACROSS = "longer"
DEFAULT_FOV_SPAN = "centres"


def fov_extent_px(width: int, height: int, across: str = DEFAULT_FOV_ACROSS, span: str = DEFAULT_FOV_SPAN) -> float:
    """The image extent a field of view spans, in pixels.

    Args:
        width, height: image size in pixels.
        across: ``"horizontal"``, ``"vertical"``, ``"longer"`` or ``"diagonal"``.
        span: ``"edges"`` (W pixels across) or ``"centres"`` (W - 1 pixels across).
    Returns:
        the extent in pixels (a float for the diagonal).
    """
    if across not in FOV_ACROSS:
        raise GeometryError(f"unknown field-of-view convention across={across!r}; use one of {', '.join(FOV_ACROSS)}")
    if span not in FOV_SPANS:
        raise GeometryError(f"unknown field-of-view span {span!r}; use one of {', '.join(FOV_SPANS)}")
    w, h = (width, height) if span == "edges" else (width - 1, height - 1)
    if across == "horizontal":
        return w
    if across == "vertical":
        return h
    if across == "longer":
        return max(w, h)
    return math.hypot(w, h)


def check_fov(fov_deg: float) -> None:
    """GeometryError unless 0 < fov_deg < 180."""
    if not (0.0 < fov_deg < 180.0):
        raise GeometryError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")


def focal_from_fov(fov_deg: float, width: int, height: int, across: str = DEFAULT_FOV_ACROSS,
                   span: str = DEFAULT_FOV_SPAN) -> float:
    """Focal length in pixels, f = extent / (2 tan(fov / 2)), for a field of view in degrees and its convention."""
    check_fov(fov_deg)
    extent = fov_extent_px(width, height, across, span)
    if extent <= 0:
        raise GeometryError(f"a {width}x{height} image has no {across} extent between pixel {span}")
    return extent / (2.0 * math.tan(math.radians(fov_deg) / 2.0))


def fov_from_focal(focal_px: float, width: int, height: int, across: str = DEFAULT_FOV_ACROSS,
                   span: str = DEFAULT_FOV_SPAN) -> float:
    """Field of view in degrees from a focal length in pixels: the inverse of ``focal_from_fov``."""
    if not (focal_px > 0 and math.isfinite(focal_px)):
        raise GeometryError(f"focal length must be positive and finite, got {focal_px}")
    return math.degrees(2.0 * math.atan(fov_extent_px(width, height, across, span) / (2.0 * focal_px)))


def fov_from_sensor(side_mm: float, focal_mm: float) -> float:
    """Field of view in degrees across a sensor extent of ``side_mm`` behind a lens of ``focal_mm``."""
    return math.degrees(2.0 * math.atan(side_mm / (2.0 * focal_mm)))
