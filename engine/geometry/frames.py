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
OFFICIAL_TO_ENGINE = np.diag([-1.0, -1.0, 1.0, 1.0])

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


def matrix4(values) -> np.ndarray:
    """A (4, 4) float64 matrix from a 4x4 (numpy, nested rows, mathutils.Matrix) or 16 floats row by row (as the
    photo rig stores a pose)."""
    if len(values) == 16:
        return np.asarray([float(v) for v in values], dtype=np.float64).reshape(4, 4)
    return np.asarray([[float(values[r][c]) for c in range(4)] for r in range(4)], dtype=np.float64)


def rotation_without_scale(matrix_world) -> np.ndarray:
    """(3, 3) rotation of an object's world matrix (4x4, see ``matrix4``; no shear) with its scale divided out: the
    object's local axes (for a camera, its Blender camera frame) as world columns."""
    matrix = matrix4(matrix_world)[:3, :3]
    return matrix / np.linalg.norm(matrix, axis=0)


def world_to_camera_rotation(camera_matrix_world, to_frame: str = "engine") -> np.ndarray:
    """(3, 3) rotation taking world directions into the camera's ``to_frame`` (default the engine's), from the
    Blender camera object's world matrix (4x4, see ``matrix4``; its scale is ignored)."""
    return world_to_camera_from_rotation(rotation_without_scale(camera_matrix_world), to_frame)


def world_to_camera_from_rotation(camera_rotation, to_frame: str = "engine") -> np.ndarray:
    """(3, 3) rotation taking world directions into the camera's ``to_frame`` from the rotation (3, 3) of the Blender
    camera object (its Blender camera axes as world columns, e.g. mathutils' ``matrix_world.decompose()``)."""
    C = change_of_frame("blender", to_frame)[:3, :3]
    return C @ np.asarray(camera_rotation, dtype=np.float64).T


def camera_world_rotation(world_to_camera, from_frame: str = "engine") -> np.ndarray:
    """(3, 3) rotation part of a Blender camera's world matrix (its Blender camera axes as world columns) from the
    rotation (3, 3) taking world directions into its ``from_frame``: the inverse of ``world_to_camera_rotation``."""
    C = change_of_frame("blender", from_frame)[:3, :3]
    return np.asarray(world_to_camera, dtype=np.float64)[:3, :3].T @ C


def camera_points_to_world(points, camera_matrix_world, from_frame: str = "engine") -> np.ndarray:
    """Points (N, 3) in a camera's ``from_frame`` (default the engine's) to world coordinates (N, 3), for a Blender
    camera at ``camera_matrix_world`` (4x4 without scale): world = Cam @ F p with F the frame change to Blender's."""
    signs = np.diag(change_of_frame(from_frame, "blender"))[:3]
    matrix = matrix4(camera_matrix_world)
    in_blender_camera = np.asarray(points).astype(np.float64) * signs
    return in_blender_camera @ matrix[:3, :3].T + matrix[:3, 3]
