"""What an edit needs, read from files: the photo, the object mask, metric depth (optional background depth), the
prompt, the camera and the object's transform. Photos, masks and depth maps are read by ``engine.io``.

Transforms: a 4x4 matrix (JSON list of 4 rows, or .npy) in the frame named by ``frame`` ("engine", "blender" or
"official", converted to the engine frame), or an official-format edit ``{"translation", "rotation_axis",
"rotation_angle"}`` (rotation about the object's 3D centroid, official frame). ``read_sample`` reads a photogen-style
sample folder (the official test layout) with the official camera (55 degrees across the image).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class EditRequest:
    image: np.ndarray  # HxWx3 uint8, full resolution
    mask: np.ndarray  # HxW bool, full resolution; several objects: K x H x W, one mask each
    depth: np.ndarray  # HxW metric z-depth (files are read at the photo's size; callers may pass another size of
    # the photo's aspect)
    transform: np.ndarray  # 4x4, engine frame; several objects: K x 4 x 4, one per mask
    camera: object  # engine.geometry.Camera at the photo's resolution
    prompt: str = ""
    bg_depth: np.ndarray | None = None
    name: str = "edit"
    info: dict = field(default_factory=dict)


def transform_from_json(value, frame: str = "engine", depth=None, mask=None, camera=None) -> np.ndarray:
    """A 4x4 engine-frame matrix from a 4x4 (list or array) in ``frame``, or from an official-format edit dict
    (which needs the depth, mask and camera to find the object's centroid)."""
    from ..errors import BadParams
    from ..geometry import frames, object_centroid, official_edit_to_matrix
    from ..params import OfficialEdit

    if isinstance(value, dict):
        if "matrix" in value:
            return transform_from_json(value["matrix"], value.get("frame", frame))
        try:
            edit = OfficialEdit.from_json(value, where="transform")  # unknown keys (scale...) refused
        except BadParams as error:
            raise ValueError(f"An official-format transform takes 'translation', 'rotation_axis' and "
                             f"'rotation_angle' (degrees): {error}") from None
        centroid = object_centroid(depth, mask, camera)
        return official_edit_to_matrix(list(edit.translation), list(edit.rotation_axis), edit.rotation_angle,
                                       centroid, frame=edit.frame)
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"A transform must be a finite 4x4 matrix, got shape {matrix.shape}.")
    return frames.convert(matrix, frame, "engine") if frame != "engine" else matrix


def read_transform(path, frame: str = "engine", depth=None, mask=None, camera=None, name: str | None = None):
    from ..io import input_path

    path = input_path(path, "transform file")
    if path.suffix.lower() == ".npy":
        return transform_from_json(np.load(path, allow_pickle=False), frame)
    value = json.loads(path.read_text())
    if name is not None:
        if not isinstance(value, dict) or name not in value:
            raise KeyError(f"'{path}' has no edit called {name!r}.")
        value = value[name]
    return transform_from_json(value, frame, depth, mask, camera)


def request_from_files(image, mask, depth, transform, prompt: str = "", bg_depth=None, fov_deg: float = 55.0,
                       camera: str = "official", frame: str = "engine", edit_name: str | None = None) -> EditRequest:
    """An ``EditRequest`` from file paths, read by ``engine.io`` (the mask and depth maps at the displayed photo's
    size, or ``SizeMismatch``). ``camera``: "official" (the one default convention, ``Camera.default``: fov across
    the longer side between the outermost pixel centres) or "blender" (across the longer side, pixel edges)."""
    from .. import io
    from ..geometry import Camera

    photo = io.read_photo(image, "photo")
    shape = io.photo_shape(image)
    object_mask = io.read_mask(mask, shape, "mask")
    depth_map = io.read_depth(depth, shape, "depth map")
    background_depth = None if bg_depth is None else io.read_depth(bg_depth, shape, "background depth map")
    cam = (Camera.official if camera == "official" else Camera.from_fov)(shape.width, shape.height, fov_deg)
    matrix = read_transform(transform, frame, depth_map, object_mask, cam, edit_name)
    return EditRequest(image=photo, mask=object_mask, depth=depth_map, transform=matrix, camera=cam,
                       prompt=prompt, bg_depth=background_depth, name=edit_name or Path(transform).stem)


def read_sample(folder, edit: str) -> EditRequest:
    """A photogen-style sample folder and one of its named edits."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"The sample folder '{folder}' does not exist.")
    prompt_file = folder / "prompt.txt"
    prompt = prompt_file.read_text().strip() if prompt_file.is_file() else ""
    bg = folder / "bg_depth.exr"
    return request_from_files(folder / "input.png", folder / "mask.png", folder / "depth.exr",
                              folder / "transforms.json", prompt=prompt, bg_depth=bg if bg.is_file() else None,
                              camera="official", frame="official", edit_name=edit)
