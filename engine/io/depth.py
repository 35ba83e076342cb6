"""Reading metric z-depth maps: EXR (channel ``Y``, ``Z``, ``R`` or ``depth``, or the only one), NPY (HxW), or a
16-bit PNG/TIFF in millimetres. An 8-bit image cannot hold metric depth and is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadDepth
from .fit import fit_to_photo
from .images import PhotoShape, decode
from .orientation import to_display
from .paths import input_path

DEPTH_PNG_UNITS_PER_METRE = 1000.0  # 16-bit PNG depth is in millimetres (the common Kinect/NYU convention)
EXR_DEPTH_CHANNELS = ("Y", "Z", "R", "depth", "Depth", "V")  # looked for in this order
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".webp", ".jpg", ".jpeg", ".bmp")
FORMATS_HINT = "Use an EXR, an NPY or a 16-bit PNG (millimetres)."


def read_depth(path, photo: PhotoShape | None = None, what: str = "depth map") -> np.ndarray:
    """HxW float32 metric z-depth; with ``photo``, at its size (``fit_to_photo``)."""
    path = input_path(path, what)
    suffix = path.suffix.lower()
    if suffix == ".exr":
        depth = _guarded(_read_exr, path, what)
    elif suffix == ".npy":
        depth = _guarded(_read_npy, path, what)
    elif suffix in IMAGE_SUFFIXES:
        depth = _read_depth_image(path, what)
    else:
        raise BadDepth(f"The {what} '{path}' has an unknown type '{suffix}'. {FORMATS_HINT}")
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise BadDepth(f"The {what} '{path}' must hold one number per pixel (HxW), not an array of shape "
                       f"{depth.shape} and type {depth.dtype}.")
    depth = depth.astype(np.float32)
    return depth if photo is None else fit_to_photo(depth, photo, what)


def _guarded(reader, path: Path, what: str) -> np.ndarray:
    try:
        return reader(path, what)
    except BadDepth:
        raise
    except Exception as error:  # noqa: BLE001 - OpenEXR and numpy raise plain errors on a broken file
        raise BadDepth(f"The {what} '{path}' could not be read ({type(error).__name__}: {error}). "
                       f"{FORMATS_HINT}") from None


def _read_npy(path: Path, what: str) -> np.ndarray:
    depth = np.load(path, allow_pickle=False)
    return depth[..., 0] if depth.ndim == 3 and depth.shape[-1] == 1 else depth


def _read_exr(path: Path, what: str) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True) as exr:
        channels = exr.channels()
        if len(channels) == 1:
            return np.array(next(iter(channels.values())).pixels)
        for name in EXR_DEPTH_CHANNELS:
            if name in channels:
                return np.array(channels[name].pixels)
    raise BadDepth(f"The EXR {what} '{path}' has no depth channel (looked for {', '.join(EXR_DEPTH_CHANNELS[:4])}; "
                   f"it has {', '.join(sorted(channels))}). Write the depth as one of those channels.")


def _read_depth_image(path: Path, what: str) -> np.ndarray:
    pixels, _top, orientation = decode(path, what, BadDepth)
    if pixels.dtype == np.uint8:
        raise BadDepth(f"The {what} '{path}' is an image of 8 bits per pixel, which cannot hold metric depth. "
                       f"{FORMATS_HINT}")
    if pixels.ndim != 2:
        raise BadDepth(f"The {what} '{path}' is a colour image; metric depth is one number per pixel. "
                       f"{FORMATS_HINT}")
    return to_display(pixels.astype(np.float64) / DEPTH_PNG_UNITS_PER_METRE, orientation)
