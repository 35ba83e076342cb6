"""A vectorised triangle z-buffer in torch (CPU or GPU), no per-pixel Python loops.

Every triangle lists the pixel centres of its bounding box as candidates (flattened with repeat_interleave, in
chunks so a triangle blown up close to the camera cannot exhaust memory); a candidate inside the triangle packs
its depth's float bits above the triangle id into one int64 key, and scatter_reduce(amin) keeps the nearest
triangle per pixel, ties going to the lower id. Depth is interpolated as 1/z, exact for planar triangles.
A pixel centre on a shared edge is claimed by both triangles (tolerance eps), so shared edges never crack.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_NO_HIT = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF


@dataclass
class RasterHits:
    pixel: torch.Tensor     # M int64 flat pixel index (row * W + col) of every covered pixel
    triangle: torch.Tensor  # M int64 id of the nearest triangle there
    bary: torch.Tensor      # M x 3 screen-space barycentrics of the pixel centre in that triangle
    inv_z: torch.Tensor     # M 1/z of the surface there


def rasterise(x: torch.Tensor, y: torch.Tensor, inv_z: torch.Tensor, valid: torch.Tensor, height: int, width: int,
              max_candidates: int = 1 << 22, eps: float = 1e-5) -> RasterHits:
    """x, y: T x 3 pixel coordinates of the vertices; inv_z: T x 3 their 1/z (> 0); valid: T bool."""
    dev = x.device
    T = x.shape[0]
    HW = height * width
    if T >= (1 << 32):
        raise ValueError("too many triangles for the packed z-buffer key")
    e1x, e1y = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
    e2x, e2y = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
    area2 = e1x * e2y - e1y * e2x
    valid = valid & torch.isfinite(area2) & (area2.abs() > 1e-12) & torch.isfinite(x).all(1) & torch.isfinite(y).all(1)
    safe_x = torch.where(valid[:, None], x, torch.zeros_like(x))
    safe_y = torch.where(valid[:, None], y, torch.zeros_like(y))
    x0 = torch.ceil(safe_x.amin(1)).clamp(0, width)
    x1 = torch.floor(safe_x.amax(1)).clamp(-1, width - 1)
    y0 = torch.ceil(safe_y.amin(1)).clamp(0, height)
    y1 = torch.floor(safe_y.amax(1)).clamp(-1, height - 1)
    bw = (x1 - x0 + 1).clamp(min=0).to(torch.int64)
    bh = (y1 - y0 + 1).clamp(min=0).to(torch.int64)
    count = torch.where(valid, bw * bh, torch.zeros_like(bw))

    inv_area = 1.0 / torch.where(valid, area2, torch.ones_like(area2))
    # per-triangle affine forms, in coordinates local to the bounding box so float32 keeps its precision
    table = torch.stack([
        x0 - x[:, 0], y0 - y[:, 0],               # offset of the box corner from vertex 0
        e2y * inv_area, e2x * inv_area,             # barycentric of vertex 1: (X e2y - Y e2x) / area2
        e1x * inv_area, e1y * inv_area,             # barycentric of vertex 2: (Y e1x - X e1y) / area2
        inv_z[:, 0], inv_z[:, 1] - inv_z[:, 0], inv_z[:, 2] - inv_z[:, 0],
    ], dim=1)
    itable = torch.stack([x0.to(torch.int64), y0.to(torch.int64), bw], dim=1)

    buf = torch.full((HW + 1,), _NO_HIT, dtype=torch.int64, device=dev)  # last slot swallows misses
    live = torch.nonzero(count).squeeze(1)
    if live.numel():
        ends = torch.cumsum(count[live], 0)
        # chunk boundaries so that no chunk holds more than max_candidates (a single huge triangle stands alone)
        starts_at = [0]
        total = int(ends[-1])
        if total > max_candidates:
            cut = torch.searchsorted(ends, torch.arange(max_candidates, total, max_candidates, device=dev))
            starts_at += sorted(set(int(c) for c in cut.tolist()) - {0})
        starts_at.append(live.numel())
        for a, b in zip(starts_at[:-1], starts_at[1:]):
            if b > a:
                _raster_chunk(live[a:b], count, table, itable, width, HW, eps, buf)

    key = buf[:HW]
    pixel = torch.nonzero(key != _NO_HIT).squeeze(1)
    tri = key[pixel] & _LOW32
    py = torch.div(pixel, width, rounding_mode="floor")
    px = pixel - py * width
    X = px.to(x.dtype) - x[tri, 0]
    Y = py.to(x.dtype) - y[tri, 0]
    t = table[tri]
    b1 = (X * t[:, 2] - Y * t[:, 3]).clamp(0, 1)
    b2 = (Y * t[:, 4] - X * t[:, 5]).clamp(0, 1)
    s = b1 + b2
    over = s > 1
    b1 = torch.where(over, b1 / s, b1)
    b2 = torch.where(over, b2 / s, b2)
    bary = torch.stack([1 - b1 - b2, b1, b2], dim=1)
    iz = (bary * inv_z[tri]).sum(1)
    return RasterHits(pixel, tri, bary, iz)


def _raster_chunk(tris, count, table, itable, width, HW, eps, buf):
    cnt = count[tris]
    n = int(cnt.sum())
    local = torch.repeat_interleave(torch.arange(tris.numel(), device=tris.device), cnt, output_size=n)
    tid = tris[local]
    first = torch.cumsum(cnt, 0) - cnt
    k = torch.arange(n, device=tris.device) - first[local]
    it = itable[tid]
    dy = torch.div(k, it[:, 2], rounding_mode="floor")
    dx = k - dy * it[:, 2]
    t = table[tid]
    X = t[:, 0] + dx.to(t.dtype)
    Y = t[:, 1] + dy.to(t.dtype)
    b1 = X * t[:, 2] - Y * t[:, 3]
    b2 = Y * t[:, 4] - X * t[:, 5]
    iz = t[:, 6] + b1 * t[:, 7] + b2 * t[:, 8]
    inside = (b1 >= -eps) & (b2 >= -eps) & (b1 + b2 <= 1 + eps) & (iz > 0)
    z = 1.0 / iz
    key = (z.view(torch.int32).to(torch.int64) << 32) | tid
    pix = torch.where(inside, (it[:, 1] + dy) * width + it[:, 0] + dx, torch.full_like(dx, HW))
    buf.scatter_reduce_(0, pix, key, reduce="amin")
