"""The lines swept through each vanishing point across the image, as sample positions.

A finite vanishing point gets rays from it spread evenly over the range of angles under which the image is seen
from it (all around when it lies inside the image). A vanishing point at infinity (w = 0) gets a pencil of
parallel lines along its direction, spread evenly across the image. Each line is clipped to the image and
sampled evenly along the clipped part. The geometry is computed in float64 on the CPU, because a far vanishing
point (1e6 px away) leaves the lines only micro-radians apart, then moved to the images' device and dtype; it
does not depend on the pixels, so no gradient flows through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Below this |w| relative to |(x, y)| a homogeneous point is at infinity: beyond 1e9 image widths away.
_INFINITY_RATIO = 1e-9


def as_homogeneous(vps, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BxKx3 float64 homogeneous VPs and a BxK bool mask of usable ones.

    ``vps`` is Kx2, Kx3, BxKx2 or BxKx3 (tensor, array or nested lists); Kx* is shared by the whole batch.
    Two columns are finite points (w = 1). A row that is not finite, or is all zero, is unusable (padding when
    samples have different numbers of VPs).
    """
    vps = _as_tensor(vps)
    if vps.ndim == 2:
        vps = vps.unsqueeze(0).expand(batch_size, -1, -1)
    if vps.ndim != 3 or vps.shape[-1] not in (2, 3) or vps.shape[0] != batch_size:
        raise ValueError(f"expected vanishing points shaped [B]xKx2 or [B]xKx3 for B={batch_size}, "
                         f"got {tuple(vps.shape)}")
    if vps.shape[-1] == 2:
        vps = torch.cat([vps, torch.ones_like(vps[..., :1])], dim=-1)
    usable = torch.isfinite(vps).all(dim=-1) & (vps.abs().sum(dim=-1) > 0)
    xy, w = vps[..., :2], vps[..., 2]
    at_infinity = w.abs() <= _INFINITY_RATIO * xy.norm(dim=-1)
    usable &= ~(at_infinity & (xy.norm(dim=-1) == 0))
    safe_w = torch.where(at_infinity | ~usable, torch.ones_like(w), w)
    points = xy / safe_w.unsqueeze(-1)
    directions = xy / xy.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    normalized = torch.where(at_infinity.unsqueeze(-1), torch.cat([directions, torch.zeros_like(w[..., None])], -1),
                             torch.cat([points, torch.ones_like(w[..., None])], -1))
    normalized = torch.where(usable.unsqueeze(-1), normalized, torch.zeros_like(normalized))
    return normalized, usable


def _as_tensor(vps) -> torch.Tensor:
    """float64 CPU tensor of VPs; nested lists may mix (x, y) and (x, y, w) rows."""
    if isinstance(vps, torch.Tensor):
        return vps.detach().to("cpu", torch.float64)
    if isinstance(vps, (list, tuple)) and vps and all(isinstance(v, (list, tuple)) for v in vps):
        if all(isinstance(r, (list, tuple)) for v in vps for r in v):  # one list of rows per image
            return torch.stack([_as_tensor(list(v)) for v in vps]) if vps else torch.zeros(0, 0, 3)
        vps = [tuple(v) + (1.0,) if len(v) == 2 else tuple(v) for v in vps]
    return torch.as_tensor(vps, dtype=torch.float64)


@dataclass
class Sweep:
    """Lines swept through B x K vanishing points, N lines each, S samples along each line.

    grid: BxK*NxSx2 sample positions for ``grid_sample`` (align_corners=False), normals: BxKxNx2 unit normals
    of the lines (u, v), valid: BxKxN lines that cross the image.
    """

    grid: torch.Tensor
    normals: torch.Tensor
    valid: torch.Tensor


def _angular_range(points: torch.Tensor, corners: torch.Tensor, width: float, height: float):
    """Start and span of the angles under which the image is seen from each finite point (BxK each)."""
    centre = corners.mean(dim=0)
    to_centre = centre - points
    middle = torch.atan2(to_centre[..., 1], to_centre[..., 0])
    to_corners = corners.view(1, 1, 4, 2) - points.unsqueeze(-2)
    angles = torch.atan2(to_corners[..., 1], to_corners[..., 0]) - middle.unsqueeze(-1)
    angles = torch.remainder(angles + math.pi, 2 * math.pi) - math.pi  # relative to the centre, in [-pi, pi)
    low, high = angles.min(dim=-1).values, angles.max(dim=-1).values
    inside = (points[..., 0] >= 0) & (points[..., 0] <= width) & (points[..., 1] >= 0) & (points[..., 1] <= height)
    start = torch.where(inside, torch.zeros_like(low), middle + low)
    span = torch.where(inside, torch.full_like(low, 2 * math.pi), high - low)
    return start, span, inside


