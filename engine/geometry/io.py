"""Reading the official test-set layout (a sample folder; its files through ``engine.io``) and writing geometry
results.

A sample folder holds input.png, mask.png, depth.exr (one HALF channel "Y", metric z-depth), optional
bg_depth.exr, and transforms.json ({"edit_000": {"translation", "rotation_axis", "rotation_angle"}}).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GeometryError


def write_depth_exr(path, depth, half: bool = False) -> None:
    """Write HxW depth as one channel "Y" (float32, or HALF like the photogen files)."""
    import OpenEXR

    d = np.ascontiguousarray(np.asarray(depth), dtype=np.float16 if half else np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Y": d}) as f:
        f.write(str(path))


def read_transforms(path, validate: bool = True) -> dict:
    """transforms.json as {edit name: entry}. validate: every entry checked and normalised (edit_parameters), the
    first bad one raising; False: entries as written, for callers that check each edit on its own."""
    path = Path(path)
    if not path.is_file():
        raise GeometryError(f"transforms file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise GeometryError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise GeometryError(f"{path} must map edit names to {{translation, rotation_axis, rotation_angle}}")
    return {name: edit_parameters(path, name, e) for name, e in data.items()} if validate else data


def edit_parameters(path, name: str, entry) -> dict:
    """One transforms.json entry as {"translation": [3 floats], "rotation_axis": [3 floats], "rotation_angle":
    float} (axis and angle default to y and 0); GeometryError naming the file and the edit when it is malformed."""
    from ..errors import BadParams
    from ..params import OfficialEdit

    try:
        edit = OfficialEdit.from_json(entry, where=str(name))
    except BadParams as err:
        raise GeometryError(f"{path}: edit {name!r} needs translation [x, y, z], rotation_axis [x, y, z] and "
                            f"rotation_angle (degrees), all finite numbers, and nothing else: {err}") from None
    return {"translation": list(edit.translation), "rotation_axis": list(edit.rotation_axis),
            "rotation_angle": edit.rotation_angle}


@dataclass
class Sample:
    folder: Path
    depth: np.ndarray
    mask: np.ndarray
    bg_depth: np.ndarray | None
    transforms: dict          # edit name -> entry as written (check each with edit_parameters)

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape


def read_sample(folder) -> Sample:
    """A sample folder's arrays, read by ``engine.io``: mask.png and the depth maps at input.png's displayed size
    (or, without an input.png, at depth.exr's), ``SizeMismatch`` otherwise."""
    from .. import io

    folder = Path(folder)
    if not folder.is_dir():
        raise GeometryError(f"sample folder {folder} does not exist")
    photo = folder / "input.png"
    shape = io.photo_shape(photo) if photo.is_file() else None
    depth = io.read_depth(folder / "depth.exr", shape, "depth map (depth.exr)")
    shape = shape or io.shape_of(depth)
    mask = io.read_mask(folder / "mask.png", shape, "mask (mask.png)")
    bg = None
    if (folder / "bg_depth.exr").is_file():
        bg = io.read_depth(folder / "bg_depth.exr", shape, "background depth map (bg_depth.exr)")
    transforms = read_transforms(folder / "transforms.json", validate=False)
    return Sample(folder, depth, mask, bg, transforms)


def write_edit_npz(path, depth, disparity, target_mask, correspondences) -> None:
    """OUT/<edit>.npz with exactly depth (f32 HxW), disparity (f32 HxW, 0..255), target_mask (bool HxW),
    correspondences (int32 Nx4: src_x, src_y, tgt_x, tgt_y)."""
    np.savez_compressed(
        path,
        depth=np.asarray(depth, dtype=np.float32),
        disparity=np.asarray(disparity, dtype=np.float32),
        target_mask=np.asarray(target_mask, dtype=bool),
        correspondences=np.asarray(correspondences, dtype=np.int32).reshape(-1, 4),
    )
