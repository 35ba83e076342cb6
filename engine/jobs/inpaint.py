"""``inpaint``: complete a photo where a mask is, with a diffusers inpainting model (Stable Diffusion 2 inpainting
by default), e.g. the background behind an object. The rest of the photo keeps its pixels.

Params: ``photo`` and ``mask`` (paths; the mask white where to complete, as an image or an NPY, the photo's size),
``output`` (a PNG path to write; never one of the inputs), optional ``prompt`` (what the completed region shows,
default ""), ``model`` (an inpainting preset such as ``sd2-inpainting`` or ``tiny-inpainting``, a hub id or a
folder), ``steps`` (default 30), ``seed`` (default 0), ``resolution`` (working size of the longer side, default
512), ``dilate`` (pixels the hole extends beyond the mask, default 0), ``device``, ``dtype``.
Result: ``{"image", "hole_pixels", "model", "seconds"}``.
"""

from __future__ import annotations

import time

from .. import io
from ..io import safe_write
from . import JobError, _inpaint, _params, require_file

NAME = "inpaint"


def run(params: dict, ctx) -> dict:
    output = params.get("output")
    if not isinstance(output, str) or not output.lower().endswith(".png"):
        raise JobError("bad_params", "'output' must be the path of a .png file to write.")
    output = safe_write.require_absolute(output, "output")
    inputs = safe_write.inputs_of(params)
    safe_write.refuse_inputs(output, inputs)
    options = _inpaint.completion_options(params)
    dilate = _params.whole_number(params, "dilate", 0, 0, 256)
    photo_path = require_file(params, "photo", "photo")
    photo = io.read_photo(photo_path, "photo")
    mask = io.read_mask(require_file(params, "mask", "mask"), io.photo_shape(photo_path), "mask")
    hole = _inpaint.dilate(mask, dilate)
    if not hole.any():
        raise JobError("empty_mask", "The mask selects no pixels, so there is nothing to complete. Paint the region "
                       "to complete white and try again.")
    ctx.progress("load", 1, 2)
    model = _inpaint.inpainter(ctx, params.get("model"), params.get("device"), params.get("dtype"))
    ctx.check_cancelled()
    ctx.progress("inpaint", 2, 2)
    start = time.perf_counter()
    image = model.complete(photo, hole, **options)
    seconds = time.perf_counter() - start
    safe_write.write_atomic(output, lambda path: _inpaint.save_png(path, image), inputs)
    return {"image": str(output), "hole_pixels": int(hole.sum()), "model": model.name, "seconds": round(seconds, 3)}
