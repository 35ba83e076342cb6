"""4x4 rigid-plus-scale transforms of an object's points, and the official edit parametrisation.

All matrices act on column vectors of homogeneous points: p' = M @ [x, y, z, 1]. numpy only.
"""
from __future__ import annotations

import math

import numpy as np

from . import frames
from .errors import GeometryError


def rotation_matrix(axis, angle_deg: float) -> np.ndarray:
    """3x3 rotation by angle_deg about axis (right-handed, Rodrigues), the same formula as the official code."""
    a = np.asarray(axis, dtype=np.float64).reshape(3)
    n = np.linalg.norm(a)
    if not np.isfinite(n) or n == 0.0:
        if angle_deg == 0.0:
            return np.eye(3)
        raise GeometryError(f"rotation axis must be a non-zero vector, got {list(a)}")
    a = a / n
    t = np.radians(angle_deg)
    K = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.cos(t) * np.eye(3) + np.sin(t) * K + (1.0 - np.cos(t)) * np.outer(a, a)


def make_transform(rotation=None, translation=None, scale=None, center=None) -> np.ndarray:
    """4x4: scale then rotate about `center` (default origin), then translate.

    rotation: 3x3; scale: a number (uniform) or 3 numbers (non-uniform, along the frame's axes);
    p' = R S (p - c) + c + t.
    """
    R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    S = np.eye(3)
    if scale is not None:
        s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (3,))
        if not np.all(np.isfinite(s)) or np.any(s == 0):
            raise GeometryError(f"scale must be finite and non-zero, got {list(s)}")
        S = np.diag(s)
    c = np.zeros(3) if center is None else np.asarray(center, dtype=np.float64).reshape(3)
    t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64).reshape(3)
    A = R @ S
    M = np.eye(4)
    M[:3, :3] = A
    M[:3, 3] = c - A @ c + t
    return M


def official_edit_to_matrix(translation, rotation_axis, rotation_angle_deg: float, centroid_engine,
                            frame: str = "official") -> np.ndarray:
    """The official edit (axis, angle in degrees, translation; rotation about the object's 3D centroid, then the
    translation) as a 4x4 in the ENGINE frame.

    translation and rotation_axis are given in `frame` ("official" for transforms.json); the centroid is in the
    engine frame (see object_centroid). A proper change of frame C turns the rotation about axis a into the
    rotation about C a by the same angle.
    """
    axis_e = frames.convert_vector(rotation_axis, frame, "engine")
    t_e = frames.convert_vector(translation, frame, "engine")
    return make_transform(rotation=rotation_matrix(axis_e, float(rotation_angle_deg)), translation=t_e,
                          center=centroid_engine)


def apply(M, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 to (..., 3) numpy points."""
    M = np.asarray(M, dtype=np.float64)
    return points @ M[:3, :3].T + M[:3, 3]


def object_centroid(depth, mask, camera) -> np.ndarray:
    """Mean of the mask's pixels lifted by their depth, in the engine frame (the official rotation centre)."""
    depth = np.asarray(_numpy(depth), dtype=np.float64)
    mask = np.asarray(_numpy(mask)).astype(bool)
    if mask.shape != depth.shape:
        raise GeometryError(f"mask shape {mask.shape} does not match depth shape {depth.shape}")
    v, u = np.nonzero(mask)
    if v.size == 0:
        raise GeometryError("the object mask is empty: select the object (paint or load a mask) before editing it")
    z = depth[v, u]
    if not np.all(np.isfinite(z) & (z > 0)):
        raise GeometryError("depth under the object mask must be positive and finite: re-estimate the depth")
    x = (u - camera.cx) / camera.fx * z
    y = (v - camera.cy) / camera.fy * z
    return np.array([x.mean(), y.mean(), z.mean()])


def _numpy(a):
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return a


def blender_world_edit_to_engine(camera_world, object_before, object_after) -> np.ndarray:
    """The engine-frame 4x4 that moves an object's points the way Blender moved the object, the camera staying put.

    camera_world: the camera object's matrix_world; object_before / object_after: the object's matrix_world
    before and after the artist's edit (all (4, 4), Blender world space). See ``camera_relative_edit``.
    """
    C = np.asarray(camera_world, dtype=np.float64).reshape(4, 4)
    A0 = np.asarray(object_before, dtype=np.float64).reshape(4, 4)
    for name, m in (("camera", C), ("object (before)", A0)):
        if abs(np.linalg.det(m[:3, :3])) < 1e-12:
            raise GeometryError(f"the {name} matrix is singular (zero scale?): give it a non-zero scale")
    return camera_relative_edit(C, object_after, C, A0)


def camera_relative_edit(camera_now, object_now, camera_before, object_before) -> np.ndarray:
    """The edit (4, 4), acting on engine-frame points of the object as the camera saw it before, from Blender
    world matrices (each (4, 4), cameras without scale, camera frame Blender's: +X right, +Y up, looking down -Z):

        E = F (Cam_now^-1 Obj_now) (Cam_before^-1 Obj_before)^-1 F,    F = frames.BLENDER_TO_ENGINE (its own inverse)

    so moving camera and object together is no edit, and a camera moved since still gives the edit as it sees it.
    """
    F = frames.BLENDER_TO_ENGINE
    rest = np.linalg.inv(_matrix(camera_before)) @ _matrix(object_before)
    return F @ np.linalg.inv(_matrix(camera_now)) @ _matrix(object_now) @ np.linalg.inv(rest) @ F


def object_matrix_for_edit(edit, camera_now, camera_before, object_before) -> np.ndarray:
    """The object's world matrix (4, 4) that makes ``camera_relative_edit`` equal ``edit`` (4, 4, engine frame) for
    the camera where it is now: the inverse of ``camera_relative_edit`` in its ``object_now``."""
    F = frames.BLENDER_TO_ENGINE
    rest = np.linalg.inv(_matrix(camera_before)) @ _matrix(object_before)
    return _matrix(camera_now) @ F @ _matrix(edit) @ F @ rest


def _matrix(m) -> np.ndarray:
    return np.asarray(m, dtype=np.float64).reshape(4, 4)


def describe_edit(edit, centroid) -> dict:
    """The edit (4, 4, engine frame) as the artist thinks of it, for an object whose centroid (3,) is given (engine
    frame: x right, y down, z forward): where the centroid moves (``translation``), the rotation (``axis``,
    ``angle`` in degrees) and the ``scale`` (3,), as plain lists."""
    edit = np.asarray(edit, dtype=np.float64)
    c = np.asarray(centroid, dtype=np.float64)
    moved = edit[:3, :3] @ c + edit[:3, 3]
    linear = edit[:3, :3]
    scale = np.linalg.norm(linear, axis=0)
    rotation = linear / np.where(scale > 0, scale, 1.0)
    angle = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(rotation) - 1.0) / 2.0))))
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    norm = np.linalg.norm(axis)
    if norm > 1e-9:
        axis = axis / norm
    elif angle > 90.0:  # a half turn: the axis is the eigenvector of eigenvalue 1
        values, vectors = np.linalg.eig(rotation)
        axis = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    else:
        axis = np.array([0.0, 1.0, 0.0])
    return {"translation": (moved - c).tolist(), "axis": axis.tolist(), "angle": angle, "scale": scale.tolist()}
