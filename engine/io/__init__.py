"""The one reader of the engine's input files: photos, object masks and metric depth maps.

Every door (the CLI commands, the jobs, the diffusion inputs, the geometry's sample folders, and through the jobs
the Blender side) reads through here, so a file means the same everywhere:

- photos: PNG (8/16-bit), JPEG, TIFF, WebP, BMP, returned as displayed (EXIF orientation applied);
- masks: white on black, or the alpha of a cut-out (``mask_rule``); images or NPY;
- depth: EXR (``Y``, ``Z``, ``R`` or ``depth`` channel), NPY, 16-bit PNG/TIFF in millimetres;
- one size rule (``fit``): a mask or depth at the displayed photo's size, or at its stored size for a photo turned
  a quarter by its EXIF orientation; anything else is ``SizeMismatch``;
- a missing file is ``InputNotFound``; a NUL in a path or a decompression bomb is ``BadInput``; an unreadable file
  ``BadImage``/``BadMask``/``BadDepth``.

Writing is ``safe_write`` (imported as ``engine.io.safe_write``): every output through a temporary file and a
rename, never over an input.

numpy at import; PIL, OpenCV and OpenEXR only inside the functions that read (``mask_rule`` and ``orientation``
are numpy only, for Blender's Python). ``docs/io.md`` has the details.
"""

from __future__ import annotations

from .depth import DEPTH_PNG_UNITS_PER_METRE, read_depth
from .exif import exif_camera_numbers
from .fit import fit_to_photo, shape_of
from .images import PhotoShape, photo_shape, read_photo
from .mask_rule import mask_from_pixels
from .masks import read_mask
from .orientation import to_display
from .paths import input_path

__all__ = ["DEPTH_PNG_UNITS_PER_METRE", "PhotoShape", "exif_camera_numbers", "fit_to_photo", "input_path",
           "mask_from_pixels", "photo_shape", "read_depth", "read_mask", "read_photo", "shape_of", "to_display"]
