"""Read and validate the files of one imported photo (photo, depth, mask, background, background depth).

Shared by the ``scene`` and ``preview`` jobs, so an import and every later preview see the same arrays and refuse
bad files with the same messages. The files are read by ``engine.io`` (the engine's one reader); this module adds
what an import needs on top: a mask that selects something, positive depth, the field of view from the EXIF
camera numbers. Every failure is a typed ``EngineError`` whose message says which file is wrong and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io
from ..errors import BadDepth, BadParams, EmptyMask, FullMask
from ..io.orientation import TRANSPOSING
from . import existing_file

DEFAULT_FOV_DEG = 55.0
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


@dataclass
class PhotoInputs:
    photo: np.ndarray              # HxWx3 uint8 RGB
    depth: np.ndarray              # HxW float32 metric z-depth, > 0 and finite
    mask: np.ndarray               # HxW bool, the object
    background: np.ndarray | None  # HxWx3 uint8, the photo without the object
    background_depth: np.ndarray | None  # HxW float32

    @property
    def height(self) -> int:
        return int(self.photo.shape[0])

    @property
    def width(self) -> int:
        return int(self.photo.shape[1])


def optional_path(path: str | None, what: str) -> Path | None:
    """``path`` as an existing file, or None when it is not given."""
    return None if not path else existing_file(path, what)


def load(files) -> PhotoInputs:
    """Read ``photo``, ``depth``, ``mask`` (required) and ``bg``, ``bg_depth`` (optional) of ``files`` (an
    ``engine.params.PhotoFiles``, e.g. a job's parameters), each through ``engine.io`` at the displayed photo's
    size (``engine.io.fit_to_photo``)."""
    photo_path = existing_file(files.photo, "photo")
    photo = io.read_photo(photo_path, "photo")
    shape = io.photo_shape(photo_path)
    depth = io.read_depth(existing_file(files.depth, "depth map"), shape, "depth map")
    check_depth(depth, "depth map")
    mask = io.read_mask(existing_file(files.mask, "mask"), shape, "mask")
    if not mask.any():
        raise EmptyMask("The mask selects no pixels. Paint the object white (or load a mask where the "
                       "object is white on black) and import again.")
    if mask.all():
        raise FullMask("The mask covers the whole photo, so there is no background. Paint only the "
                       "object white and import again.")
    background = background_depth = None
    bg_path = optional_path(files.bg, "background image")
    if bg_path is not None:
        background = io.fit_to_photo(io.read_photo(bg_path, "background image"), shape, "background image")
    bg_depth_path = optional_path(files.bg_depth, "background depth map")
    if bg_depth_path is not None:
        background_depth = io.read_depth(bg_depth_path, shape, "background depth map")
        check_depth(background_depth, "background depth map")
    return PhotoInputs(photo, depth, mask, background, background_depth)


def check_depth(depth: np.ndarray, what: str) -> None:
    if np.all(depth > 0) and np.isfinite(depth.max()):  # the common case, without temporary masks
        return
    finite = np.isfinite(depth)
    bad_nan = int((~finite).sum())
    bad_sign = int((depth[finite] <= 0).sum())
    if bad_nan or bad_sign:
        parts = []
        if bad_nan:
            parts.append(f"{bad_nan} NaN or infinite")
        if bad_sign:
            parts.append(f"{bad_sign} zero or negative")
        raise BadDepth(f"The {what} has {' and '.join(parts)} pixels; metric depth must be positive "
                       "everywhere. Fill its holes (or re-estimate the depth) and import again.")


def _fov_across(side_mm: float, focal_mm: float) -> float:
    return math.degrees(2.0 * math.atan(side_mm / (2.0 * focal_mm)))


def exif_fov(path: Path, width: int, height: int) -> tuple[float | None, str, str]:
    """(field of view across the larger side or None, source, a sentence saying where it came from).

    First the 35 mm-equivalent focal length: defined on the diagonal of a 36x24 mm frame, so the larger side of this
    photo spans 43.27 mm * max(W, H) / hypot(W, H) at that focal length. Else the focal length with the focal plane
    resolution (sensor pixels per unit), which give the sensor's size: the resolution counts pixels of the image the
    camera wrote (PixelXDimension x PixelYDimension when present and of the photo's aspect; a resized photo keeps
    the same sensor), so the side is those pixels over the resolution.
    """
    numbers = _displayed_exif(path)
    if not numbers.get("has_exif"):
        return None, "default", "the default: the photo has no EXIF data"
    focal_35 = numbers["focal_length_35mm"]
    if focal_35 is not None:
        side_mm = FULL_FRAME_DIAGONAL_MM * max(width, height) / math.hypot(width, height)
        return _fov_across(side_mm, focal_35), "exif_35mm", \
            f"from the EXIF 35 mm equivalent focal length, {focal_35:g} mm"
    focal = numbers["focal_length_mm"]
    if focal is None:
        return None, "default", "the default: the photo's EXIF has no focal length"
    across = width >= height
    resolution = numbers["focal_plane_x_resolution" if across else "focal_plane_y_resolution"]
    unit_mm = numbers["focal_plane_unit_mm"]
    if resolution is None or unit_mm is None:
        return None, "default", (f"the default: the photo's EXIF has a focal length ({focal:g} mm) but no focal "
                                 "plane resolution, so the sensor size is unknown")
    original_w, original_h = numbers["pixel_x_dimension"], numbers["pixel_y_dimension"]
    if original_w is None or original_h is None or abs(original_w * height - original_h * width) > \
            0.01 * original_w * height:
        original_w, original_h = width, height  # no or cropped dimensions: assume the photo as the camera wrote it
    side_mm = (original_w if across else original_h) / resolution * unit_mm
    return _fov_across(side_mm, focal), "exif_focal_plane", \
        f"from the EXIF focal length, {focal:g} mm, on a {side_mm:.2f} mm wide sensor (focal plane resolution)"


def _displayed_exif(path: Path) -> dict:
    """``engine.io.exif_camera_numbers`` with the x and y numbers of a photo stored turned a quarter swapped, so
    that x is across the displayed photo; {} when they cannot be read."""
    from ..errors import EngineError

    try:
        numbers = io.exif_camera_numbers(path)
    except EngineError:
        return {}
    if numbers["orientation"] in TRANSPOSING:
        for x, y in (("pixel_x_dimension", "pixel_y_dimension"),
                     ("focal_plane_x_resolution", "focal_plane_y_resolution")):
            numbers[x], numbers[y] = numbers[y], numbers[x]
    return numbers


def resolve_fov(fov: float | None, photo_path: Path, width: int, height: int) -> tuple[float, str, str]:
    """The field of view to use (``fov``: the job's checked ``fov`` parameter, None when not given), where it came
    from ("given", "exif_35mm", "exif_focal_plane" or "default") and a sentence saying so for the user."""
    if fov is not None:
        if isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 1.0 <= float(fov) <= 170.0:
            raise BadParams(f"'fov' must be a number of degrees from 1 to 170, not {fov!r}.")
        return float(fov), "given", "as given"
    from_exif, source, note = exif_fov(photo_path, width, height)
    if from_exif is None:
        return DEFAULT_FOV_DEG, source, note
    if not 1.0 <= from_exif <= 170.0:
        return DEFAULT_FOV_DEG, "default", f"the default: the EXIF gives {from_exif:.1f} degrees ({note})"
    return from_exif, source, note
