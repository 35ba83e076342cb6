# SPDX-License-Identifier: GPL-3.0-or-later
"""The files around an imported photo: side files found beside it, a mask painted in Blender handed to the engine,
and where outputs go (never over the user's photo, masks or .blend)."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import bpy
import numpy as np

from .. import preferences
from ..engine.io.mask_rule import mask_from_pixels

SIDE_FILES = {
    # kind: (name stems tried as "<kind>" and "<photo stem>_<kind>", extensions in order of preference)
    "depth": (("depth",), (".exr", ".npy", ".png")),
    "mask": (("mask",), (".png", ".jpg", ".npy")),
    "bg": (("bg", "background"), (".png", ".jpg")),
    "bg_depth": (("bg_depth", "background_depth"), (".exr", ".npy", ".png")),
    "prompt": (("prompt",), (".txt",)),
    "fg_prompt": (("fg_prompt",), (".txt",)),
}


def absolute_path(value: str) -> Path:
    """``value`` as an absolute path: '//' is the .blend's folder (Blender's convention), '~' the home folder, and
    any other relative path the current folder of this process. The engine runs in a folder of its own, so nothing
    relative is ever sent to it."""
    return Path(os.path.abspath(os.path.expanduser(bpy.path.abspath(value))))


def input_file(value: str, what: str, hint: str) -> Path:
    """The existing file ``value`` names, as an absolute path; ValueError saying what is wrong and ``hint``."""
    if not value:
        raise ValueError(f"No {what} given. {hint}")
    path = absolute_path(value)
    where = "" if str(path) == value else f" ({path})"
    if path.is_dir():
        raise ValueError(f"The {what} '{value}'{where} is a folder, not a file. {hint}")
    if not path.is_file():
        raise ValueError(f"The {what} '{value}'{where} does not exist. {hint}")
    return path


def model_reference(value: str) -> str:
    """A model as the engine takes it (preset, hub id or folder), with a folder given relative to the .blend ('//')
    or to the current folder made absolute."""
    if value.startswith("//") or (value and not os.path.isabs(value) and os.path.isdir(value)):
        return str(absolute_path(value))
    return value


def find_side_file(photo: Path, kind: str) -> Path | None:
    """A file beside the photo named like the official test set (depth.exr) or after it (photo_depth.exr)."""
    stems, extensions = SIDE_FILES[kind]
    for stem in stems:
        for name in (f"{photo.stem}_{stem}", stem):
            for extension in extensions:
                candidate = photo.with_name(name + extension)
                if candidate.is_file() and candidate != photo:
                    return candidate
    return None


def read_text(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0].strip()
    except (OSError, IndexError):
        return ""


def cache_root(context) -> Path:
    """The add-on's cache folder (``preferences.cache_dir``): persistent, since a saved .blend refers to the
    estimated depth in it."""
    return preferences.cache_dir(preferences.get(context))


def make_folder(folder: Path) -> Path:
    """``folder``, made if needed; ValueError saying what to do when it cannot be (an unwritable cache)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"The folder '{folder}' cannot be made ({error.strerror}). Set the Cache Folder preference "
                         "(or the output path) to a folder you can write to.") from None
    return folder


def new_scene_folder(context, photo: Path) -> Path:
    return make_folder(cache_root(context) / "scenes" / f"{photo.stem}-{uuid.uuid4().hex[:8]}")


def export_mask_image(image: bpy.types.Image, folder: Path) -> Path:
    """The painted mask image as an HxW bool .npy for the engine, by the engine's one mask rule (white = object, or
    the alpha of a cut-out: ``engine/io/mask_rule.py``), leaving the image untouched.

    Blender stores pixels bottom row first; the engine's rows go top first.
    """
    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError(f"The mask image '{image.name}' has no pixels. Paint the mask (or load it) and try again.")
    pixels = np.empty(width * height * image.channels, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    pixels = pixels.reshape(height, width, image.channels)[::-1]
    mask = mask_from_pixels(pixels if image.channels > 1 else pixels[..., 0], 1.0)
    make_folder(folder)
    path = folder / f"mask_image_{hashlib.sha1(image.name.encode()).hexdigest()[:10]}.npy"
    np.save(path, mask)
    return path


def default_output_base(context, photo: Path) -> Path:
    """Beside the .blend (named after it and the photo), or in the cache folder for an unsaved file (whose folder
    the caller makes, with ``make_folder``, when it writes there)."""
    blend = bpy.data.filepath
    if blend:
        blend_path = Path(blend)
        return blend_path.with_name(f"{blend_path.stem}_{photo.stem}_preview")
    return cache_root(context) / "previews" / f"{photo.stem}_preview"


def protected_paths(rig) -> list[Path]:
    """Every file the photo's rig reads (the painted mask's own file too) and the .blend."""
    paths = [rig.photo_path, rig.depth_path, rig.mask_path, rig.bg_path, rig.bg_depth_path, bpy.data.filepath]
    image = bpy.data.images.get(rig.mask_image) if rig.mask_image else None
    if image is not None and image.filepath:
        paths.append(bpy.path.abspath(image.filepath, library=image.library))
    return [absolute_path(p).resolve() for p in paths if p]


def check_not_input(rig, output: Path) -> None:
    """ValueError when ``output`` is one of the user's files."""
    resolved = output.resolve()
    if resolved in protected_paths(rig):
        raise ValueError(f"'{output}' is one of the photo's input files (or the .blend); previews never overwrite "
                         "them. Choose another output path.")
