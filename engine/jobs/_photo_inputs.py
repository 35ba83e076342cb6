"""Read and validate the files of one imported photo (photo, depth, mask, background, background depth).

Shared by the ``scene`` and ``preview`` jobs, so an import and every later preview see the same arrays and refuse
bad files with the same messages. The files are read by ``engine.io`` (the engine's one reader); this module adds
what an import needs on top: a mask that selects something, positive depth, the field of view from the EXIF
camera numbers. Every failure is a typed ``EngineError`` whose message says which file is wrong and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io
from ..errors import BadDepth, BadParams, EmptyMask, FullMask
from ..geometry.fov import DEFAULT_FOV_DEG
from ..io.orientation import TRANSPOSING
from . import existing_file


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


def exif_fov(path: Path, width: int, height: int) -> tuple[float | None, str, str]:
    """(field of view across the larger side or None, source, a sentence saying where it came from): the maths is
    ``engine.geometry.exif_camera.fov_from_exif``, on the EXIF camera numbers across the displayed photo."""
    from ..geometry.exif_camera import fov_from_exif

    return fov_from_exif(_displayed_exif(path), width, height)


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
