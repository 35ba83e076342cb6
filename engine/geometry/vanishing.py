"""Exact vanishing points and lines from a camera and 3D directions (numpy only; Blender's Python imports this).

In the engine's camera frame (OpenCV: +X right, +Y down, +Z forward), a world direction d vanishes at the image
point K R d (homogeneous), where R rotates world directions into the camera frame (frames.world_to_camera_rotation)
and K holds the intrinsics in pixels (camera.py). Translation plays no part: parallel lines share their vanishing
point wherever they are. A direction parallel to the image plane vanishes at infinity (w = 0); its (x, y) is then
the lines' direction in the image. Under an orthographic camera every direction vanishes at infinity.
"""
from __future__ import annotations

import numpy as np

WORLD_AXES = np.eye(3)
# |w| below this relative to |(x, y)| is a vanishing point at infinity (beyond 1e9 image widths).
_INFINITY_RATIO = 1e-9


def normalize_homogeneous(points) -> np.ndarray:
    """Points (K, 3) scaled to w = 1, or to w = 0 and a unit (x, y) when at infinity. Returns (K, 3) float64."""
    points = np.array(points, np.float64).reshape(-1, 3)
    xy_norm = np.linalg.norm(points[:, :2], axis=1)
    at_infinity = np.abs(points[:, 2]) <= _INFINITY_RATIO * xy_norm
    out = np.empty_like(points)
    out[at_infinity, :2] = points[at_infinity, :2] / xy_norm[at_infinity, None]
    out[at_infinity, 2] = 0.0
    finite = ~at_infinity
    out[finite] = points[finite] / points[finite, 2:3]
    return out


def vanishing_points(K, world_to_camera, directions=WORLD_AXES, orthographic: bool = False) -> np.ndarray:
    """Homogeneous vanishing points (K, 3) in pixels of the rows of ``directions`` (K, 3) (world frame).

    Args:
        K: (3, 3) intrinsics in pixels (for an orthographic camera fx, fy are pixels per scene unit).
        world_to_camera: (3, 3) rotation (or a (3, 4) / (4, 4) pose, whose rotation part is used) taking world
            directions into the engine's camera frame.
        directions: (K, 3) world directions (default the world axes).
        orthographic: parallel projection: every direction keeps its image direction and vanishes at infinity.
    """
    K = np.asarray(K, np.float64)
    rotation = np.asarray(world_to_camera, np.float64)[:3, :3]
    in_camera = (rotation @ np.asarray(directions, np.float64).reshape(-1, 3).T).T
    if orthographic:
        image = in_camera[:, :2] * [K[0, 0], K[1, 1]]
        return normalize_homogeneous(np.column_stack([image, np.zeros(len(image))]))
    return normalize_homogeneous((K @ in_camera.T).T)


def vanishing_line(K, world_to_camera, normal) -> np.ndarray:
    """Homogeneous image line (3,) (a, b, c), a u + b v + c = 0, where planes with world ``normal`` (3,) vanish (the
    horizon for the ground plane); (a, b) has unit length. K: (3, 3); world_to_camera: (3, 3) as above."""
    rotation = np.asarray(world_to_camera, np.float64)[:3, :3]
    line = np.linalg.inv(np.asarray(K, np.float64)).T @ rotation @ np.asarray(normal, np.float64)
    return line / np.linalg.norm(line[:2])


def rescale_vanishing_points(vps, from_size, to_size) -> np.ndarray:
    """Vanishing points (K, 2) or (K, 3) of a view in pixels of a ``from_size`` (W, H) image, in pixels of the same
    view resampled to ``to_size`` (W', H') (pixel-centre aligned, like camera.Camera.scaled). Returns (K, 3)
    normalised (w = 1, or w = 0 and a unit direction at infinity)."""
    rows = [tuple(v) + ((1.0,) if len(v) == 2 else ()) for v in vps]
    out = normalize_homogeneous(np.asarray(rows, np.float64).reshape(-1, 3))
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    finite = out[:, 2] != 0
    out[finite, 0] = (out[finite, 0] + 0.5) * sx - 0.5
    out[finite, 1] = (out[finite, 1] + 0.5) * sy - 0.5
    out[~finite, 0] *= sx
    out[~finite, 1] *= sy
    return normalize_homogeneous(out)
