"""``download_models``: make the models the settings need available locally, downloading what is missing.

Params: ``DownloadModelsParams`` (``engine/params/jobs.py``): ``models``, a list of ``{"kind":
"diffusion"|"inpainting"|"depth"|"segmentation", "model": <preset, hub id or folder; empty: the kind's default>}``;
``check_only``: report, download nothing.
Progress: stage ``download`` with ``step``/``total`` in bytes and the file in ``message``; cancel stops between
chunks (a partial file stays in the cache and resumes next time).
Result: ``{"models": [{"kind", "model", "status": "present"|"downloaded"|"missing", "from", "where", "bytes",
"tried"}]}``. A model no source has ends the job with ``missing_weights`` (unless ``check_only``), and with downloads
off (``HF_HUB_OFFLINE``, or Blender's online access off) before any request.
"""

from __future__ import annotations

from ..errors import MissingWeights
from ..params import DownloadModelsParams as PARAMS
from ..params.jobs import MODEL_KINDS as KINDS  # noqa: F401  (re-exported for the Blender side)

NAME = "download_models"
PROBE_FILES = {"diffusion": "unet/config.json", "inpainting": "model_index.json", "depth": "config.json",
               "segmentation": "config.json"}
WHAT = {"diffusion": "depth-conditioned diffusion model", "inpainting": "inpainting model",
        "depth": "depth estimator", "segmentation": "segmentation model"}


def status(kind: str, model: str | None) -> dict:
    """Where ``model`` is found locally, or that it is missing (no network asked)."""
    from ..models.errors import ModelMissingError
    from ..models.registry import resolve
    from ..models.sources import find, size_on_disk

    name = resolve(model, kind)[0]
    entry = {"kind": kind, "model": name}
    if _is_tiny(kind, model):
        return {**entry, "status": "present", "from": "built in (random weights)", "where": "", "bytes": 0}
    try:
        located = find(model, kind, WHAT[kind], PROBE_FILES[kind], ask_hub=False)
    except (ModelMissingError, ValueError) as error:
        return {**entry, "status": "missing", "from": "", "where": "", "bytes": 0,
                "tried": getattr(error, "tried", []), "message": str(error)}
    return {**entry, "status": "present", "from": located.kind, "where": located.where,
            "bytes": size_on_disk(located)}


def _is_tiny(kind: str, model: str | None) -> bool:
    from ..models.registry import resolve

    return resolve(model, kind)[1] in ("tiny", "tiny-zoedepth", "random")


def run(params, ctx) -> dict:
    from ..models.download import download
    from ..models.sources import hub_ids, looks_like_path

    params = PARAMS.from_json(params)
    check_only = params.check_only
    results = []
    for kind, model in ((entry.kind, entry.model or None) for entry in params.models):
        ctx.check_cancelled()
        entry = status(kind, model)
        if entry["status"] == "missing" and not check_only and looks_like_path(model or ""):
            raise MissingWeights(entry["message"])  # a folder or file the user gave: nothing to download
        if entry["status"] == "missing" and not check_only:
            ctx.progress("download", 0, None, message=f"looking for {entry['model']}")
            got = download(entry["model"], hub_ids(model, kind), WHAT[kind],
                           lambda done, total, text: ctx.progress("download", done, total, message=text),
                           ctx.check_cancelled)
            entry = {**status(kind, model), "status": "downloaded", "bytes": got["bytes"], "from": "hub",
                     "where": got["source"], "tried": got["tried"]}
        results.append(entry)
    return {"models": results}
