"""Read and validate the files of one imported photo (photo, depth, mask, background, background depth).

Shared by the ``scene`` and ``preview`` jobs, so an import and every later preview see the same arrays and refuse
bad files with the same messages. Every failure is a ``JobError`` whose message says which file is wrong and what
to do. numpy, PIL and OpenEXR only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import (
    BadDepth,
    BadImage,
    BadMask,
    BadParams,
    EmptyMask,
    FullMask,
    OutputIsInput,
    SizeMismatch,
)
from . import JobError, existing_file

DEFAULT_FOV_DEG = 55.0
DEPTH_PNG_UNITS_PER_METRE = 1000.0  # 16-bit PNG depth is stored in millimetres (the common Kinect/NYU convention)
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 37386          # mm, a rational
_FOCAL_35MM = 41989            # FocalLengthIn35mmFilm
_PIXEL_X_DIMENSION = 40962     # the image the camera wrote, in pixels
_PIXEL_Y_DIMENSION = 40963
_FOCAL_PLANE_X_RES = 41486     # sensor pixels per FocalPlaneResolutionUnit
_FOCAL_PLANE_Y_RES = 41487
_FOCAL_PLANE_UNIT = 41488
_RESOLUTION_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch, centimetre; mm and um as some cameras write


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
    ``engine.params.PhotoFiles``, e.g. a job's parameters)."""
    photo = read_rgb(existing_file(files.photo, "photo"), "photo")
    height, width = photo.shape[:2]
    depth = read_depth(existing_file(files.depth, "depth map"))
    check_size(depth, (height, width), "depth map")
    check_depth(depth, "depth map")
    mask = read_mask(existing_file(files.mask, "mask"))
    check_size(mask, (height, width), "mask")
    if not mask.any():
        raise EmptyMask("The mask selects no pixels. Paint the object white (or load a mask where the "
                       "object is white on black) and import again.")
    if mask.all():
        raise FullMask("The mask covers the whole photo, so there is no background. Paint only the "
                       "object white and import again.")
    background = background_depth = None
    bg_path = optional_path(files.bg, "background image")
    if bg_path is not None:
        background = read_rgb(bg_path, "background image")
        check_size(background, (height, width), "background image")
    bg_depth_path = optional_path(files.bg_depth, "background depth map")
    if bg_depth_path is not None:
        background_depth = read_depth(bg_depth_path)
        check_size(background_depth, (height, width), "background depth map")
        check_depth(background_depth, "background depth map")
    return PhotoInputs(photo, depth, mask, background, background_depth)


def _cv2_read(path: Path):
    """The image as OpenCV decodes it (about twice as fast as PIL for large PNGs), or None if it cannot."""
    import cv2

    try:
        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def _to_rgb8(array: np.ndarray) -> np.ndarray:
    """An OpenCV image (grey, BGR or BGRA; 8 or 16 bits) as HxWx3 uint8 RGB."""
    if array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., 2::-1])


def read_rgb(path: Path, what: str) -> np.ndarray:
    array = _cv2_read(path)
    if array is not None and array.dtype in (np.uint8, np.uint16) and array.ndim in (2, 3):
        return _to_rgb8(array)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit or float greyscale: scale to 8 bits
                values = np.asarray(image, dtype=np.float64)
                top = values.max() or 1.0
                grey = (values / top * 255.0 + 0.5).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as error:
        raise BadImage(f"The {what} '{path}' is not an image the engine can read ({error}). "
                       "Use a PNG, JPEG or TIFF file.") from None