def _clip_to_image(origins, directions, t_min, width: float, height: float):
    """Parameter interval [enter, leave] of each line origin + t * direction inside [0, W] x [0, H]."""
    enter = t_min.clone()
    leave = torch.full_like(enter, math.inf)
    for axis, size in ((0, width), (1, height)):
        o, d = origins[..., axis], directions[..., axis]
        parallel = d.abs() < 1e-12
        safe_d = torch.where(parallel, torch.ones_like(d), d)
        t0, t1 = (0.0 - o) / safe_d, (size - o) / safe_d
        low, high = torch.minimum(t0, t1), torch.maximum(t0, t1)
        outside = parallel & ((o < 0) | (o > size))
        inf, minus_inf = torch.full_like(o, math.inf), torch.full_like(o, -math.inf)
        low = torch.where(parallel, torch.where(outside, inf, minus_inf), low)
        high = torch.where(parallel, torch.where(outside, minus_inf, inf), high)
        enter, leave = torch.maximum(enter, low), torch.minimum(leave, high)
    return enter, leave


def sweep_lines(vps, batch_size: int, height: int, width: int, num_lines: int = 1000,
                samples_per_line: int | None = None, device=None, dtype=torch.float32):
    """The sweep of ``num_lines`` lines through each VP, and the BxK mask of usable VPs.

    ``samples_per_line`` defaults to max(H, W): about one sample per pixel along the longest line.
    """
    homogeneous, usable = as_homogeneous(vps, batch_size)
    samples = int(samples_per_line or max(height, width))
    # Work in coordinates shifted by half a pixel, where the image covers [0, W] x [0, H].
    W, H = float(width), float(height)
    corners = torch.tensor([[0.0, 0.0], [W, 0.0], [0.0, H], [W, H]], dtype=torch.float64)
    homogeneous = homogeneous.clone()
    homogeneous[..., :2] += 0.5 * homogeneous[..., 2:]
    at_infinity = homogeneous[..., 2] == 0
    fractions = (torch.arange(num_lines, dtype=torch.float64) + 0.5) / num_lines  # N

    # Finite VPs: rays from the point.
    points = homogeneous[..., :2]
    start, span, inside = _angular_range(points, corners, W, H)
    ray_fractions = torch.where(inside.unsqueeze(-1), (fractions - 0.5 / num_lines).expand(*inside.shape, -1),
                                fractions.expand(*inside.shape, -1))
    angles = start.unsqueeze(-1) + span.unsqueeze(-1) * ray_fractions  # BxKxN
    ray_directions = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    ray_origins = points.unsqueeze(-2).expand_as(ray_directions)

    # VPs at infinity: parallel lines, offset along the normal across the image.
    direction = homogeneous[..., :2]
    normal = torch.stack([-direction[..., 1], direction[..., 0]], dim=-1)
    offsets = normal @ corners.t()  # BxKx4
    low, high = offsets.min(dim=-1).values, offsets.max(dim=-1).values
    line_offsets = low.unsqueeze(-1) + (high - low).unsqueeze(-1) * fractions  # BxKxN
    pencil_origins = line_offsets.unsqueeze(-1) * normal.unsqueeze(-2)
    pencil_directions = direction.unsqueeze(-2).expand_as(pencil_origins)

    flag = at_infinity.view(*at_infinity.shape, 1, 1)
    origins = torch.where(flag, pencil_origins, ray_origins)
    directions = torch.where(flag, pencil_directions, ray_directions)
    t_min = torch.where(at_infinity.unsqueeze(-1), torch.full_like(angles, -math.inf), torch.zeros_like(angles))
    enter, leave = _clip_to_image(origins, directions, t_min, W, H)
    valid = (leave - enter > 1e-6) & usable.unsqueeze(-1)
    enter = torch.where(valid, enter, torch.zeros_like(enter))
    leave = torch.where(valid, leave, torch.zeros_like(leave))

    steps = (torch.arange(samples, dtype=torch.float64) + 0.5) / samples  # S
    t = enter.unsqueeze(-1) + (leave - enter).unsqueeze(-1) * steps  # BxKxNxS
    positions = origins.unsqueeze(-2) + t.unsqueeze(-1) * directions.unsqueeze(-2)  # BxKxNxSx2
    scale = torch.tensor([2.0 / W, 2.0 / H], dtype=torch.float64)
    grid = positions * scale - 1.0
    grid = torch.where(valid.view(*valid.shape, 1, 1), grid, torch.full_like(grid, -2.0))  # off-image: zeros
    line_normals = torch.stack([-directions[..., 1], directions[..., 0]], dim=-1)
    B, K = homogeneous.shape[:2]
    sweep = Sweep(
        grid=grid.reshape(B, K * num_lines, samples, 2).to(dtype).to(device),  # cast on the CPU: MPS has no float64
        normals=line_normals.to(dtype).to(device),  # cast on the CPU: MPS has no float64
        valid=valid.to(device=device),
    )
    return sweep, usable.to(device=device)
