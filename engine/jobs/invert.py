"""``invert``: invert a photo and record its activations into the cache, before any edit is asked for, so that
"Render Edit" later costs only the guided pass.

Params: ``InvertParams`` (``engine/params/jobs.py``): ``photo``, ``depth``, ``mask`` (optional ``bg_depth``),
``camera`` or ``fov``, ``prompt``, and the common diffusion params (``DiffusionOptions``, see ``_diffusion_job``).
Result: ``{"cache": "hit"|"miss", "key", "seconds", "unet_evals", "report", "memory_fallbacks"}`` (``report``: path
of the JSON report, never one of the photo's files).
"""

from __future__ import annotations

from ..params import InvertParams as PARAMS
from . import _diffusion_job as job

NAME = "invert"


def run(params, ctx) -> dict:
    from ..diffusion.report import write_report

    params = PARAMS.from_json(params)
    report_path = ctx.workdir / "invert_report.json"
    job.check_outputs(params, {"report": report_path})
    request = job.request(params)
    progress = job.progress(ctx, params)
    editor = job.editor(params, ctx)
    ctx.check_cancelled()
    with job.user_errors():
        report = editor.invert_only(request, progress=progress)
    path = write_report(report, report_path)
    return {"cache": report["cache"]["inversion"], "key": report["cache"]["key"], "seconds": report["seconds"],
            "unet_evals": report["unet_evals"], "report": str(path), "memory_fallbacks": report["memory_fallbacks"]}