def read_depth(path: Path) -> np.ndarray:
    """Metric z-depth from an EXR (first of Y, Z, R, depth, or the only channel), an NPY, or a 16-bit PNG in mm."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".exr":
            depth = _read_exr(path)
        elif suffix == ".npy":
            depth = np.load(path, allow_pickle=False)
            if depth.ndim == 3 and depth.shape[-1] == 1:
                depth = depth[..., 0]
        elif suffix in (".png", ".tif", ".tiff"):
            depth = _read_depth_image(path)
        else:
            raise BadDepth(f"The depth map '{path}' has an unknown type '{suffix}'. Use an EXR, an NPY "
                           "or a 16-bit PNG (millimetres).")
    except JobError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise BadDepth(f"The depth map '{path}' could not be read ({type(error).__name__}: {error}). "
                       "Use an EXR, an NPY or a 16-bit PNG (millimetres).") from None
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise BadDepth(f"The depth map '{path}' must hold one number per pixel (HxW), not an array "
                       f"of shape {depth.shape} and type {depth.dtype}.")
    return depth.astype(np.float32)


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path)) as exr:
        channels = exr.channels()
        if len(channels) == 1:
            return next(iter(channels.values())).pixels
        for name in ("Y", "Z", "R", "depth", "Depth", "V"):
            if name in channels:
                return channels[name].pixels
        for name, channel in channels.items():
            if channel.pixels.ndim == 3:  # interleaved RGB(A): the first component
                return channel.pixels[..., 0]
    raise BadDepth(f"The EXR '{path}' has no depth channel (looked for Y, Z, R, depth; it has "
                   f"{', '.join(channels)}).")


def _read_depth_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode not in ("I;16", "I;16B", "I;16L", "I", "F"):
            raise BadDepth(f"The depth image '{path}' is {image.mode} (8 bits per pixel), which cannot "
                           "hold metric depth. Use a 16-bit PNG in millimetres, an EXR or an NPY.")
        values = np.asarray(image, dtype=np.float64)
    return values / DEPTH_PNG_UNITS_PER_METRE


def read_mask(path: Path) -> np.ndarray:
    """A mask from an image (white = object; the alpha channel when the colour is uniform) or an NPY."""
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except Exception as error:  # noqa: BLE001
            raise BadMask(f"The mask '{path}' could not be read ({error}).") from None
        if values.ndim == 3:
            values = values[..., 0]
        if values.ndim != 2:
            raise BadMask(f"The mask '{path}' must be HxW, not {values.shape}.")
        return values.astype(np.float64) > 0.5 if values.dtype != bool else values
    array = _cv2_read(path)
    if array is not None and array.dtype in (np.uint8, np.uint16) and array.ndim in (2, 3):
        half = 127 if array.dtype == np.uint8 else 32767
        if array.ndim == 2:
            return array > half
        if array.shape[2] == 4:
            colour, alpha = array[..., :3].max(axis=2), array[..., 3]
            if colour.min() == colour.max():  # a cut-out: the alpha channel is the mask
                return alpha > half
            return (colour > half) & (alpha > half)
        return array.max(axis=2) > half
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = np.asarray(image.convert("RGBA"))
                colour = rgba[..., :3].max(axis=2)
                if colour.min() == colour.max():  # a cut-out: the alpha channel is the mask
                    return rgba[..., 3] > 127
                return (colour > 127) & (rgba[..., 3] > 127)
            if image.mode in ("I;16", "I;16B", "I", "F"):
                values = np.asarray(image, dtype=np.float64)
                return values > values.max() / 2 if values.max() > 0 else values > 0
            return np.asarray(image.convert("L")) > 127
    except (UnidentifiedImageError, OSError) as error:
        raise BadMask(f"The mask '{path}' is not an image that can be read ({error}). Use a PNG with "
                       "the object white on black.") from None


def check_size(array: np.ndarray, shape: tuple[int, int], what: str) -> None:
    if tuple(array.shape[:2]) != tuple(shape):
        h, w = array.shape[:2]
        raise SizeMismatch(f"The {what} is {w}x{h} pixels but the photo is {shape[1]}x{shape[0]}. "
                       f"Use a {what} made for this photo, at its size.")


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


def _exif_tags(path: Path) -> dict:
    """The photo's EXIF tags (the Exif sub-IFD merged over IFD0), or {} when it has none or they cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:  # opening reads the headers only; the pixels are not decoded
            if image.format == "PNG" and "exif" not in image.info:
                return {}  # an eXIf chunk after the pixels is rare, and finding it means decoding them all
            exif = image.getexif()
            return {**dict(exif), **dict(exif.get_ifd(_EXIF_IFD))}
    except Exception:  # noqa: BLE001 - no or broken EXIF: the caller falls back to the default
        return {}


def _positive(tags: dict, tag: int) -> float | None:
    try:
        value = float(tags[tag])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


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
    tags = _exif_tags(path)
    if not tags:
        return None, "default", "the default: the photo has no EXIF data"
    focal_35 = _positive(tags, _FOCAL_35MM)
    if focal_35 is not None:
        side_mm = FULL_FRAME_DIAGONAL_MM * max(width, height) / math.hypot(width, height)
        return _fov_across(side_mm, focal_35), "exif_35mm", \
            f"from the EXIF 35 mm equivalent focal length, {focal_35:g} mm"
    focal = _positive(tags, _FOCAL_LENGTH)
    if focal is None:
        return None, "default", "the default: the photo's EXIF has no focal length"
    across = width >= height
    resolution = _positive(tags, _FOCAL_PLANE_X_RES if across else _FOCAL_PLANE_Y_RES)
    unit_mm = _RESOLUTION_UNIT_MM.get(tags.get(_FOCAL_PLANE_UNIT, 2))  # the EXIF default unit is the inch
    if resolution is None or unit_mm is None:
        return None, "default", (f"the default: the photo's EXIF has a focal length ({focal:g} mm) but no focal "
                                 "plane resolution, so the sensor size is unknown")
    original_w, original_h = _positive(tags, _PIXEL_X_DIMENSION), _positive(tags, _PIXEL_Y_DIMENSION)
    if original_w is None or original_h is None or abs(original_w * height - original_h * width) > \
            0.01 * original_w * height:
        original_w, original_h = width, height  # no or cropped dimensions: assume the photo as the camera wrote it
    side_mm = (original_w if across else original_h) / resolution * unit_mm
    return _fov_across(side_mm, focal), "exif_focal_plane", \
        f"from the EXIF focal length, {focal:g} mm, on a {side_mm:.2f} mm wide sensor (focal plane resolution)"


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


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output_path(output: Path, inputs: dict) -> None:
    """Refuse to write over any of the user's input files (``inputs``: {parameter name: path}, e.g.
    ``PhotoFiles.input_files()``)."""
    for key in ("photo", "depth", "mask", "bg", "bg_depth"):
        value = inputs.get(key)
        if value and same_file(output, Path(value)):
            raise OutputIsInput( f"The output '{output}' is the {key} file of this photo; previews never "
                           "overwrite inputs. Choose another output path.")
