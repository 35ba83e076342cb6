"""Camera frames and exact conversions between them.

engine   (OpenCV): +X right, +Y down, +Z forward (away from the camera). Everything in engine/ uses this one.
blender  (camera object's local frame): +X right, +Y up, the camera looks down -Z.
official (Diffusion Handles' point clouds, transforms.json): +X left, +Y up, +Z forward.

Each conversion is a diagonal sign flip, its own inverse, and a proper rotation (det +1), so a rotation stays a
rotation: engine = diag(1, -1, -1) blender = diag(-1, -1, 1) official.
Points convert as p_B = C p_A; a 4x4 transform M acting on points of frame A becomes C M C^-1 in frame B.
numpy only (Blender's Python imports this too).
"""
from __future__ import annotations

import numpy as np

BLENDER_TO_ENGINE = np.diag([1.0, -1.0, -1.0, 1.0])
ENGINE_TO_BLENDER = BLENDER_TO_ENGINE.copy()
OFFICIAL_TO_ENGINE = np.diag([-1.0, -1.0, 1.0, 1.0])
ENGINE_TO_OFFICIAL = OFFICIAL_TO_ENGINE.copy()

_TO_ENGINE = {"engine": np.eye(4), "blender": BLENDER_TO_ENGINE, "official": OFFICIAL_TO_ENGINE}
FRAMES = tuple(_TO_ENGINE)


def change_of_frame(from_frame: str, to_frame: str) -> np.ndarray:
    """4x4 C with p_to = C p_from."""
    for name in (from_frame, to_frame):
        if name not in _TO_ENGINE:
            raise ValueError(f"unknown frame {name!r}; use one of {', '.join(FRAMES)}")
    # every C is its own inverse, so engine->to_frame is to_frame's own matrix
    return _TO_ENGINE[to_frame] @ _TO_ENGINE[from_frame]


def convert(M, from_frame: str, to_frame: str) -> np.ndarray:
    """Express the 4x4 transform M (acting on points of from_frame) in to_frame: C M C^-1."""
    C = change_of_frame(from_frame, to_frame)
    return C @ np.asarray(M, dtype=np.float64) @ C.T


def convert_points(points, from_frame: str, to_frame: str) -> np.ndarray:
    """Points (..., 3) from one frame to another."""
    C = change_of_frame(from_frame, to_frame)[:3, :3]
    return np.asarray(points, dtype=np.float64) @ C.T


def convert_vector(v, from_frame: str, to_frame: str) -> np.ndarray:
    """A direction or translation (3,) from one frame to another (the same sign flip as a point)."""
    return convert_points(v, from_frame, to_frame)
