"""Pinhole camera intrinsics in pixels, for any image size and principal point.

Pixel (u, v) = (column, row); integer coordinates are pixel CENTRES, so the image spans [-0.5, W-0.5] x [-0.5, H-0.5].
The camera frame is the engine's (OpenCV): +X right, +Y down, +Z forward; a point (X, Y, Z) projects to
u = fx X / Z + cx, v = fy Y / Z + cy. numpy only (Blender's Python imports this too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import GeometryError


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self):
        if int(self.width) < 1 or int(self.height) < 1:
            raise GeometryError(f"camera size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0 and math.isfinite(self.fx) and math.isfinite(self.fy)):
            raise GeometryError(f"focal lengths must be positive and finite, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_focal(cls, width: int, height: int, focal_px: float, fy: float | None = None,
                   cx: float | None = None, cy: float | None = None) -> "Camera":
        """Focal length in pixels; principal point defaults to the image centre ((W-1)/2, (H-1)/2)."""
        return cls(int(width), int(height), float(focal_px), float(focal_px if fy is None else fy),
                   (width - 1) / 2.0 if cx is None else float(cx), (height - 1) / 2.0 if cy is None else float(cy))

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float = 55.0, cx: float | None = None,
                 cy: float | None = None) -> "Camera":
        """Field of view across the LARGER image side, measured between the outer pixel EDGES.

        This is Blender's camera with sensor_fit AUTO: f = max(W, H) / (2 tan(fov / 2)).
        """
        _check_fov(fov_deg)
        f = max(width, height) / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
        return cls.from_focal(width, height, f, cx=cx, cy=cy)

    @classmethod
    def official(cls, width: int, height: int, fov_deg: float = 55.0) -> "Camera":
        """The official Diffusion Handles camera: the fov spans the outermost pixel CENTRES of the larger side.

        Their image plane puts those pixel centres at -1 and +1 with focal length 1 / tan(fov / 2), so in pixels
        f = (max(W, H) - 1) / (2 tan(fov / 2)), principal point at the centre.
        """
        _check_fov(fov_deg)
        f = (max(width, height) - 1) / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
        return cls.from_focal(width, height, f)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the shape of this camera's images."""
        return (int(self.height), int(self.width))

    def fov_deg(self) -> tuple[float, float]:
        """Horizontal and vertical field of view between the outer pixel edges, in degrees."""
        return (math.degrees(2 * math.atan(self.width / (2 * self.fx))),
                math.degrees(2 * math.atan(self.height / (2 * self.fy))))

    def scaled(self, width: int, height: int) -> "Camera":
        """The same camera for a resampled image (pixel-centre aligned, like area resampling)."""
        sx, sy = width / self.width, height / self.height
        return Camera(int(width), int(height), self.fx * sx, self.fy * sy,
                      (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5)

    def to_dict(self) -> dict:
        return {"width": int(self.width), "height": int(self.height), "fx": self.fx, "fy": self.fy,
                "cx": self.cx, "cy": self.cy}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"]))


def _check_fov(fov_deg: float) -> None:
    if not (0.0 < fov_deg < 180.0):
        raise GeometryError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")
