"""``segment``: a mask of the object named by a text prompt ("the chair"), for photos without a painted mask.

Params: ``SegmentParams`` (``engine/params/jobs.py``): ``photo``, ``prompt`` (the object's name), ``output``
(absolute path of the PNG to write, white = object; never an input; default a fresh ``mask.png`` in the job's
workdir), ``threshold``, ``model``, ``device``.
Result: ``{"mask": path, "coverage": fraction of pixels selected, "model"}``. An empty mask is an error that says
what to try.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EmptyMask
from ..io import safe_write
from ..params import SegmentParams as PARAMS
from . import existing_file

NAME = "segment"


def run(params, ctx) -> dict:
    import numpy as np
    from PIL import Image

    from ..io import read_photo
    from ..models import load_segmenter

    params = PARAMS.from_json(params)
    photo_path = existing_file(params.photo, "photo")
    prompt, threshold = params.prompt, params.threshold
    output = ctx.default_output("mask.png", "output") if params.output is None else Path(params.output)
    inputs = safe_write.inputs_of(params)
    safe_write.refuse_inputs(output, inputs)
    photo = read_photo(photo_path, "photo")
    model, device = params.model, params.device
    segmenter = ctx.models.get_or_load(("segmentation", model, device), lambda: load_segmenter(model, device=device))
    ctx.check_cancelled()
    ctx.progress("segment", 0, 1)
    mask = segmenter.mask(photo, prompt.strip(), float(threshold))
    if not mask.any():
        raise EmptyMask(f"Nothing in the photo matched \"{prompt}\". Try another word for the object, "
                       "a lower threshold, or paint the mask by hand.")
    safe_write.write_atomic(output, Image.fromarray(mask.astype(np.uint8) * 255).save, inputs)
    ctx.progress("segment", 1, 1)
    return {"mask": str(output), "coverage": float(mask.mean()), "model": segmenter.name}

