# SPDX-License-Identifier: GPL-3.0-or-later
"""Vanishing points drawn in the 3D viewport from the imported photo's camera.

For each direction (the Perspective panel's choice: world axes, the ground plane, or an object's axes) a fan of
lines along it, starting on the camera's frame: seen through the camera they converge at that direction's
vanishing point, so the artist sees whether the photo's lines and the scene agree. ``vanishing_lines`` builds the
lines (plain numpy, tested headless); the ``gpu`` draw handler only uploads them, and it is on while the
Perspective panel's *Draw Vanishing Points* is.
"""

from __future__ import annotations

import logging

import bpy
import numpy as np

from .vanishing_points import directions_for

LOG = logging.getLogger(__name__)
COLOURS = ((0.95, 0.25, 0.25, 1.0), (0.3, 0.85, 0.3, 1.0), (0.3, 0.5, 1.0, 1.0))  # X, Y, Z as Blender draws axes
FAN = 7            # lines per vanishing point, spread along the frame's border
REACH = 1000.0     # how far each line runs, in distances to the frame: far enough to near the vanishing point

_handler = None


def frame_points(camera_matrix: np.ndarray, frame_corners: np.ndarray, count: int) -> np.ndarray:
    """``count`` world points spread evenly around the camera's frame (its 4 corners in camera space, as
    ``Camera.view_frame`` gives them), starting at a corner."""
    corners = np.asarray(frame_corners, dtype=np.float64)
    edges = np.concatenate([corners, corners[:1]])
    t = np.arange(count) * 4.0 / count
    side, along = np.floor(t).astype(int), (t - np.floor(t))[:, None]
    local = edges[side] * (1.0 - along) + edges[side + 1] * along
    return local @ camera_matrix[:3, :3].T + camera_matrix[:3, 3]


def vanishing_lines(camera_matrix, frame_corners, directions, count: int = FAN) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (2N x 3 world points, consecutive pairs) and their colours (2N x 4): for each world direction
    (rows of ``directions``), ``count`` lines from the camera's frame along it, towards the side where its
    vanishing point lies in front of the camera (either side for a direction parallel to the image)."""
    matrix = np.asarray(camera_matrix, dtype=np.float64)
    starts = frame_points(matrix, frame_corners, count)
    distance = float(np.linalg.norm(starts - matrix[:3, 3], axis=1).max())
    forward = -matrix[:3, 2] / np.linalg.norm(matrix[:3, 2])        # a Blender camera looks down its -Z
    coords, colours = [], []
    for index, direction in enumerate(np.asarray(directions, dtype=np.float64)):
        d = direction / np.linalg.norm(direction)
        if d @ forward < 0:
            d = -d
        ends = starts + d * distance * REACH
        coords.append(np.stack([starts, ends], axis=1).reshape(-1, 3))
        colours.append(np.tile(COLOURS[index % len(COLOURS)], (2 * count, 1)))
    if not coords:
        return np.zeros((0, 3)), np.zeros((0, 4))
    return np.concatenate(coords), np.concatenate(colours)


def scene_lines(context):
    """The lines for the scene's imported photo and its Perspective settings; None when there is nothing to draw."""
    from ..properties.photo_rig import active_rig

    rig = active_rig(context)
    settings = getattr(context.scene, "dhandles_perspective", None)
    if rig is None or rig.camera is None or settings is None:
        return None
    directions, _ = directions_for(settings.source, settings.reference_object)
    camera = rig.camera
    corners = [tuple(c) for c in camera.data.view_frame(scene=context.scene)]
    matrix = np.array(camera.matrix_world, dtype=np.float64)
    return vanishing_lines(matrix, corners, directions)


def _draw():
    import gpu
    from gpu_extras.batch import batch_for_shader

    try:
        lines = scene_lines(bpy.context)
    except (ValueError, AttributeError) as error:  # no reference object yet, a camera being deleted
        LOG.debug("vanishing points not drawn: %s", error)
        return
    if lines is None or not len(lines[0]):
        return
    shader = gpu.shader.from_builtin("SMOOTH_COLOR")
    batch = batch_for_shader(shader, "LINES", {"pos": lines[0].astype(np.float32).tolist(),
                                               "color": lines[1].astype(np.float32).tolist()})
    gpu.state.blend_set("ALPHA")
    batch.draw(shader)
    gpu.state.blend_set("NONE")


def set_drawn(on: bool) -> None:
    """Add or remove the viewport draw handler (one for all 3D views)."""
    global _handler
    if on and _handler is None and not bpy.app.background:
        _handler = bpy.types.SpaceView3D.draw_handler_add(_draw, (), "WINDOW", "POST_VIEW")
    elif not on and _handler is not None:
        bpy.types.SpaceView3D.draw_handler_remove(_handler, "WINDOW")
        _handler = None
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def draw_toggled(self, context):
    """The update of ``Scene.dhandles_draw_vps``."""
    set_drawn(bool(self.dhandles_draw_vps))
