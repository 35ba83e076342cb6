"""``edit``: the Diffusion Handles edit ("Render Edit"): the photo with the object moved in 3D, re-rendered by the
depth-conditioned diffusion model so that it keeps its identity and the background stays.

Params: ``EditParams`` (``engine/params/jobs.py``, tables in ``docs/protocol.md``): the photo's files and frames as
for ``preview`` (``camera`` intrinsics, else ``fov``; ``transform`` + ``output``, or ``transforms`` + ``outputs`` for
animation frames, which share one inversion; optional ``masks`` of further objects, with one 4x4 per object in each
transform), ``prompt`` and the common diffusion params (``DiffusionOptions``: ``model``, ``settings``,
``cache_dir``, ``use_cache``, ``device``, ``dtype``, ``lora``...), and optional ``perspective`` (vanishing points of
the photo's view: the vanishing-point guidance term and the report's ``perspective`` figures, see
``engine/perspective/edit_job.py``).
Each output PNG gets its JSON report beside it (same name, ``.json``), whose ``inputs`` section names what it was
made from (files and their digests, prompt, transform, camera, settings, model; see ``_edit_inputs``).
Outputs and their reports are checked against the photo's files and each other before any work. Progress carries
a thumbnail of the current estimate every ``thumbnail_every`` steps (default 10) and of each finished frame.
The common ``lora`` param (a perspective LoRA, see ``_diffusion_job``) is recorded in each report's ``lora``.
Result: ``{"frames": [{"image", "report", "cache", "seconds", "unet_evals", "losses", "memory_fallbacks"}]}``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BadParams
from ..io import safe_write
from ..params import EditParams as PARAMS
from . import _diffusion_job as job
from . import _edit_inputs

NAME = "edit"


def _frames(params):
    from .preview import _frames as preview_frames

    frames = preview_frames(params, params.object_count())  # .png outputs: checked by EditParams
    outputs = {}
    for index, (_, output) in enumerate(frames):
        outputs[f"output {index}"] = output
        outputs[f"report of output {index}"] = output.with_suffix(".json")
    job.check_outputs(params, outputs)  # images and reports: never over an input, nor over each other
    return frames


def run(params, ctx) -> dict:
    from PIL import Image

    from ..diffusion.report import write_report
    from ..perspective import edit_job as perspective
    from ..perspective import edit_lora

    params = PARAMS.from_json(params)
    frames = _frames(params)
    request = job.request(params)
    # the perspective functions take the wire form of the parameter
    vps = {"perspective": params.perspective.to_json()} if params.perspective is not None else {}
    try:
        terms = perspective.guidance_terms(vps, photo=request.image)
    except ValueError as error:
        raise BadParams(f"Invalid perspective parameters: {error}") from None
    progress = job.progress(ctx, params)
    editor = job.editor(params, ctx)
    wire, protected, digests = params.to_json(), safe_write.inputs_of(params), {}
    results = []
    for index, (transform, output) in enumerate(frames):
        ctx.check_cancelled()
        with job.user_errors():
            from dataclasses import replace

            result = editor.edit(replace(request, transform=transform, name=Path(output).stem), progress=progress,
                                 extra_terms=terms)
        figures = perspective.report_figures(vps, result.image, photo=request.image, terms=terms)
        if figures is not None:
            result.report["perspective"] = figures
        result.report["lora"] = edit_lora.report_entry(editor.models)
        result.report["inputs"] = _edit_inputs.inputs_section(wire, transform, output, digests)
        safe_write.write_atomic(output, Image.fromarray(result.image).save, protected)
        report_path = safe_write.write_atomic(output.with_suffix(".json"),
                                              lambda path, report=result.report: write_report(report, path),
                                              protected)
        ctx.progress("frame", index + 1, len(frames), thumbnail=result.working_image)
        results.append({"image": str(output), "report": str(report_path),
                        "cache": result.report["cache"]["inversion"], "seconds": result.report["seconds"],
                        "unet_evals": result.report["unet_evals"], "losses": result.report["losses"],
                        "memory_fallbacks": result.report["memory_fallbacks"]})
    return {"frames": results}
