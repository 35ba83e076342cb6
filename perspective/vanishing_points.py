# SPDX-License-Identifier: GPL-3.0-or-later
"""Exact vanishing points of a Blender camera, for the engine's perspective loss and metric.

Blender knows the camera exactly, so the vanishing points of chosen 3D directions are exact: the world axes by
default, an object's local axes, or a ground plane's in-plane axes (with the plane's horizon). This module reads
the camera's numbers from bpy; the maths (intrinsics from Blender's view plane, frames, projection) is
``engine.geometry`` (blender_camera, frames, vanishing).

Pure functions of bpy data plus one operator, ``dhandles.show_vanishing_points``, that reports them, and the
scene settings (``scene.dhandles_perspective``) that say which VPs go with each edit job and whether the engine
guides sampling with them (``perspective_params_for_rig``: Render Edit and Render Animation send its result as
the edit job's ``perspective`` parameter). No torch.
"""

from __future__ import annotations

import numpy as np

from ..engine.geometry import blender_camera, frames, vanishing
from ..engine.geometry import camera as camera_maths

SOURCES = (
    ("WORLD", "World Axes", "The world X, Y and Z axes"),
    ("OBJECT", "Object Axes", "The active object's local X, Y and Z axes"),
    ("GROUND", "Ground Plane", "The in-plane X and Y axes of the active object (a plane), or of the world floor"),
)


class VanishingPointError(ValueError):
    """A camera or choice of directions that has no vanishing points to give."""


def render_size(scene) -> tuple[int, int]:
    """The rendered image's width and height in pixels (resolution times percentage)."""
    render = scene.render
    return blender_camera.render_size(render.resolution_x, render.resolution_y, render.resolution_percentage)


def camera_numbers(scene, camera_object) -> blender_camera.BlenderCameraNumbers:
    """The plain numbers of ``camera_object`` rendering ``scene`` that its intrinsics depend on."""
    camera, render = camera_object.data, scene.render
    return blender_camera.BlenderCameraNumbers(
        lens=camera.lens, sensor_width=camera.sensor_width, sensor_height=camera.sensor_height,
        sensor_fit=camera.sensor_fit, shift_x=camera.shift_x, shift_y=camera.shift_y,
        resolution_x=render.resolution_x, resolution_y=render.resolution_y,
        resolution_percentage=render.resolution_percentage, pixel_aspect_x=render.pixel_aspect_x,
        pixel_aspect_y=render.pixel_aspect_y, type=camera.type, ortho_scale=camera.ortho_scale)


def camera_intrinsics(scene, camera_object) -> dict:
    """fx, fy, cx, cy (pixels, engine convention), width and height of ``camera_object`` rendering ``scene``.

    For an orthographic camera fx and fy are pixels per scene unit, and ``orthographic`` is True.
    """
    if camera_object is None or camera_object.type != "CAMERA":
        raise VanishingPointError("No camera: set the scene camera, or pick a camera object.")
    camera = camera_object.data
    if camera.type not in blender_camera.CAMERA_TYPES:
        raise VanishingPointError(f"Camera '{camera_object.name}' is {camera.type.lower()}: vanishing points need "
                                  "a perspective or orthographic camera.")
    intrinsics = blender_camera.intrinsics_from_blender(camera_numbers(scene, camera_object))
    return {**intrinsics.to_dict(), "orthographic": camera.type == "ORTHO"}


def intrinsics_matrix(intrinsics: dict) -> np.ndarray:
    return camera_maths.intrinsics_matrix(intrinsics["fx"], intrinsics["fy"], intrinsics["cx"], intrinsics["cy"])


def _rotation(obj) -> np.ndarray:
    """3x3 rotation of ``obj``'s world matrix, as Blender decomposes it (scale and shear ignored)."""
    return np.array(obj.matrix_world.decompose()[1].to_matrix(), np.float64)


def world_to_camera_rotation(camera_object) -> np.ndarray:
    """3x3 rotation taking world directions into the engine's camera frame (scale ignored)."""
    return frames.world_to_camera_from_rotation(_rotation(camera_object))


def object_axes(obj) -> np.ndarray:
    """3x3 rows: the world directions of ``obj``'s local X, Y and Z axes."""
    return _rotation(obj).T


def directions_for(source: str = "WORLD", obj=None) -> tuple[np.ndarray, list[str]]:
    """(Kx3 world directions, labels) for a source: WORLD axes, an OBJECT's axes, or a GROUND plane's X and Y."""
    if source == "WORLD":
        return np.eye(3), ["world X", "world Y", "world Z"]
    if source == "OBJECT" and obj is None:
        raise VanishingPointError("Object axes need an object: pick the Axes Object in the Perspective panel.")
    if source == "OBJECT":
        return object_axes(obj), [f"{obj.name} X", f"{obj.name} Y", f"{obj.name} Z"]
    if source == "GROUND":
        if obj is None:
            return np.eye(3)[:2], ["ground X", "ground Y"]
        return object_axes(obj)[:2], [f"{obj.name} X", f"{obj.name} Y"]
    raise VanishingPointError(f"Unknown direction source {source!r}: use WORLD, OBJECT or GROUND.")


