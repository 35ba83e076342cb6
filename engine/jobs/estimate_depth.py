"""``estimate_depth``: metric depth for a photo that has no depth file, with a monocular estimator.

Params: ``EstimateDepthParams`` (``engine/params/jobs.py``): ``photo``, ``output`` (absolute path of the ``.exr`` or
``.npy`` to write; never one of the inputs; default a fresh ``depth.exr`` in the job's workdir), ``model`` (depth
preset, hub id or folder), ``device``.
Result: ``{"depth": path, "min", "max", "model", "width", "height"}`` (metres).
"""

from __future__ import annotations

from pathlib import Path

from ..io import safe_write
from ..params import EstimateDepthParams as PARAMS
from . import existing_file

NAME = "estimate_depth"


def run(params, ctx) -> dict:
    import numpy as np

    from ..io import read_photo
    from ..models import load_depth_estimator

    params = PARAMS.from_json(params)
    photo_path = existing_file(params.photo, "photo")
    output = ctx.default_output("depth.exr", "output") if params.output is None else Path(params.output)
    inputs = safe_write.inputs_of(params)
    safe_write.refuse_inputs(output, inputs)
    photo = read_photo(photo_path, "photo")
    ctx.progress("load_model", 0, 1)
    model, device = params.model, params.device
    estimator = ctx.models.get_or_load(("depth", model, device), lambda: load_depth_estimator(model, device=device))
    ctx.check_cancelled()
    ctx.progress("estimate_depth", 0, 1)
    depth = estimator.estimate(photo)
    if output.suffix.lower() == ".npy":
        safe_write.write_atomic(output, lambda path: np.save(path, depth), inputs)
    else:
        from ..geometry import write_depth_exr

        safe_write.write_atomic(output, lambda path: write_depth_exr(path, depth), inputs)
    ctx.progress("estimate_depth", 1, 1)
    return {"depth": str(output), "min": float(depth.min()), "max": float(depth.max()), "model": estimator.name,
            "width": int(depth.shape[1]), "height": int(depth.shape[0])}
