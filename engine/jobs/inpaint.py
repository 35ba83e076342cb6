"""``inpaint``: complete a photo where a mask is, with a diffusers inpainting model (Stable Diffusion 2 inpainting
by default), e.g. the background behind an object. The rest of the photo keeps its pixels.

Params: ``InpaintParams`` (``engine/params/jobs.py``): ``photo`` and ``mask`` (the mask white where to complete,
the photo's size), ``output`` (a PNG to write; never one of the inputs), ``prompt``, ``model`` (an inpainting
preset such as ``sd2-inpainting`` or ``tiny-inpainting``, a hub id or a folder), ``steps``, ``seed``,
``resolution``, ``dilate``, ``device``, ``dtype``.
Result: ``{"image", "hole_pixels", "model", "seconds"}``.
"""

from __future__ import annotations

import time
from pathlib import Path

from .. import io
from ..errors import EmptyMask
from ..io import safe_write
from ..params import InpaintParams as PARAMS
from . import _inpaint, existing_file

NAME = "inpaint"


def run(params, ctx) -> dict:
    params = PARAMS.from_json(params)
    output = Path(params.output)
    inputs = safe_write.inputs_of(params)
    safe_write.refuse_inputs(output, inputs)
    options = params.completion_options()
    photo_path = existing_file(params.photo, "photo")
    photo = io.read_photo(photo_path, "photo")
    mask = io.read_mask(existing_file(params.mask, "mask"), io.photo_shape(photo_path), "mask")
    hole = _inpaint.dilate(mask, params.dilate)
    if not hole.any():
        raise EmptyMask("The mask selects no pixels, so there is nothing to complete. Paint the region "
                       "to complete white and try again.")
    ctx.progress("load", 1, 2)
    model = _inpaint.inpainter(ctx, params.model, params.device, params.dtype)
    ctx.check_cancelled()
    ctx.progress("inpaint", 2, 2)
    start = time.perf_counter()
    image = model.complete(photo, hole, **options)
    seconds = time.perf_counter() - start
    safe_write.write_atomic(output, lambda path: _inpaint.save_png(path, image), inputs)
    return {"image": str(output), "hole_pixels": int(hole.sum()), "model": model.name, "seconds": round(seconds, 3)}
