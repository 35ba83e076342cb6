"""One manifest entry -> the params of the engine's ``edit`` job, with the batch's defaults filled in.

An entry is a job in the engine's own format, ``{"name": "edit", "params": {...}}`` (as a ``submit`` message
carries it, ``id`` optional), or the params object alone. The command's options (``--model``, ``--device``,
``--dtype``, ``--steps``, ``--resolution``, ``--inversion``, ``--set``, ``--cache-dir``, ``--no-cache``) are
defaults: a job's own value wins, and its ``settings`` are laid over the defaults' settings key by key.
Relative input paths are relative to the manifest's folder, relative outputs to the batch's output folder; a job
without ``output``/``outputs`` writes ``OUT/<id>.png``. The result is checked by the job's own typed parameters
(``engine/params``: ``EditParams``), so a bad field stops the batch before any work, naming the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadParams

INPUT_KEYS = ("photo", "mask", "depth", "bg", "bg_depth")


@dataclass
class JobDefaults:
    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    settings: dict = field(default_factory=dict)
    cache_dir: str | None = None
    use_cache: bool | None = None


def split_entry(entry, where: str) -> tuple[str | None, dict]:
    """(the entry's ``id`` or None, its params) from a job object or a bare params object."""
    if not isinstance(entry, dict):
        raise BadParams(f"{where}: a job must be a JSON object, not {type(entry).__name__}.")
    if "params" in entry:
        name = entry.get("name", "edit")
        if name != "edit":
            raise BadParams(f"{where}: the batch runs 'edit' jobs only, not {name!r}.")
        if not isinstance(entry["params"], dict):
            raise BadParams(f"{where}: 'params' must be a JSON object.")
        return entry.get("id"), dict(entry["params"])
    params = dict(entry)
    return params.pop("id", None), params


def edit_params(params: dict, defaults: JobDefaults, job_id: str, base: Path, out_dir: Path, where: str) -> dict:
    """The full ``edit`` params of one job (absolute paths, defaults applied); BadParams names the field."""
    params = dict(params)
    for key in INPUT_KEYS:
        if isinstance(params.get(key), str) and params[key]:
            params[key] = str((base / params[key]).resolve())
    for key in ("model", "device", "dtype", "cache_dir", "use_cache"):
        if params.get(key) is None and getattr(defaults, key) is not None:
            params[key] = getattr(defaults, key)
    settings = params.get("settings") or {}
    if not isinstance(settings, dict):
        raise BadParams(f"{where}: 'settings' must be an object of edit settings, e.g. {{\"num_steps\": 20}}.")
    params["settings"] = {**defaults.settings, **settings}
    params.setdefault("thumbnail_every", 0)  # nobody watches a batch's thumbnails; each costs a VAE decode
    if "transforms" in params:
        outputs = params.get("outputs")
        if not isinstance(outputs, list):
            count = len(params["transforms"]) if isinstance(params["transforms"], list) else 0
            outputs = [f"{job_id}_{index:04d}.png" for index in range(count)]
        params["outputs"] = [_output(out_dir, value, where) for value in outputs]
    else:
        params["output"] = _output(out_dir, params.get("output") or f"{job_id}.png", where)
    return checked(params, where)


def checked(params: dict, where: str = "") -> dict:
    """``params`` checked as the ``edit`` job checks them (``EditParams``: ``BadParams`` naming the field, before
    any job runs) and in their canonical JSON form, the one the job's report digests."""
    from ..params import EditParams

    try:
        return EditParams.from_json(params).to_json()
    except BadParams as error:
        raise BadParams(f"{where}: {error.message}" if where else error.message) from None


def _output(out_dir: Path, value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadParams(f"{where}: an output must be the path of a PNG file.")
    return str((out_dir / value).resolve())
