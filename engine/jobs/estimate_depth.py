"""``estimate_depth``: metric depth for a photo that has no depth file, with a monocular estimator.

Params: ``photo`` (path), ``output`` (``.exr`` or ``.npy`` to write; never one of the inputs), optional ``model``
(depth preset, hub id or folder; default ``depth-anything-metric-indoor``), ``device``.
Result: ``{"depth": path, "min", "max", "model", "width", "height"}`` (metres).
"""

from __future__ import annotations

from pathlib import Path

from . import JobError, require_file

NAME = "estimate_depth"


def run(params: dict, ctx) -> dict:
    import numpy as np

    from ..io import read_photo
    from ..models import load_depth_estimator
    from . import _photo_inputs

    photo_path = require_file(params, "photo", "photo")
    output = Path(params.get("output") or ctx.workdir / "depth.exr")
    if output.suffix.lower() not in (".exr", ".npy"):
        raise JobError("bad_params", f"The depth output '{output}' must end in .exr or .npy.")
    _photo_inputs.check_output_path(output, params)
    photo = read_photo(photo_path, "photo")
    ctx.progress("load_model", 0, 1)
    model = params.get("model")
    estimator = ctx.models.get_or_load(("depth", model, params.get("device")),
                                       lambda: load_depth_estimator(model, device=params.get("device")))
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
