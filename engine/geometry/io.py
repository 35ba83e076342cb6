"""Reading the official test-set layout (a sample folder) and writing geometry results.

A sample folder holds input.png, mask.png, depth.exr (one HALF channel "Y", metric z-depth), optional
bg_depth.exr, and transforms.json ({"edit_000": {"translation", "rotation_axis", "rotation_angle"}}).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GeometryError

NPZ_KEYS = ("depth", "disparity", "target_mask", "correspondences")


def read_depth_exr(path) -> np.ndarray:
    """HxW float32 depth from an EXR's single channel (named "Y", or the only one there)."""
    path = Path(path)
    if not path.is_file():
        raise GeometryError(f"depth file {path} does not exist")
    import OpenEXR

    try:
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            name = "Y" if "Y" in channels else ("Z" if "Z" in channels else None)
            if name is None:
                if len(channels) != 1:
                    raise GeometryError(f"{path} has channels {sorted(channels)}; expected one depth channel "
                                        "named Y (or Z)")
                name = next(iter(channels))
            pixels = np.asarray(channels[name].pixels)
    except GeometryError:
        raise
    except Exception as e:  # OpenEXR raises plain RuntimeError/OSError on a broken file
        raise GeometryError(f"cannot read {path} as an EXR depth map ({e}); write depth as a one-channel EXR") from e
    if pixels.ndim != 2:
        raise GeometryError(f"{path}: depth channel has shape {pixels.shape}, expected HxW")
    return pixels.astype(np.float32)


def write_depth_exr(path, depth, half: bool = False) -> None:
    """Write HxW depth as one channel "Y" (float32, or HALF like the photogen files)."""
    import OpenEXR

    d = np.ascontiguousarray(np.asarray(depth), dtype=np.float16 if half else np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Y": d}) as f:
        f.write(str(path))


def read_mask(path) -> np.ndarray:
    """HxW bool: a pixel belongs to the object when its (first-channel or alpha-less grey) value is > 127."""
    path = Path(path)
    if not path.is_file():
        raise GeometryError(f"mask file {path} does not exist")
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except Exception as e:
        raise GeometryError(f"cannot read {path} as an image mask ({e}); save the mask as an 8-bit PNG") from e
    a = np.asarray(img.convert("L") if img.mode not in ("L", "1", "I", "I;16", "F") else img)
    return a > (127 if a.dtype == np.uint8 else (0.5 if a.dtype.kind == "f" else 127))


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
    folder = Path(folder)
    if not folder.is_dir():
        raise GeometryError(f"sample folder {folder} does not exist")
    depth = read_depth_exr(folder / "depth.exr")
    mask = read_mask(folder / "mask.png")
    if mask.shape != depth.shape:
        raise GeometryError(f"{folder}: mask.png is {mask.shape} but depth.exr is {depth.shape}")
    bg = None
    if (folder / "bg_depth.exr").is_file():
        bg = read_depth_exr(folder / "bg_depth.exr")
        if bg.shape != depth.shape:
            raise GeometryError(f"{folder}: bg_depth.exr is {bg.shape} but depth.exr is {depth.shape}")
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
