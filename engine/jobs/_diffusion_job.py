"""What the diffusion jobs (``invert``, ``edit``) share: models kept warm in the engine's model cache, edit settings
from params, progress that honours cancel, and errors as the typed classes of ``engine/errors.py``.

The common params are ``engine.params.DiffusionOptions`` (``prompt``, ``model``, ``device``, ``dtype``, ``settings``,
``cache_dir``, ``use_cache``, ``thumbnail_every``, ``lora``, ``camera``, ``fov``; tables in ``docs/protocol.md``);
the helpers here take a job's parsed parameters.
"""

from __future__ import annotations

import contextlib

from ..errors import (
    BadGeometry,
    BadLora,
    BadParams,
    ObjectOutOfView,
    OutputIsInput,
    SizeMismatch,
)


def settings(params):
    """The ``EditSettings`` of ``params.settings`` (overrides of the defaults)."""
    from ..diffusion.settings import EditSettings

    try:
        return EditSettings.from_dict(params.settings or {})
    except (TypeError, ValueError) as error:
        raise BadParams(f"Invalid edit settings ('settings'): {error}") from None


def diffusion_models(params, ctx):
    """The cached diffusion models, with exactly the LoRA ``params`` asks for (or none) on the UNet."""
    from ..models import load_diffusion
    from ..perspective import edit_lora

    model, device, dtype = params.model, params.device, params.dtype
    try:
        # the folder is checked before a model is loaded
        lora = edit_lora.choice_from_param(params.lora.to_json() if params.lora is not None else None)
        key = ("diffusion", model or "sd2-depth", device, dtype)
        models = ctx.models.get_or_load(key, lambda: load_diffusion(model, device=device, dtype=_dtype(dtype)))
        edit_lora.apply(models, lora)
    except edit_lora.LoraError as error:
        raise BadLora(str(error)) from None
    return models


def _dtype(name):
    if name is None:
        return None
    import torch

    from ..device import _DTYPES

    if name not in _DTYPES:
        raise BadParams(f"'dtype' must be one of fp32, fp16, bf16, not {name!r}.")
    return getattr(torch, _DTYPES[name])


def editor(params, ctx):
    from ..diffusion.cache import InversionCache
    from ..diffusion.pipeline import Editor

    try:
        cache = InversionCache(params.cache_dir, enabled=params.use_cache)
    except ValueError as error:  # DHANDLES_CACHE_MAX_GB is not a number
        raise BadParams(str(error)) from None
    return Editor(diffusion_models(params, ctx), settings(params), cache)


DEFAULT_THUMBNAIL_EVERY = 10


def progress(ctx, params=None):
    """A pipeline progress callback that reports to the client, with a thumbnail every ``params.thumbnail_every``
    steps where the pipeline offers a preview, and stops at a cancel."""
    every = DEFAULT_THUMBNAIL_EVERY if params is None else params.thumbnail_every

    def report(stage: str, step: int, total: int, preview=None) -> None:
        thumbnail = preview() if preview is not None and every and step % every == 0 else None
        ctx.progress(stage, step, total, thumbnail=thumbnail)
        ctx.check_cancelled()

    return report


@contextlib.contextmanager
def user_errors():
    """Turn the pipeline's geometry errors into the typed errors the panel shows (out of memory after every
    fallback is already ``OutOfMemory``)."""
    from ..geometry import GeometryError, OutOfViewError

    try:
        yield
    except OutOfViewError as error:
        raise ObjectOutOfView(f"The edit cannot be rendered: {error}.") from None
    except GeometryError as error:
        raise BadGeometry(f"The edit cannot be rendered: {error}.") from None


_INPUTS = {"photo": "photo", "depth": "depth map", "mask": "mask", "bg": "background image",
           "bg_depth": "background depth map"}


def check_outputs(params, outputs: dict) -> None:
    """Refuse (``output_is_input``) before any work when a file the job writes (``{label: path}``: images and
    their reports) is one of the photo's files (``params.input_files()``) or another of its outputs."""
    from ..io.safe_write import clash

    inputs = {f"{_INPUTS.get(key, key)} file": path for key, path in params.input_files().items()}  # masks[i]
    problem = clash(outputs, inputs)
    if problem:
        raise OutputIsInput(problem)


def request(params, transform=None):
    """An ``EditRequest`` from the job params (as for ``preview``: photo, depth, mask, optional bg_depth,
    ``camera`` intrinsics at the photo's size, else ``fov``; ``masks`` for further objects, then a K x H x W mask
    stack) and the engine-frame transform (one 4x4, or K x 4 x 4: one per object)."""
    import numpy as np

    from ..diffusion.inputs import EditRequest
    from ..geometry import Camera
    from . import _photo_inputs

    inputs = _photo_inputs.load(params)
    fov = _photo_inputs.DEFAULT_FOV_DEG if params.fov is None else params.fov
    camera = Camera.from_dict(params.camera.to_json()) if params.camera is not None else Camera.default(
        inputs.width, inputs.height, fov)
    if camera.shape != (inputs.height, inputs.width):
        raise SizeMismatch(f"The photo is {inputs.width}x{inputs.height} but the camera is "
                       f"{camera.width}x{camera.height}. Import the photo again.")
    mask = inputs.mask
    if getattr(params, "masks", None):  # several objects (``edit``; ``invert`` has one): the ``mask`` object first
        from .scene import extra_masks

        mask = np.stack([inputs.mask, *extra_masks(params, inputs)])
    return EditRequest(image=inputs.photo, mask=mask, depth=inputs.depth,
                       transform=np.eye(4) if transform is None else transform, camera=camera, prompt=params.prompt,
                       bg_depth=inputs.background_depth)
