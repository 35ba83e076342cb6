"""``invert``: invert a photo and record its activations into the cache, before any edit is asked for, so that
"Render Edit" later costs only the guided pass.

Params: ``InvertParams`` (``engine/params/jobs.py``): ``photo``, ``depth``, ``mask`` (optional ``bg_depth``),
``camera`` or ``fov``, ``prompt``, and the common diffusion params (``DiffusionOptions``, see ``_diffusion_job``).
Result: ``{"cache": "hit"|"miss", "key", "seconds", "unet_evals", "report", "memory_fallbacks"}`` (``report``: path
of the JSON report, a fresh name in the job's workdir; null when the client gave no workdir).
"""

from __future__ import annotations

from ..io import safe_write
from ..params import InvertParams as PARAMS
from . import _diffusion_job as job

NAME = "invert"


def run(params, ctx) -> dict:
    from ..diffusion.report import write_report

    params = PARAMS.from_json(params)
    report_path = None if ctx.scratch else ctx.default_output("invert_report.json", "workdir")
    if report_path is not None:
        job.check_outputs(params, {"report": report_path})
    request = job.request(params)
    progress = job.progress(ctx, params)
    editor = job.editor(params, ctx)
    ctx.check_cancelled()
    with job.user_errors():
        report = editor.invert_only(request, progress=progress)
    path = None
    if report_path is not None:
        path = safe_write.write_atomic(report_path, lambda where: write_report(report, where),
                                       safe_write.inputs_of(params))
    return {"cache": report["cache"]["inversion"], "key": report["cache"]["key"], "seconds": report["seconds"],
            "unet_evals": report["unet_evals"], "report": None if path is None else str(path),
            "memory_fallbacks": report["memory_fallbacks"]}