def ground_normal(obj=None) -> np.ndarray:
    return np.array([0.0, 0.0, 1.0]) if obj is None else object_axes(obj)[2]


def project_directions(intrinsics: dict, rotation: np.ndarray, directions) -> np.ndarray:
    """Kx3 homogeneous vanishing points of world ``directions`` (at infinity: w = 0, unit (x, y))."""
    return vanishing.vanishing_points(intrinsics_matrix(intrinsics), rotation, directions,
                                      orthographic=bool(intrinsics.get("orthographic")))


def camera_vanishing_points(scene, camera_object=None, source: str = "WORLD", obj=None) -> dict:
    """Everything the engine needs, as plain JSON-ready data: the VPs and what they are.

    Keys: ``vps`` (rows [x, y, w] in pixels of the rendered image), ``labels``, ``directions`` (world),
    ``camera`` (intrinsics), ``world_to_camera`` (3x3, engine frame), and for the ground plane ``horizon``
    ([a, b, c] with a u + b v + c = 0; absent for an orthographic camera).
    """
    camera_object = camera_object or scene.camera
    intrinsics = camera_intrinsics(scene, camera_object)
    rotation = world_to_camera_rotation(camera_object)
    directions, labels = directions_for(source, obj)
    vps = project_directions(intrinsics, rotation, directions)
    payload = {"vps": vps.tolist(), "labels": labels, "directions": directions.tolist(), "camera": intrinsics,
               "world_to_camera": rotation.tolist(), "source": source}
    if source == "GROUND" and not intrinsics["orthographic"]:
        horizon = vanishing.vanishing_line(intrinsics_matrix(intrinsics), rotation, ground_normal(obj))
        payload["horizon"] = horizon.tolist()
    return payload


def scaled_to(payload: dict, width: int, height: int) -> list:
    """The payload's VPs for the same view resampled to ``width`` x ``height`` (pixel-centre aligned), e.g. the
    photo's size when the render resolution differs."""
    size = (payload["camera"]["width"], payload["camera"]["height"])
    return vanishing.rescale_vanishing_points(payload["vps"], size, (width, height)).tolist()


def view_vanishing_points(intrinsics: dict, camera_matrix_world, directions) -> np.ndarray:
    """Kx3 VPs of world ``directions`` for a view given by engine intrinsics (``fx, fy, cx, cy``, e.g. an imported
    photo's) and a Blender camera's world matrix at the time of that view (4x4: mathutils, nested rows, or 16
    floats row by row as the photo rig stores it)."""
    return project_directions(intrinsics, frames.world_to_camera_rotation(camera_matrix_world), directions)


GUIDANCE_MODES = (
    ("no_reference", "Edges to VPs", "Pull edges towards the vanishing points (any edit)"),
    ("reference", "Photo Lines", ("Keep the photo's line profiles through the VPs (the paper's loss; best for "
                                  "small edits)")),
)


def perspective_job_params(settings, intrinsics: dict, camera_matrix_world) -> dict | None:
    """The edit job's ``perspective`` parameter (see ``engine/perspective/edit_job.py``) from the scene's
    perspective ``settings``, the photo's intrinsics (``width, height, fx, fy, cx, cy``) and the camera's world
    matrix at import; None when switched off."""
    if settings is None or not settings.enabled:
        return None
    obj = settings.reference_object if settings.source != "WORLD" else None
    if settings.source == "GROUND" and obj is not None and obj.type != "MESH":
        obj = None
    directions, labels = directions_for(settings.source, obj)
    vps = view_vanishing_points(intrinsics, camera_matrix_world, directions)
    params = {"vps": vps.tolist(), "labels": labels, "width": int(intrinsics["width"]),
              "height": int(intrinsics["height"]), "source": settings.source}
    if settings.guidance_weight > 0:
        if settings.guidance_t_min > settings.guidance_t_max:
            raise VanishingPointError("Perspective guidance: 'From Timestep' is above 'To Timestep'.")
        params["guidance"] = {"weight": settings.guidance_weight, "mode": settings.guidance_mode,
                              "every": settings.guidance_every,
                              "t_range": [settings.guidance_t_min, settings.guidance_t_max]}
    return params


def perspective_params_for_rig(context, rig) -> dict | None:
    """The ``perspective`` parameter of an edit of the imported photo ``rig``: its intrinsics and the camera pose
    at import (the photo's view, whatever the camera did since). Raises ``VanishingPointError`` with a message for
    the user."""
    settings = getattr(context.scene, "dhandles_perspective", None)
    pose = list(rig.import_camera_matrix)
    if not any(pose):  # never stored: the camera as it is
        if rig.camera is None:
            raise VanishingPointError("The imported photo has no camera: import the photo again.")
        pose = rig.camera.matrix_world
    return perspective_job_params(settings, rig.camera_dict(), pose)


def describe_vanishing_points(payload: dict) -> str:
    """One line per direction of ``camera_vanishing_points``' payload: its point in pixels, or at infinity."""
    parts = []
    for label, (x, y, w) in zip(payload["labels"], payload["vps"], strict=True):
        parts.append(f"{label}: direction ({x:.3f}, {y:.3f}) at infinity" if w == 0 else
                     f"{label}: ({x:.1f}, {y:.1f}) px")
    return "; ".join(parts)
