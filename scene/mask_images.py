# SPDX-License-Identifier: GPL-3.0-or-later
"""Masks made in Blender: an image to paint the object's mask on in the Image Editor (``new_mask_image``), and a
mask from the object's name by the engine's ``segment`` job (``mask_from_text``); used by
``operators/mask_image.py``.

The image is the photo at 30 % brightness, so the artist sees what to paint, and the engine reads it like any
mask: a pixel is the object where its brightest channel is above one half, so white paint is the object and the
dimmed photo is not. Import with *Mask Image* set to it (``import_photo(mask_image=...)``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import bpy
import numpy as np

from . import photo_files

GUIDE_BRIGHTNESS = 0.3  # below the mask threshold (0.5) for every photo pixel


def new_mask_image(photo_path: Path, name: str) -> bpy.types.Image:
    """A new image the size of the photo, showing the photo dimmed; the photo's own image is not changed."""
    photo = bpy.data.images.load(str(photo_path), check_existing=True)
    width, height = photo.size
    if width == 0 or height == 0:
        raise ValueError(f"'{photo_path}' could not be read as an image.")
    pixels = np.empty(width * height * photo.channels, dtype=np.float32)
    photo.pixels.foreach_get(pixels)
    pixels = pixels.reshape(-1, photo.channels)
    guide = np.ones((width * height, 4), dtype=np.float32)
    guide[:, :3] = pixels[:, :3] * GUIDE_BRIGHTNESS if photo.channels >= 3 else pixels[:, :1] * GUIDE_BRIGHTNESS
    image = bpy.data.images.new(name, width, height, alpha=False)
    image.pixels.foreach_set(guide.ravel())
    image.update()
    return image


def show_in_image_editors(context, image, mode: str) -> bool:
    """Show ``image`` in every open Image Editor in ``mode`` (``PAINT``, ``VIEW``); False when none is open."""
    shown = False
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
                area.spaces.active.ui_mode = mode
                shown = True
    return shown


def show_for_painting(context, image) -> bool:
    """Show ``image`` in an open Image Editor in Paint mode with a white brush; False when no editor is open."""
    shown = show_in_image_editors(context, image, "PAINT")
    settings = getattr(context.tool_settings, "unified_paint_settings", None)
    if settings is not None and hasattr(settings, "color"):
        settings.color = (1.0, 1.0, 1.0)
    return shown


def mask_from_text(context, photo: Path, prompt: str, threshold: float, model: str = "") -> tuple:
    """The engine's ``segment`` job on the photo: the mask as an image of this .blend (packed, so it is saved with
    the file), and the job's result (``coverage``, ``model``)."""
    from ..engine_link.blocking_job import run_job

    folder = photo_files.make_folder(photo_files.cache_root(context) / "masks")
    output = folder / f"{photo.stem}_{hashlib.sha1(f'{photo}|{prompt}'.encode()).hexdigest()[:10]}.png"
    params = {"photo": str(photo), "prompt": prompt, "threshold": float(threshold), "output": str(output)}
    if model:
        params["model"] = photo_files.model_reference(model)
    result = run_job(context, "segment", params, label="Mask from Text")
    name = f"{photo.stem} mask: {prompt.strip()}"
    old = bpy.data.images.get(name)
    if old is not None:
        bpy.data.images.remove(old)
    image = bpy.data.images.load(result["mask"], check_existing=False)
    image.name = name
    image.pack()
    image.use_fake_user = True
    Path(result["mask"]).unlink(missing_ok=True)
    return image, result


def show_for_approval(context, image) -> bool:
    """Show ``image`` in every open Image Editor (View mode); False when none is open."""
    return show_in_image_editors(context, image, "VIEW")
