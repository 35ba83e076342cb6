"""Inpainting of the background an object leaves behind, for previews and scenes with no background image.

By default OpenCV's Telea inpainting: it costs time in proportion to the hole's area, so large photos are inpainted
at a reduced size (at most ``MAX_SIDE`` pixels on the long side) and only the hole is pasted back, upsampled; the
rest of the photo keeps its full resolution. With the param ``inpaint_model`` (a preset such as ``sd2-inpainting``,
a hub id or a folder) the ``scene`` and ``preview`` jobs complete it with that diffusers inpainting model instead
(``model_fill``; ``inpaint_prompt``, ``inpaint_steps``, ``inpaint_seed``, ``inpaint_resolution``, and
``device``/``dtype`` as for the diffusion jobs), as the ``inpaint`` job does.
"""

from __future__ import annotations

import numpy as np

MAX_SIDE = 1024
RADIUS_PX = 5


def colour_hole_dilation(height: int, width: int) -> int:
    """How far the colour hole extends beyond the object mask: masks rarely hold the object's antialiased edge
    and contact shadow, and any of it left at the hole's border is smeared inward by the inpainting. 6 pixels at
    512, scaled to the photo."""
    return max(2, round(6 * max(height, width) / 512))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` grown by ``pixels`` (a square structuring element)."""
    if pixels <= 0:
        return mask.astype(bool)
    import cv2

    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` (HxWx3 uint8) with the pixels of ``hole`` (HxW bool) filled from their surroundings."""
    import cv2

    hole = hole.astype(bool)
    if not hole.any():
        return image.copy()
    height, width = hole.shape
    scale = min(1.0, MAX_SIDE / max(height, width))
    if scale == 1.0:
        return cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8), RADIUS_PX, cv2.INPAINT_TELEA)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # any hole pixel in a small pixel's footprint makes it a hole pixel, plus one for the upsampling's blur
    small_hole = dilate(cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0, 1)
    filled = cv2.inpaint(small, small_hole.astype(np.uint8), RADIUS_PX, cv2.INPAINT_TELEA)
    up = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    out = image.copy()
    out[hole] = up[hole]
    return out


def fill_background(photo: np.ndarray, hole: np.ndarray, background: np.ndarray | None,
                    complete=None) -> np.ndarray:
    """The photo with ``hole`` replaced by the background image there; without one, completed by ``complete``
    (a function (photo, hole) -> image, e.g. ``model_fill``'s) or else by OpenCV inpainting."""
    if background is None:
        return inpaint(photo, hole) if complete is None else complete(photo, hole)
    out = photo.copy()
    out[hole] = background[hole]
    return out


def inpainter(ctx, model: str | None, device=None, dtype=None):
    """The diffusers inpainting model ``model`` (default ``sd2-inpainting``), kept warm in ``ctx.models``."""
    from ..errors import BadParams
    from ..models import load_inpainter, resolve
    from ._diffusion_job import _dtype

    try:
        name = resolve(model, "inpainting")[0]
    except ValueError as error:
        raise BadParams(f"Invalid inpainting model: {error}") from None
    return ctx.models.get_or_load(("inpainting", name, device, dtype),
                                  lambda: load_inpainter(model, device=device, dtype=_dtype(dtype)))


# The last diffusion completion: every preview of one photo completes the same hole, at seconds to minutes each.
_completion_cache: dict = {}


def model_fill(params, ctx):
    """A ``complete`` function for ``fill_background`` that uses the model of ``params.inpaint_model`` (an
    ``engine.params.BackgroundCompletion``), or None without one (OpenCV then). The model loads on the first call,
    and the last result is reused while the photo, hole and options stay the same."""
    model = params.inpaint_model
    if model is None:
        return None
    options = params.completion_options()
    device, dtype = params.device, params.dtype

    def complete(photo: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import hashlib

        if not hole.any():
            return photo.copy()
        digest = hashlib.sha1(np.ascontiguousarray(photo).tobytes())
        digest.update(np.packbits(hole).tobytes())
        key = (model, device, dtype, tuple(sorted(options.items())), photo.shape, digest.hexdigest())
        if key not in _completion_cache:
            filled = inpainter(ctx, model, device, dtype).complete(photo, hole, **options)
            _completion_cache.clear()
            _completion_cache[key] = filled
        return _completion_cache[key].copy()

    return complete


def save_png(path, image: np.ndarray) -> None:
    """Write an RGB uint8 image fast (low zlib level: previews are written often and read once)."""
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write '{path}'")


LOSSLESS_TEXTURE_MAX_SIDE = 2048


def save_texture(stem, image: np.ndarray, inputs: dict | None = None):
    """Write a mesh texture and return its path: a PNG up to ``LOSSLESS_TEXTURE_MAX_SIDE`` pixels, above that a
    quality-95 JPEG, because a 4K PNG alone takes about a second to encode and the texture is only for the
    viewport (previews are written losslessly, from the photo itself)."""
    from pathlib import Path

    import cv2

    from ..io.safe_write import write_atomic

    stem = Path(stem)
    if max(image.shape[:2]) <= LOSSLESS_TEXTURE_MAX_SIDE:
        return write_atomic(stem.with_suffix(".png"), lambda path: save_png(path, image), inputs)

    def save_jpeg(path):
        if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"could not write '{path}'")

    path = write_atomic(stem.with_suffix(".jpg"), save_jpeg, inputs)
    return path
