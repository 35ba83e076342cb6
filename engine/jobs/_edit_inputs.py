"""The ``inputs`` section of an edit's report: what the image was made from, so that any output can be traced back
and re-run alone. Paths (absolute) and SHA-256 digests of the photo, mask, depth (and background files), the prompt,
the further objects' masks (``masks``, as ``files.masks``), the transform (4x4, engine frame; one per object with
several), the camera, the settings and the model as the job asked for them, and
``job_digest``: one digest of all of it, which ``python -m engine batch`` compares to skip work already done.

Standard library only (numpy-free), so the batch runner can compute the same digest before running a job.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..diffusion.settings import digest

FILE_KEYS = ("photo", "mask", "depth", "bg", "bg_depth")
# the job params that change the image; the rest (output paths, thumbnails, cache use) do not
_PARAM_KEYS = ("prompt", "camera", "fov", "model", "settings", "dtype", "perspective", "lora")


def file_sha256(path) -> str | None:
    """The file's SHA-256 in hex, or None when it cannot be read (the job then fails on its own)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (OSError, TypeError, ValueError):
        return None
    return digest.hexdigest()


def _file_entry(path: str, digests: dict | None) -> dict:
    """``{"path", "sha256"}``; ``digests`` ({resolved path: digest}) keeps what one job or run already read, so the
    photo every frame names is read once."""
    resolved = str(Path(path).resolve())
    if digests is None:
        return {"path": resolved, "sha256": file_sha256(path)}
    if resolved not in digests:
        digests[resolved] = file_sha256(path)
    return {"path": resolved, "sha256": digests[resolved]}


def _numbers(value):
    """A matrix (nested lists or an array with ``tolist``) as nested lists of floats."""
    value = value.tolist() if hasattr(value, "tolist") else value
    return [_numbers(item) for item in value] if isinstance(value, (list, tuple)) else float(value)


def inputs_section(params: dict, transform, output, digests: dict | None = None) -> dict:
    """The report's ``inputs`` for one frame of an edit job: ``transform`` (4x4, or one 4x4 per object with
    ``masks``), ``output`` its image; ``digests``: a dict the caller keeps across the frames of a job (or the jobs
    of a run) so each input file is hashed once."""
    files = {}
    for key in FILE_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value:
            files[key] = _file_entry(value, digests)
    if params.get("masks"):  # further objects: only then, so a one-object digest stays as it was
        files["masks"] = [_file_entry(path, digests) for path in params["masks"]]
    section = {"files": files, "transform": _numbers(transform)}
    section.update({key: params[key] for key in _PARAM_KEYS if key in params})
    section.setdefault("prompt", "")
    section["job_digest"] = job_digest(section)
    section["output"] = str(Path(output).resolve())
    return section


def job_digest(section: dict) -> str:
    """SHA-256 of the section's canonical JSON without its own digest and output: equal digests, same image."""
    return digest({key: value for key, value in section.items() if key not in ("job_digest", "output")})
