"""Metric z-depth to 3D points in the engine frame, and back (vectorised torch; numpy in, numpy out)."""
from __future__ import annotations

import torch

from .arrays import is_torch, like_input, to_tensor
from .camera import Camera
from .errors import GeometryError


def pixel_grid(camera: Camera, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """u (column) and v (row) pixel-centre coordinates, each HxW."""
    v, u = torch.meshgrid(torch.arange(camera.height, device=device, dtype=dtype),
                          torch.arange(camera.width, device=device, dtype=dtype), indexing="ij")
    return u, v


def unproject(u: torch.Tensor, v: torch.Tensor, z: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Pixel coordinates and z-depth to (..., 3) engine-frame points."""
    return torch.stack(((u - camera.cx) * (z / camera.fx), (v - camera.cy) * (z / camera.fy), z), dim=-1)


class MovedRays:
    """Where points on the rays through pixels (pix_x + du, pix_y + dv) land after the rigid 4x4 M (engine frame),
    for any inverse depth along them: `at` gives image u, v and den = (z after) / (z before). Folding the ray,
    the motion and the projection into a few per-pixel terms costs far less than unprojecting 3D points,
    transforming and projecting them."""

    def __init__(self, pix_x: torch.Tensor, pix_y: torch.Tensor, M: torch.Tensor, camera: Camera,
                 dtype=torch.float32):
        self.m = m = M.tolist()
        self.camera = c = camera
        rx = (pix_x.to(dtype) - c.cx) * (1.0 / c.fx)
        ry = (pix_y.to(dtype) - c.cy) * (1.0 / c.fy)
        # M applied to the ray (rx, ry, 1), then the projection's numerators: u = (fx X + cx Z) / Z
        a = rx * m[0][0] + ry * m[0][1] + m[0][2]
        b = rx * m[1][0] + ry * m[1][1] + m[1][2]
        self.z = rx * m[2][0] + ry * m[2][1] + m[2][2]
        self.u = a * c.fx + self.z * c.cx
        self.v = b * c.fy + self.z * c.cy
        self.tu = c.fx * m[0][3] + c.cx * m[2][3]
        self.tv = c.fy * m[1][3] + c.cy * m[2][3]

    def at(self, du: float, dv: float, inv_z: torch.Tensor, index: torch.Tensor | None = None):
        """u, v, den for the points at inverse depth inv_z on the rays offset by (du, dv) pixels (of the pixels
        `index` when given)."""
        m, c = self.m, self.camera
        kx, ky = du / c.fx, dv / c.fy
        kz = m[2][0] * kx + m[2][1] * ky
        ku = c.fx * (m[0][0] * kx + m[0][1] * ky) + c.cx * kz
        kv = c.fy * (m[1][0] * kx + m[1][1] * ky) + c.cy * kz
        u, v, z = (self.u, self.v, self.z) if index is None else \
            (self.u.index_select(0, index), self.v.index_select(0, index), self.z.index_select(0, index))
        den = (z + kz) + inv_z * m[2][3]
        return ((u + ku) + inv_z * self.tu) / den, ((v + kv) + inv_z * self.tv) / den, den


def project(points: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., 3) engine-frame points to pixel u, v and z (z <= 0 means behind the camera: u, v are meaningless)."""
    z = points[..., 2]
    return points[..., 0] / z * camera.fx + camera.cx, points[..., 1] / z * camera.fy + camera.cy, z


def check_depth(depth: torch.Tensor, camera: Camera | None = None, name: str = "depth") -> float:
    """GeometryError unless depth is one HxW map (of the camera's size) that is positive and finite; returns its
    minimum."""
    if depth.dim() != 2:
        raise GeometryError(f"{name} must be a single HxW map, got shape {tuple(depth.shape)}")
    if camera is not None and tuple(depth.shape) != camera.shape:
        raise GeometryError(f"{name} is {tuple(depth.shape)} but the camera is {camera.shape} (HxW): "
                            "build the camera for this image size")
    # one min/max pass (NaN propagates into both) instead of elementwise tests; count only when something is wrong
    lo, hi = torch.aminmax(depth)
    if not (bool(lo > 0) and bool(torch.isfinite(hi))):
        n = int((~(torch.isfinite(depth) & (depth > 0))).sum())
        raise GeometryError(f"{name} has {n} non-positive or non-finite pixels: metric z-depth must be > 0 "
                            "everywhere; re-estimate the depth or fill its holes first")
    return float(lo)


def lift(depth, camera: Camera):
    """HxW z-depth to HxWx3 points in the engine frame (OpenCV: +X right, +Y down, +Z forward).

    Accepts a torch tensor (any device; result on that device) or a numpy array (numpy result).
    """
    as_torch = is_torch(depth)
    d = to_tensor(depth, depth.device if as_torch else torch.device("cpu"))
    check_depth(d, camera)
    u, v = pixel_grid(camera, device=d.device)
    return like_input(unproject(u, v, d, camera), as_torch)
