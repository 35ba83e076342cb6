"""Vanishing points given by the user: ``--vp X,Y[,W]`` and vps.json files, parsed and checked (numpy only).

The maths of vanishing points from a camera (projecting 3D directions, the horizon, rescaling) lives in
``engine.geometry.vanishing``.
"""

from __future__ import annotations

import math

import numpy as np


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
