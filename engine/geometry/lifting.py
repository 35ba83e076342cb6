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


def unproject_columns(u, v, z, camera: Camera) -> tuple:
    """unproject, as separate X, Y, Z tensors (cheaper to transform than an (..., 3) stack)."""
    return (u - camera.cx) * (z / camera.fx), (v - camera.cy) * (z / camera.fy), z


def transform_project_columns(xyz: tuple, M: torch.Tensor, camera: Camera):
    """Apply the 4x4 M to points given as X, Y, Z tensors and project them: u, v, z (elementwise, no matmul)."""
    X, Y, Z = xyz
    m = M.tolist()
    Xm = X * m[0][0] + Y * m[0][1] + Z * m[0][2] + m[0][3]
    Ym = X * m[1][0] + Y * m[1][1] + Z * m[1][2] + m[1][3]
    Zm = X * m[2][0] + Y * m[2][1] + Z * m[2][2] + m[2][3]
    return Xm / Zm * camera.fx + camera.cx, Ym / Zm * camera.fy + camera.cy, Zm


def project(points: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., 3) engine-frame points to pixel u, v and z (z <= 0 means behind the camera: u, v are meaningless)."""
    z = points[..., 2]
    return points[..., 0] / z * camera.fx + camera.cx, points[..., 1] / z * camera.fy + camera.cy, z


def check_depth(depth: torch.Tensor, camera: Camera | None = None, name: str = "depth") -> None:
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


def lift(depth, camera: Camera):
    """HxW z-depth to HxWx3 points in the engine frame (OpenCV: +X right, +Y down, +Z forward).

    Accepts a torch tensor (any device; result on that device) or a numpy array (numpy result).
    """
    as_torch = is_torch(depth)
    d = to_tensor(depth, depth.device if as_torch else torch.device("cpu"))
    check_depth(d, camera)
    u, v = pixel_grid(camera, device=d.device)
    return like_input(unproject(u, v, d, camera), as_torch)
