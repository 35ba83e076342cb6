"""``segment``: a mask of the object named by a text prompt ("the chair"), for photos without a painted mask.

Params: ``photo``, ``prompt`` (the object's name), ``output`` (absolute path of the PNG to write, white = object;
never an input; default a fresh ``mask.png`` in the job's workdir),
optional ``threshold`` (probability, default 0.4), ``model`` (default ``clipseg``), ``device``.
Result: ``{"mask": path, "coverage": fraction of pixels selected, "model"}``. An empty mask is an error that says
what to try.
"""

from __future__ import annotations

from pathlib import Path

from ..io import safe_write
from . import JobError, require_file

NAME = "segment"


def run(params: dict, ctx) -> dict:
    import numpy as np
    from PIL import Image

    from ..io import read_photo
    from ..models import load_segmenter

    photo_path = require_file(params, "photo", "photo")
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise JobError("bad_params", "Give the object's name as 'prompt' (for example \"the chair\").")
    threshold = params.get("threshold", 0.4)
    if not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < 1.0:
        raise JobError("bad_params", f"'threshold' must be a probability between 0 and 1, not {threshold!r}.")
    output = _output(params, ctx)
    inputs = safe_write.inputs_of(params)
    safe_write.refuse_inputs(output, inputs)
    photo = read_photo(photo_path, "photo")
    model = params.get("model")
    segmenter = ctx.models.get_or_load(("segmentation", model, params.get("device")),
                                       lambda: load_segmenter(model, device=params.get("device")))
    ctx.check_cancelled()
    ctx.progress("segment", 0, 1)
    mask = segmenter.mask(photo, prompt.strip(), float(threshold))
    if not mask.any():
        raise JobError("empty_mask", f"Nothing in the photo matched \"{prompt}\". Try another word for the object, "
                       "a lower threshold, or paint the mask by hand.")
    safe_write.write_atomic(output, Image.fromarray(mask.astype(np.uint8) * 255).save, inputs)
    ctx.progress("segment", 1, 1)
    return {"mask": str(output), "coverage": float(mask.mean()), "model": segmenter.name}


def _output(params: dict, ctx) -> Path:
    """The mask to write: ``output`` (absolute, .png), else a fresh ``mask.png`` in the client's workdir."""
    if params.get("output") is None:
        return ctx.default_output("mask.png", "output")
    output = safe_write.require_absolute(params["output"], "output")
    if output.suffix.lower() != ".png":
        raise JobError("bad_params", f"The mask output '{output}' must be a .png file.")
    return output
