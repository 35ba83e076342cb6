# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: which Python runs the engine, which models it loads, where it caches.

The engine runs in its own Python (with torch, diffusers, transformers). By default that is the environment *Set
Up Engine* makes in this extension's user folder, else the ``.venv`` that ``make setup`` makes beside a clone's
source; ``DHANDLES_ENGINE_PYTHON`` overrides both for scripted runs. With Blender's *Allow Online Access* off the
engine runs with downloads off (``engine_env``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import bpy

ADDON_ROOT = Path(__file__).resolve().parent
ENGINE_PYTHON_ENV = "DHANDLES_ENGINE_PYTHON"
RAY_ADDRESS_ENV = "DHANDLES_RAY_ADDRESS"

DEFAULT_DIFFUSION_MODEL = "sd2-depth"  # presets (engine/models/registry.py): each lists its sources, mirror first
DEFAULT_DEPTH_MODEL = "depth-anything-metric-indoor"
DEFAULT_SEGMENTATION_MODEL = "clipseg"
DEFAULT_INPAINTING_MODEL = "sd2-inpainting"
CACHE_NAME = "diffusion_handles"  # the cache's folder under the user cache when not installed as an extension
VENV_NAME = "engine-venv"  # Set Up Engine's environment, in the extension's user folder
ONLINE_ACCESS_ENV = "DHANDLES_ONLINE_ACCESS"  # read by engine/models/hub.py
ONLINE_ACCESS_WHERE = "Preferences > System > Network > Allow Online Access"


def venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def setup_venv_dir(package: str = __package__) -> Path:
    """Where *Set Up Engine* makes the engine's environment: the extension's user folder (it survives extension
    updates), or the user cache for the source tree registered as an add-on."""
    if package.startswith("bl_ext."):
        folder = bpy.utils.extension_path_user(package, create=True)
        if folder:
            return Path(folder) / VENV_NAME
    return user_cache_home() / CACHE_NAME / VENV_NAME


def default_engine_python() -> Path:
    """Set Up Engine's environment when it exists, else the ``.venv`` that ``make setup`` creates in a clone."""
    from_setup = venv_python(setup_venv_dir())
    if from_setup.is_file():
        return from_setup
    return venv_python(ADDON_ROOT / ".venv")


def online_access() -> bool:
    """Blender's *Allow Online Access* (always on in Blender versions without it)."""
    return bool(getattr(bpy.app, "online_access", True))


def engine_env() -> dict:
    """The engine process's environment: Blender's, without its Python settings, and with downloads off while
    Blender's online access is off."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    if not online_access():
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env[ONLINE_ACCESS_ENV] = "0"
    return env


class DHANDLES_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine_python: bpy.props.StringProperty(
        name="Engine Python",
        description="Python interpreter with torch and diffusers that runs the engine. Empty: the environment "
        "Set Up Engine makes, else the .venv made by 'make setup' beside this extension's source",
        subtype="FILE_PATH",
        default="",
    )
    diffusion_model: bpy.props.StringProperty(
        name="Diffusion Model",
        description="Preset (sd2-depth), Hugging Face id, local folder or .safetensors checkpoint "
        "(512-depth-ema.safetensors) of a depth-conditioned Stable Diffusion 2 model",
        default=DEFAULT_DIFFUSION_MODEL,
    )
    depth_model: bpy.props.StringProperty(
        name="Depth Model",
        description="Preset, Hugging Face id or local folder of a transformers depth estimator",
        default=DEFAULT_DEPTH_MODEL,
    )
    segmentation_model: bpy.props.StringProperty(
        name="Segmentation Model",
        description="Preset, Hugging Face id or local folder of a text-prompted segmentation model",
        default=DEFAULT_SEGMENTATION_MODEL,
    )
    cache_dir: bpy.props.StringProperty(
        name="Cache Folder",
        description="Where imported photos keep what they need later (scene files, estimated depth maps, painted "
        "masks handed to the engine, previews of unsaved files) and, in its 'inversions' folder, the diffusion "
        "inversions. Empty: this extension's folder in Blender's user folder (~/.cache/diffusion_handles when not "
        "installed as an extension), and the engine's own inversion cache",
        subtype="DIR_PATH",
        default="",
    )

    setup_python: bpy.props.StringProperty(
        name="Python 3.11 for Set Up",
        description="A Python 3.11 interpreter for Set Up Engine to build the engine's environment from, when "
        "Blender's own Python is not 3.11. Empty: Blender's own",
        subtype="FILE_PATH",
        default="",
    )
    stall_minutes: bpy.props.FloatProperty(
        name="Stall Timeout (min)",
        description="A job that reports no progress for this long is taken for hung and its engine restarted. "
        "Raise it for a first render that downloads the model (several GB) over a slow connection, or for a "
        "full-size model on a CPU. 0: never",
        default=15.0,
        min=0.0,
        soft_max=240.0,
    )
    ray_address: bpy.props.StringProperty(
        name="Ray Cluster",
        description="Render Animation sends its frames to this Ray cluster (host:port, ray://host:10001, or 'auto' "
        "for the one on this machine) through the engine's batch command; empty: the local engine renders them. "
        "See docs/batch.md",
        default="",
    )

    def draw(self, context):
        from .panels.preferences_panel import draw_preferences

        draw_preferences(self, context, self.layout)


def get(context=None):
    """The add-on's preferences, or None when the package was registered without being enabled as an add-on
    (as tests and scripts that call ``register()`` directly do)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def user_cache_home() -> Path:
    """The platform's per-user cache folder: $XDG_CACHE_HOME, else ~/.cache (Windows: %LOCALAPPDATA%, macOS:
    ~/Library/Caches)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec ignores a relative value
        return Path(xdg)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path.home() / ".cache"


def default_cache_dir(package: str = __package__) -> Path:
    """The cache when the preference is empty: persistent (a saved .blend still finds its estimated depth after a
    reboot), in the extension's own user folder when installed as one, else in the user cache."""
    if package.startswith("bl_ext."):
        folder = bpy.utils.extension_path_user(package, path="cache", create=True)
        if folder:
            return Path(folder)
    return user_cache_home() / CACHE_NAME


def cache_dir(prefs=None) -> Path:
    """The add-on's cache folder: the preference (an absolute path; relative ones are taken from the current
    folder), else ``default_cache_dir``."""
    if prefs is not None and prefs.cache_dir:
        return Path(os.path.abspath(bpy.path.abspath(prefs.cache_dir)))
    return default_cache_dir()


def stall_timeout(prefs=None) -> float:
    """Seconds without progress after which the client takes a job for hung (``math.inf``: never)."""
    minutes = 15.0 if prefs is None else float(prefs.stall_minutes)
    return minutes * 60.0 if minutes > 0 else math.inf


def resolve_engine_python(prefs=None) -> str:
    """The engine interpreter: the environment variable, then the preference, then Set Up Engine's environment,
    then a clone's ``.venv``."""
    from_env = os.environ.get(ENGINE_PYTHON_ENV, "")
    if from_env:
        return from_env
    if prefs is not None and prefs.engine_python:
        return bpy.path.abspath(prefs.engine_python)
    return str(default_engine_python())


def ray_address(context=None) -> str:
    """The Ray cluster for Render Animation: ``$DHANDLES_RAY_ADDRESS``, then the preference; empty for none."""
    from_env = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    if from_env:
        return from_env
    prefs = get(context)
    return prefs.ray_address.strip() if prefs is not None else ""


def register():
    bpy.utils.register_class(DHANDLES_AddonPreferences)


def unregister():
    bpy.utils.unregister_class(DHANDLES_AddonPreferences)
