"""What the diffusion jobs (``invert``, ``edit``, ``estimate_depth``, ``segment``) share: models kept warm in the
engine's model cache, edit settings from params, progress that honours cancel, and errors as ``JobError``.

Common params: ``model`` (diffusion preset/hub id/folder, default ``sd2-depth``), ``device`` (default: best),
``dtype`` (fp32/fp16/bf16), ``settings`` (object of ``EditSettings`` overrides, e.g. ``{"inversion": "ddim"}``),
``cache_dir`` (inversion cache folder; default ``$DHANDLES_CACHE_DIR`` or ``~/.cache/diffusion-handles``),
``use_cache`` (default true), ``prompt`` (caption of the whole photo), ``thumbnail_every`` (send a preview
thumbnail of the current estimate with every N-th step's progress, during the reconstruction and the edit; default
10, 0 for none: each costs one VAE decode), ``lora`` (optional perspective LoRA,
``{"path": "<adapter folder>", "scale": 1.0}``, see ``engine/perspective/edit_lora.py``; without it the base UNet).
"""

from __future__ import annotations

import contextlib

from . import JobError


def settings(params: dict):
    from ..diffusion.settings import EditSettings

    values = params.get("settings") or {}
    if not isinstance(values, dict):
        raise JobError("bad_params", "'settings' must be an object of edit settings, e.g. {\"inversion\": \"ddim\"}.")
    try:
        return EditSettings.from_dict(values)
    except (TypeError, ValueError) as error:
        raise JobError("bad_params", f"Invalid edit settings: {error}") from None


def diffusion_models(params: dict, ctx):
    """The cached diffusion models, with exactly the LoRA ``params`` asks for (or none) on the UNet."""
    from ..models import load_diffusion
    from ..perspective import edit_lora

    model, device, dtype = params.get("model"), params.get("device"), params.get("dtype")
    try:
        lora = edit_lora.choice_from_param(params.get("lora"))  # checked before a model is loaded
        key = ("diffusion", model or "sd2-depth", device, dtype)
        models = ctx.models.get_or_load(key, lambda: load_diffusion(model, device=device, dtype=_dtype(dtype)))
        edit_lora.apply(models, lora)
    except edit_lora.LoraError as error:
        raise JobError("bad_lora", str(error)) from None
    return models


def _dtype(name):
    if name is None:
        return None
    import torch

    from ..device import _DTYPES

    if name not in _DTYPES:
        raise JobError("bad_params", f"'dtype' must be one of fp32, fp16, bf16, not {name!r}.")
    return getattr(torch, _DTYPES[name])


def editor(params: dict, ctx):
    from ..diffusion.cache import InversionCache
    from ..diffusion.pipeline import Editor

    try:
        cache = InversionCache(params.get("cache_dir") or None, enabled=bool(params.get("use_cache", True)))
    except ValueError as error:  # DHANDLES_CACHE_MAX_GB is not a number
        raise JobError("bad_params", str(error)) from None
    return Editor(diffusion_models(params, ctx), settings(params), cache)


DEFAULT_THUMBNAIL_EVERY = 10


def progress(ctx, params: dict | None = None):
    """A pipeline progress callback that reports to the client, with a thumbnail every ``thumbnail_every`` steps
    where the pipeline offers a preview, and stops at a cancel."""
    every = (params or {}).get("thumbnail_every", DEFAULT_THUMBNAIL_EVERY)
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise JobError("bad_params", f"'thumbnail_every' must be a whole number of steps (0 for no thumbnails), "
                       f"not {every!r}.")

    def report(stage: str, step: int, total: int, preview=None) -> None:
        thumbnail = preview() if preview is not None and every and step % every == 0 else None
        ctx.progress(stage, step, total, thumbnail=thumbnail)
        ctx.check_cancelled()

    return report


@contextlib.contextmanager
def user_errors():
    """Turn the pipeline's input errors into JobErrors the panel can show."""
    from ..geometry import GeometryError

    try:
        yield
    except GeometryError as error:
        text = str(error)
        code = "object_out_of_view" if "visible" in text or "out of the frame" in text else "bad_geometry"
        raise JobError(code, f"The edit cannot be rendered: {text}.") from None
    except RuntimeError as error:
        if "ran out of memory" in str(error):  # engine.device.out_of_memory_message, after every fallback
            raise JobError("out_of_memory", str(error)) from None
        raise


_INPUTS = {"photo": "photo", "depth": "depth map", "mask": "mask", "bg": "background image",
           "bg_depth": "background depth map"}


def check_outputs(params: dict, outputs: dict) -> None:
    """Refuse (``output_is_input``) before any work when a file the job writes (``{label: path}``: images and
    their reports) is one of the photo's files or another of its outputs."""
    from ..diffusion.outputs import clash

    inputs = {f"{what} file": params[key] for key, what in _INPUTS.items()
              if isinstance(params.get(key), str) and params[key]}
    problem = clash(outputs, inputs)
    if problem:
        raise JobError("output_is_input", problem)


def request(params: dict, transform=None):
    """An ``EditRequest`` from the job params (as for ``preview``: photo, depth, mask, optional bg_depth,
    ``camera`` intrinsics at the photo's size; ``masks`` for further objects, then a K x H x W mask stack) and
    the engine-frame transform (one 4x4, or K)."""
    import numpy as np

    from ..diffusion.inputs import EditRequest
    from ..geometry import Camera
    from . import _photo_inputs

    inputs = _photo_inputs.load(params)
    try:
        camera = Camera.from_dict(params["camera"]) if params.get("camera") else Camera.from_fov(
            inputs.width, inputs.height, float(params.get("fov", _photo_inputs.DEFAULT_FOV_DEG)))
    except (KeyError, TypeError, ValueError) as error:
        raise JobError("bad_params", f"'camera' must hold the scene's intrinsics (width, height, fx, fy, cx, cy): "
                       f"{error}.") from None
    if camera.shape != (inputs.height, inputs.width):
        raise JobError("size_mismatch", f"The photo is {inputs.width}x{inputs.height} but the camera is "
                       f"{camera.width}x{camera.height}. Import the photo again.")
    prompt = params.get("prompt", "")
    if not isinstance(prompt, str):
        raise JobError("bad_params", "'prompt' must be a string (a caption of the whole photo).")
    mask = inputs.mask
    if params.get("masks"):  # several objects: one mask each, the ``mask`` object first (see ``preview``)
        from .scene import extra_masks

        mask = np.stack([inputs.mask, *extra_masks(params, inputs)])
    return EditRequest(image=inputs.photo, mask=mask, depth=inputs.depth,
                       transform=np.eye(4) if transform is None else transform, camera=camera, prompt=prompt,
                       bg_depth=inputs.background_depth)
