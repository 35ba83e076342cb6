"""Geometry engine: lift a photo to 3D through its depth, move objects, reproject (dense correspondences), fill the
background depth, and turn depth into the disparity the diffusion model wants.

The one home of camera and frame maths (docs/geometry.md): frames.py (engine = OpenCV: +X right, +Y down, +Z
forward; Blender's camera frame; the official one), camera.py (pinhole intrinsics), fov.py (field-of-view
conventions and the one default), exif_camera.py (field of view from EXIF numbers), blender_camera.py (Blender's
camera numbers <-> intrinsics), vanishing.py (vanishing points and lines), transforms.py (4x4 edits).
Those are numpy-only (Blender's Python imports them); the rest needs torch/scipy and is imported lazily on first
use, so `from engine.geometry import Camera` stays light.
"""
from __future__ import annotations

import importlib

from . import frames
from .camera import Camera
from .errors import GeometryError, OutOfViewError
from .transforms import (
    blender_world_edit_to_engine,
    make_transform,
    object_centroid,
    official_edit_to_matrix,
    rotation_matrix,
)

_LAZY = {
    "lift": "lifting", "project": "lifting", "unproject": "lifting",
    "reproject": "reprojection", "Reprojection": "reprojection",
    "fill_depth_hole": "depth_fill", "dilate": "depth_fill",
    "normalised_disparity": "disparity", "resample_to_grid": "disparity", "disparity_bounds": "disparity",
    "latent_depth_condition": "disparity",
    "read_sample": "io", "write_depth_exr": "io",
    "BlenderCameraNumbers": "blender_camera", "intrinsics_from_blender": "blender_camera",
    "blender_from_intrinsics": "blender_camera", "focal_from_fov": "fov", "fov_from_focal": "fov",
    "fov_from_exif": "exif_camera", "vanishing_points": "vanishing", "vanishing_line": "vanishing",
}

__all__ = ["Camera", "GeometryError", "OutOfViewError", "frames", "blender_world_edit_to_engine", "make_transform",
           "object_centroid", "official_edit_to_matrix", "rotation_matrix", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
