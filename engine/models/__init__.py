"""Model presets and loaders: depth-conditioned SD2 (``diffusion``), monocular depth, text-prompted segmentation
and inpainting. Every loader takes a preset name (``engine.models.registry.PRESETS``), a hub id, a local folder
or (diffusion) a single-file ``.safetensors`` checkpoint; tries the model's sources in order
(``engine.models.sources``: folder, single file, the Hugging Face cache under any of its ids, the hub, mirror
first); loads safetensors only and never remote code; downloads nothing when ``HF_HUB_OFFLINE`` is set or Blender's
online access is off; and raises ``ModelMissingError`` (the ``missing_weights`` error) listing the sources tried
and how to get the model. ``engine.models.download`` fetches a model with byte progress. ``tiny`` presets build the same
architectures with seeded random weights, for tests; they are used only when named.

Importing this package is cheap: torch and friends are imported by the loader functions.
"""

from __future__ import annotations

from .errors import ModelMissingError
from .registry import DEFAULTS, PRESETS, Preset, resolve


def load_diffusion(name_or_path=None, device=None, dtype=None):
    """The SD2-depth bundle (``engine.models.diffusion.DiffusionModels``)."""
    from .diffusion import load_diffusion as load

    return load(name_or_path, device=device, dtype=dtype)


def load_depth_estimator(name_or_path=None, device=None):
    from .depth_estimator import load_depth_estimator as load

    return load(name_or_path, device=device)


def load_segmenter(name_or_path=None, device=None):
    from .segmenter import load_segmenter as load

    return load(name_or_path, device=device)


def load_inpainter(name_or_path=None, device=None, dtype=None):
    from .inpainter import load_inpainter as load

    return load(name_or_path, device=device, dtype=dtype)


__all__ = ["DEFAULTS", "PRESETS", "ModelMissingError", "Preset", "load_depth_estimator", "load_diffusion",
           "load_inpainter", "load_segmenter", "resolve"]
