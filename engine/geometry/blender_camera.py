"""Blender's camera numbers <-> engine intrinsics, both ways, as plain values (no bpy: Blender passes the numbers).

Forward: Blender's own view plane (``BKE_camera_params_compute_viewplane``): focal length and sensor size, sensor fit
(AUTO / HORIZONTAL / VERTICAL; AUTO fits the wider side after pixel aspect, always with ``sensor_width``), lens
shift (in units of the fitted side), render resolution and percentage, and pixel aspect. Pixels are the engine's:
u right, v down, integer coordinates at pixel centres (camera.py). For an orthographic camera fx and fy are pixels
per scene unit.

Backward: the camera numbers that make Blender project like given intrinsics, for a chosen sensor fit and sensor
size (the intrinsics do not fix those), percentage and horizontal pixel aspect.
numpy only (Blender's Python imports this).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .camera import Camera
from .errors import GeometryError

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
CAMERA_TYPES = ("PERSP", "ORTHO")


@dataclass(frozen=True)
class BlenderCameraNumbers:
    """A Blender camera and render settings, by the names of their bpy properties (``Camera.lens`` ...,
    ``RenderSettings.resolution_x`` ...). Lengths in mm; shifts in units of the fitted sensor side."""

    lens: float = 50.0
    sensor_width: float = 36.0
    sensor_height: float = 24.0
    sensor_fit: str = "AUTO"
    shift_x: float = 0.0
    shift_y: float = 0.0
    resolution_x: int = 1920
    resolution_y: int = 1080
    resolution_percentage: int = 100
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0
    type: str = "PERSP"
    ortho_scale: float = 6.0

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def render_size(resolution_x: int, resolution_y: int, percentage: int = 100) -> tuple[int, int]:
    """(width, height) in pixels of the rendered image: resolution times percentage, as Blender rounds it."""
    scale = percentage / 100.0
    return max(1, int(resolution_x * scale)), max(1, int(resolution_y * scale))


def _fitted(sensor_fit: str, width: int, height: int, aspect_x: float, aspect_y: float) -> str:
    """HORIZONTAL or VERTICAL: the side the sensor spans (AUTO: the wider one after pixel aspect)."""
    if sensor_fit not in SENSOR_FITS:
        raise GeometryError(f"unknown sensor fit {sensor_fit!r}; use one of {', '.join(SENSOR_FITS)}")
    if sensor_fit == "AUTO":
        return "HORIZONTAL" if aspect_x * width >= aspect_y * height else "VERTICAL"
    return sensor_fit


def _check(numbers: BlenderCameraNumbers) -> None:
    if numbers.type not in CAMERA_TYPES:
        raise GeometryError(f"a {numbers.type.lower()} camera has no pinhole intrinsics: use a perspective or "
                            "orthographic camera")
    values = (numbers.lens, numbers.sensor_width, numbers.sensor_height, numbers.pixel_aspect_x,
              numbers.pixel_aspect_y, numbers.ortho_scale)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise GeometryError(f"lens, sensor size, pixel aspect and ortho scale must be positive: {numbers}")


def intrinsics_from_blender(numbers: BlenderCameraNumbers) -> Camera:
    """The engine ``Camera`` (fx, fy, cx, cy in pixels of the rendered image, (H, W) = the render size) that projects
    like Blender's camera with these numbers."""
    _check(numbers)
    width, height = render_size(numbers.resolution_x, numbers.resolution_y, numbers.resolution_percentage)
    aspect_x, aspect_y = numbers.pixel_aspect_x, numbers.pixel_aspect_y
    fit = _fitted(numbers.sensor_fit, width, height, aspect_x, aspect_y)
    sensor = numbers.sensor_width if numbers.sensor_fit in ("AUTO", "HORIZONTAL") else numbers.sensor_height
    y_correction = aspect_y / aspect_x  # a pixel's height in units of its width
    view_factor = width if fit == "HORIZONTAL" else y_correction * height
    fx = numbers.lens / sensor * view_factor if numbers.type == "PERSP" else view_factor / numbers.ortho_scale
    fy = fx / y_correction
    # Shift moves the view plane by shift * view_factor (width-units); rows are y_correction width-units tall.
    cx = width / 2.0 - numbers.shift_x * view_factor - 0.5
    cy = height / 2.0 + numbers.shift_y * view_factor / y_correction - 0.5
    return Camera(width, height, fx, fy, cx, cy)


def blender_from_intrinsics(camera: Camera, sensor_fit: str = "AUTO", sensor_width: float = 36.0,
                            sensor_height: float = 24.0, resolution_percentage: int = 100,
                            pixel_aspect_x: float = 1.0, orthographic: bool = False) -> BlenderCameraNumbers:
    """Blender camera numbers that project like ``camera`` (the inverse of ``intrinsics_from_blender``).

    The render resolution is the smallest that gives the camera's size at ``resolution_percentage``; the pixel
    aspect is ``pixel_aspect_x`` by ``pixel_aspect_x * fx / fy``. ``orthographic``: fx, fy are pixels per unit.
    """
    width, height = int(camera.width), int(camera.height)
    y_correction = camera.fx / camera.fy
    aspect_y = pixel_aspect_x * y_correction
    fit = _fitted(sensor_fit, width, height, pixel_aspect_x, aspect_y)
    view_factor = width if fit == "HORIZONTAL" else y_correction * height
    sensor = sensor_width if sensor_fit in ("AUTO", "HORIZONTAL") else sensor_height
    shift_x = (width / 2.0 - 0.5 - camera.cx) / view_factor
    shift_y = (camera.cy - height / 2.0 + 0.5) * y_correction / view_factor
    numbers = BlenderCameraNumbers(
        sensor_width=float(sensor_width), sensor_height=float(sensor_height), sensor_fit=sensor_fit,
        shift_x=shift_x, shift_y=shift_y, resolution_x=_resolution(width, resolution_percentage),
        resolution_y=_resolution(height, resolution_percentage), resolution_percentage=int(resolution_percentage),
        pixel_aspect_x=float(pixel_aspect_x), pixel_aspect_y=aspect_y)
    if orthographic:
        return replace(numbers, type="ORTHO", ortho_scale=view_factor / camera.fx)
    return replace(numbers, lens=camera.fx * sensor / view_factor)


def _resolution(pixels: int, percentage: int) -> int:
    """The smallest resolution that renders ``pixels`` pixels at ``percentage``."""
    if not 1 <= percentage:
        raise GeometryError(f"resolution percentage must be at least 1, got {percentage}")
    resolution = max(1, math.ceil(pixels * 100 / percentage - 1e-9))
    while render_size(resolution, 1, percentage)[0] < pixels:
        resolution += 1
    return resolution
