"""Exact vanishing points from a camera and 3D directions (numpy only).

In the engine's camera frame (OpenCV: +X right, +Y down, +Z forward), a world direction d vanishes at the image
point K R d (homogeneous), where R rotates world directions into the camera frame and K holds the intrinsics in
pixels. Translation plays no part: parallel lines share their vanishing point wherever they are. A direction
parallel to the image plane vanishes at infinity (w = 0); its (x, y) is then the lines' direction in the image.
"""

from __future__ import annotations

import math

import numpy as np

# Blender's camera frame (+X right, +Y up, looking down -Z) to the engine's.
BLENDER_TO_ENGINE = np.diag([1.0, -1.0, -1.0])
WORLD_AXES = np.eye(3)
# |w| below this relative to |(x, y)| is a vanishing point at infinity (beyond 1e9 image widths).
_INFINITY_RATIO = 1e-9


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def normalize_homogeneous(points: np.ndarray) -> np.ndarray:
    """Kx3 points scaled to w = 1, or to w = 0 and a unit (x, y) when at infinity."""
    points = np.array(points, np.float64).reshape(-1, 3)
    xy_norm = np.linalg.norm(points[:, :2], axis=1)
    at_infinity = np.abs(points[:, 2]) <= _INFINITY_RATIO * xy_norm
    out = np.empty_like(points)
    out[at_infinity, :2] = points[at_infinity, :2] / xy_norm[at_infinity, None]
    out[at_infinity, 2] = 0.0
    finite = ~at_infinity
    out[finite] = points[finite] / points[finite, 2:3]
    return out


def vanishing_points(K: np.ndarray, world_to_camera: np.ndarray, directions=WORLD_AXES) -> np.ndarray:
    """Kx3 homogeneous vanishing points (pixels) of the rows of ``directions`` (world frame).

    ``world_to_camera`` is the 3x3 rotation (or the 3x4 / 4x4 pose, whose rotation part is used) taking world
    directions into the engine's camera frame.
    """
    rotation = np.asarray(world_to_camera, np.float64)[:3, :3]
    directions = np.asarray(directions, np.float64).reshape(-1, 3)
    return normalize_homogeneous((np.asarray(K, np.float64) @ rotation @ directions.T).T)


def vanishing_line(K: np.ndarray, world_to_camera: np.ndarray, normal) -> np.ndarray:
    """Homogeneous image line (a, b, c), a u + b v + c = 0, where planes with world ``normal`` vanish
    (the horizon for the ground plane). (a, b) has unit length."""
    rotation = np.asarray(world_to_camera, np.float64)[:3, :3]
    line = np.linalg.inv(np.asarray(K, np.float64)).T @ rotation @ np.asarray(normal, np.float64)
    return line / np.linalg.norm(line[:2])


def engine_rotation_from_blender(blender_world_to_camera: np.ndarray) -> np.ndarray:
    """World-to-engine-camera rotation from Blender's world-to-camera rotation (inverse of the camera's
    matrix_world rotation)."""
    return BLENDER_TO_ENGINE @ np.asarray(blender_world_to_camera, np.float64)[:3, :3]


def parse_vp(text: str) -> tuple[float, ...]:
    """'X,Y' (pixels) or 'X,Y,W' (homogeneous; W = 0 for a direction at infinity) into a 3-tuple."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (2, 3) or not all(np.isfinite(values)):
        raise ValueError(f"vanishing point {text!r}: expected X,Y or X,Y,W with finite numbers")
    if len(values) == 3 and values[:2] == (0.0, 0.0):
        raise ValueError(f"vanishing point {text!r}: X and Y cannot both be 0 in homogeneous form")
    return values if len(values) == 3 else values + (1.0,)


def read_vps_file(path) -> dict:
    """A vps.json file: ``{"vps": [[x, y, w] ...], "width": W, "height": H}``, ``width``/``height`` (the size of
    the image the VPs are pixels of) None when the file does not give them. Rows may be [x, y] (w = 1). A
    ValueError (FileNotFoundError for a missing file) names the file and what is wrong with it."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The vanishing-point file '{path}' does not exist.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"'{path}' is not a JSON file ({error}); a vps.json holds {{\"vps\": [[x, y, w], ...]}}.") \
            from None
    if not isinstance(data, dict) or "vps" not in data:
        found = f"keys {', '.join(sorted(map(str, data)))}" if isinstance(data, dict) and data else "no keys"
        raise ValueError(f"'{path}' has no 'vps' key ({found}); a vps.json holds {{\"vps\": [[x, y, w], ...]}}: "
                         "vanishing points in pixels, w = 0 for a direction at infinity.")
    rows = data["vps"]
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"'vps' in '{path}' must be a non-empty list of [x, y] or [x, y, w] rows.")
    vps = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, (list, tuple)):
                raise ValueError("expected a row [x, y] or [x, y, w]")
            vps.append(parse_vp(",".join(str(c) for c in row)))
        except ValueError as error:
            raise ValueError(f"'{path}', vps[{index}] = {row!r}: {error}.") from None
    size = {}
    camera = data.get("camera") if isinstance(data.get("camera"), dict) else {}
    for key in ("width", "height"):
        value = data.get(key, camera.get(key))  # Blender's dataset keeps the size with the camera's intrinsics
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 1):
            raise ValueError(f"'{key}' in '{path}' must be a positive number of pixels, not {value!r}.")
        size[key] = None if value is None else int(value)
    return {"vps": [list(v) for v in vps], **size}
