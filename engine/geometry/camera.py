"""Pinhole camera intrinsics in pixels, for any image size and principal point.

Pixel (u, v) = (column, row); integer coordinates are pixel CENTRES, so the image spans [-0.5, W-0.5] x [-0.5, H-0.5].
The camera frame is the engine's (OpenCV): +X right, +Y down, +Z forward; a point (X, Y, Z) projects to
u = fx X / Z + cx, v = fy Y / Z + cy. Fields of view and their conventions: fov.py; Blender's camera numbers:
blender_camera.py; EXIF: exif_camera.py. numpy only (Blender's Python imports this too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import GeometryError
from .fov import DEFAULT_FOV_ACROSS, DEFAULT_FOV_DEG, DEFAULT_FOV_SPAN, focal_from_fov


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
                   cx: float | None = None, cy: float | None = None) -> Camera:
        """Focal length in pixels; principal point defaults to the image centre ((W-1)/2, (H-1)/2)."""
        return cls(int(width), int(height), float(focal_px), float(focal_px if fy is None else fy),
                   (width - 1) / 2.0 if cx is None else float(cx), (height - 1) / 2.0 if cy is None else float(cy))

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG, cx: float | None = None,
                 cy: float | None = None, *, across: str = "longer", span: str = "edges") -> Camera:
        """A field of view in degrees with its convention named (see fov.py), square pixels.

        The defaults (across the LARGER image side, between the outer pixel EDGES) are Blender's camera with sensor
        fit AUTO: f = max(W, H) / (2 tan(fov / 2)). Every door's default is ``Camera.default`` instead.
        """
        return cls.from_focal(width, height, focal_from_fov(fov_deg, width, height, across, span), cx=cx, cy=cy)

    @classmethod
    def official(cls, width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG) -> Camera:
        """The official Diffusion Handles camera: the fov spans the outermost pixel CENTRES of the larger side.

        Their image plane puts those pixel centres at -1 and +1 with focal length 1 / tan(fov / 2), so in pixels
        f = (max(W, H) - 1) / (2 tan(fov / 2)), principal point at the centre.
        """
        return cls.from_fov(width, height, fov_deg, across="longer", span="centres")

    @classmethod
    def default(cls, width: int, height: int, fov_deg: float | None = None) -> Camera:
        """The camera every door (the commands, the jobs, Blender's import) gives a photo with no intrinsics:
        ``fov_deg`` (default 55) in the default convention, DEFAULT_FOV_ACROSS and DEFAULT_FOV_SPAN (fov.py)."""
        fov = DEFAULT_FOV_DEG if fov_deg is None else fov_deg
        return cls.from_fov(width, height, fov, across=DEFAULT_FOV_ACROSS, span=DEFAULT_FOV_SPAN)

    @classmethod
    def from_K(cls, K, width: int, height: int) -> Camera:
        """From a (3, 3) intrinsics matrix in pixels (engine convention; skew must be 0) and the image size."""
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        if K[0, 1] != 0.0 or not np.array_equal(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
            raise GeometryError(f"intrinsics must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}")
        return cls(int(width), int(height), float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsics matrix in pixels: [u, v, 1]^T ~ K [X, Y, Z]^T for engine-frame points."""
        return intrinsics_matrix(self.fx, self.fy, self.cx, self.cy)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the shape of this camera's images."""
        return (int(self.height), int(self.width))

    def fov_deg(self) -> tuple[float, float]:
        """Horizontal and vertical field of view between the outer pixel edges, in degrees."""
        return (math.degrees(2 * math.atan(self.width / (2 * self.fx))),
                math.degrees(2 * math.atan(self.height / (2 * self.fy))))

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera for a resampled image (pixel-centre aligned, like area resampling)."""
        sx, sy = width / self.width, height / self.height
        return Camera(int(width), int(height), self.fx * sx, self.fy * sy,
                      (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5)

    def to_dict(self) -> dict:
        return {"width": int(self.width), "height": int(self.height), "fx": self.fx, "fy": self.fy,
                "cx": self.cx, "cy": self.cy}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"]))


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 3) float64 K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (pixels, engine convention)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
