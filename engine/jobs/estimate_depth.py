"""``estimate_depth``: metric depth for a photo that has no depth file, with a monocular estimator.

Params: ``EstimateDepthParams`` (``engine/params/jobs.py``): ``photo``, ``output`` (``.exr`` or ``.npy`` to write;
never one of the inputs), ``model`` (depth preset, hub id or folder), ``device``.
Result: ``{"depth": path, "min", "max", "model", "width", "height"}`` (metres).
"""

from __future__ import annotations

from pathlib import Path

from ..params import EstimateDepthParams as PARAMS
from . import existing_file

NAME = "estimate_depth"


def run(params, ctx) -> dict:
    import numpy as np

    from ..io import read_photo
    from ..models import load_depth_estimator
    from . import _photo_inputs

    params = PARAMS.from_json(params)
    photo_path = existing_file(params.photo, "photo")
    output = Path(params.output or ctx.workdir / "depth.exr")
    _photo_inputs.check_output_path(output, {"photo": params.photo})
    photo = read_photo(photo_path, "photo")
    ctx.progress("load_model", 0, 1)
    model, device = params.model, params.device
    estimator = ctx.models.get_or_load(("depth", model, device), lambda: load_depth_estimator(model, device=device))
    ctx.check_cancelled()
    ctx.progress("estimate_depth", 0, 1)
    depth = estimator.estimate(photo)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".npy":
        np.save(output, depth)
    else:
        from ..geometry import write_depth_exr

        write_depth_exr(output, depth)
    ctx.progress("estimate_depth", 1, 1)
    return {"depth": str(output), "min": float(depth.min()), "max": float(depth.max()), "model": estimator.name,
            "width": int(depth.shape[1]), "height": int(depth.shape[0])}
