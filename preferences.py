# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: which Python runs the engine, which models it loads, where it caches.

The engine runs in its own Python (with torch, diffusers, transformers). By default that is the ``.venv`` the
setup command makes beside this extension's source; ``DHANDLES_ENGINE_PYTHON`` overrides it for scripted runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy

ADDON_ROOT = Path(__file__).resolve().parent
ENGINE_PYTHON_ENV = "DHANDLES_ENGINE_PYTHON"

DEFAULT_DIFFUSION_MODEL = "stabilityai/stable-diffusion-2-depth"
DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"
DEFAULT_SEGMENTATION_MODEL = "CIDAS/clipseg-rd64-refined"


def default_engine_python() -> Path:
    """The interpreter of the ``.venv`` that ``make`` creates in the repository root."""
    if sys.platform == "win32":
        return ADDON_ROOT / ".venv" / "Scripts" / "python.exe"
    return ADDON_ROOT / ".venv" / "bin" / "python"


class DHANDLES_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine_python: bpy.props.StringProperty(
        name="Engine Python",
        description="Python interpreter with torch and diffusers that runs the engine. "
        "Empty: the .venv made by the setup command beside this extension's source",
        subtype="FILE_PATH",
        default="",
    )
    diffusion_model: bpy.props.StringProperty(
        name="Diffusion Model",
        description="Hugging Face id or local folder of a depth-conditioned Stable Diffusion 2 model",
        default=DEFAULT_DIFFUSION_MODEL,
    )
    depth_model: bpy.props.StringProperty(
        name="Depth Model",
        description="Hugging Face id or local folder of a transformers depth estimator",
        default=DEFAULT_DEPTH_MODEL,
    )
    segmentation_model: bpy.props.StringProperty(
        name="Segmentation Model",
        description="Hugging Face id or local folder of a text-prompted segmentation model",
        default=DEFAULT_SEGMENTATION_MODEL,
    )
    cache_dir: bpy.props.StringProperty(
        name="Cache Folder",
        description="Where the engine keeps inversions and activations. Empty: the engine's default cache",
        subtype="DIR_PATH",
        default="",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.label(text=f"Resolved: {resolve_engine_python(self)}")
        layout.prop(self, "diffusion_model")
        layout.prop(self, "depth_model")
        layout.prop(self, "segmentation_model")
        layout.prop(self, "cache_dir")
        layout.operator("dhandles.check_engine", icon="CHECKMARK")


def get(context=None):
    """The add-on's preferences, or None when the package was registered without being enabled as an add-on
    (as tests and scripts that call ``register()`` directly do)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def resolve_engine_python(prefs=None) -> str:
    """The engine interpreter: the environment variable, then the preference, then the setup's ``.venv``."""
    from_env = os.environ.get(ENGINE_PYTHON_ENV, "")
    if from_env:
        return from_env
    if prefs is not None and prefs.engine_python:
        return bpy.path.abspath(prefs.engine_python)
    return str(default_engine_python())


def register():
    bpy.utils.register_class(DHANDLES_AddonPreferences)


def unregister():
    bpy.utils.unregister_class(DHANDLES_AddonPreferences)
