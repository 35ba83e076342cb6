"""A vectorised triangle z-buffer in torch (CPU or GPU), no per-pixel Python loops.

Every triangle lists the pixel centres of its bounding box as candidates; a candidate inside the triangle packs
its depth's float bits above the triangle id into one int64 key, and scatter_reduce(amin) keeps the nearest
triangle per pixel, ties going to the lower id. Triangles about a pixel across (almost all of them in a moved
photo) have at most 2x2 centres in their box: one pass tests every box's first centre, three more only the boxes
that have a second column, row or both; larger triangles enumerate their boxes (flattened with
repeat_interleave, in chunks so that a triangle blown up close to the camera cannot exhaust memory). Depth is
interpolated as 1/z, exact for planar triangles. A pixel centre on a shared edge is claimed by both triangles
(tolerance eps), so shared edges never crack.

Arrays are vertex-major, (3, T), and per-triangle tables one tensor per field, so every elementwise op runs on
contiguous memory; gathers use 1-D index_select, and masks multiply instead of torch.where, both much faster on
the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import GeometryError

_NO_HIT = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF


@dataclass
class RasterHits:
    pixel: torch.Tensor     # M int64 flat pixel index (row * W + col) of every covered pixel
    triangle: torch.Tensor  # M int64 id of the nearest triangle (or point) there
    bary: torch.Tensor      # 3 x M screen-space barycentrics of the pixel centre in that triangle
    inv_z: torch.Tensor     # M 1/z of the surface there


class _Triangles:
    """Per-triangle affine forms, in coordinates local to the bounding-box corner (x0, y0) so that float32 keeps
    its precision: at pixel (x0 + dx, y0 + dy), with X = ox + dx, Y = oy + dy,
    b1 = X * a1 - Y * c1, b2 = Y * a2 - X * c2 (barycentrics of vertices 1, 2), 1/z = iz0 + b1 * d1 + b2 * d2;
    box width bw and height bh in pixel centres (0: nothing to draw). One contiguous 1-D tensor per field:
    selecting triangles is one 1-D index_select per field, the fastest gather on the CPU."""
    FIELDS = ("ox", "oy", "a1", "c1", "a2", "c2", "iz0", "d1", "d2", "x0", "y0")  # what drawing a centre reads

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def rows(self, idx: torch.Tensor, extra: tuple = ()) -> "_Triangles":
        return _Triangles(**{k: getattr(self, k).index_select(0, idx) for k in self.FIELDS + extra})


def rasterise(x: torch.Tensor, y: torch.Tensor, inv_z: torch.Tensor, valid: torch.Tensor, height: int, width: int,
              points=None, max_candidates: int = 1 << 22, eps: float = 1e-5) -> RasterHits:
    """x, y: 3 x T pixel coordinates of the triangles' vertices; inv_z: 3 x T their 1/z (> 0); valid: T bool.

    points: optional (x, y, inv_z, valid), P each: single points splatted to their nearest pixel centre, with ids
    T .. T + P - 1 (barycentrics (1, 0, 0)); on an exact depth tie a triangle wins over a point.
    """
    dev = x.device
    T = x.shape[1]
    HW = height * width
    P = 0 if points is None else int(points[0].numel())
    if T + P >= (1 << 32):
        raise ValueError("too many triangles for the packed z-buffer key")
    tri = _setup(x, y, inv_z, valid, height, width)
    buf = torch.full((HW + 1,), _NO_HIT, dtype=torch.int64, device=dev)  # the last slot swallows misses
    small = (tri.bw <= 2) & (tri.bh <= 2)
    _draw(torch.arange(T, device=dev), 0, 0, tri, small & (tri.bw > 0) & (tri.bh > 0), width, HW, eps, buf)
    for dx, dy in ((1, 0), (0, 1), (1, 1)):
        ids = torch.nonzero(small & (tri.bw > dx) & (tri.bh > dy)).squeeze(1)
        if ids.numel():
            _draw(ids, dx, dy, tri.rows(ids), True, width, HW, eps, buf)
    big = torch.nonzero(~small & (tri.bw > 0) & (tri.bh > 0)).squeeze(1)
    if big.numel():
        _draw_boxes(big, tri, width, HW, eps, buf, max_candidates)
    if P:
        px_, py_, piz, pok = points
        cx = torch.floor(px_ + 0.5)
        cy = torch.floor(py_ + 0.5)
        ok = pok & (piz > 0) & (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
        key = ((1.0 / piz).view(torch.int32).to(torch.int64) << 32) | (torch.arange(P, device=dev) + T)
        pix = torch.where(ok, cy.clamp(0, height - 1).to(torch.int64) * width + cx.clamp(0, width - 1).to(torch.int64),
                          HW)
        buf.scatter_reduce_(0, pix, key, reduce="amin")

    key = buf[:HW]
    pixel = torch.nonzero(key != _NO_HIT).squeeze(1)
    t_id = key.index_select(0, pixel) & _LOW32
    py = torch.div(pixel, width, rounding_mode="floor")
    px = pixel - py * width
    is_point = t_id >= T
    w = tri.rows(t_id.clamp(max=max(T - 1, 0)))
    X = w.ox + (px - w.x0).to(x.dtype)
    Y = w.oy + (py - w.y0).to(x.dtype)
    b1 = (X * w.a1 - Y * w.c1).clamp(0, 1)
    b2 = (Y * w.a2 - X * w.c2).clamp(0, 1)
    scale = (1.0 / (b1 + b2).clamp(min=1.0)) * ~is_point  # renormalise the few that spill over; points: (1, 0, 0)
    b1 = b1 * scale
    b2 = b2 * scale
    iz = w.iz0 + b1 * w.d1 + b2 * w.d2
    if P:
        at = torch.nonzero(is_point).squeeze(1)
        iz[at] = points[2].index_select(0, t_id.index_select(0, at) - T)
    return RasterHits(pixel, t_id, torch.stack([1 - b1 - b2, b1, b2]), iz)


def _min3(a):
    return torch.minimum(torch.minimum(a[0], a[1]), a[2])


def _max3(a):
    return torch.maximum(torch.maximum(a[0], a[1]), a[2])


def _setup(x, y, inv_z, valid, height, width) -> _Triangles:
    e1x, e1y = x[1] - x[0], y[1] - y[0]
    e2x, e2y = x[2] - x[0], y[2] - y[0]
    area2 = e1x * e2y - e1y * e2x
    xmin, xmax, ymin, ymax = _min3(x), _max3(x), _min3(y), _max3(y)
    valid = (valid & torch.isfinite(area2) & (area2.abs() > 1e-12) & torch.isfinite(xmin) & torch.isfinite(xmax)
             & torch.isfinite(ymin) & torch.isfinite(ymax))
    # box of pixel centres, clipped to the image; invalid triangles get an empty box (bw = bh = 0) and their
    # other entries are never read
    x0 = torch.ceil(xmin.nan_to_num(0.0, 0.0, 0.0)).clamp(0, width)
    x1 = torch.floor(xmax.nan_to_num(0.0, 0.0, 0.0)).clamp(-1, width - 1)
    y0 = torch.ceil(ymin.nan_to_num(0.0, 0.0, 0.0)).clamp(0, height)
    y1 = torch.floor(ymax.nan_to_num(0.0, 0.0, 0.0)).clamp(-1, height - 1)
    bw = (x1 - x0 + 1).clamp(min=0).to(torch.int64) * valid
    bh = (y1 - y0 + 1).clamp(min=0).to(torch.int64) * valid
    inv_area = 1.0 / area2
    return _Triangles(ox=x0 - x[0], oy=y0 - y[0], a1=e2y * inv_area, c1=e2x * inv_area, a2=e1x * inv_area,
                      c2=e1y * inv_area, iz0=inv_z[0].contiguous(), d1=inv_z[1] - inv_z[0], d2=inv_z[2] - inv_z[0],
                      x0=x0.to(torch.int64), y0=y0.to(torch.int64), bw=bw, bh=bh)


def _draw(ids, dx, dy, t: _Triangles, use, width, HW, eps, buf):
    """Test the pixel centre (x0 + dx, y0 + dy) of every triangle (dx, dy: ints or tensors like ids) and z-buffer
    the ones inside (and in `use`, a mask or True)."""
    X = t.ox + dx
    Y = t.oy + dy
    b1 = X * t.a1 - Y * t.c1
    b2 = Y * t.a2 - X * t.c2
    iz = t.iz0 + b1 * t.d1 + b2 * t.d2
    inside = (b1 >= -eps) & (b2 >= -eps) & (b1 + b2 <= 1 + eps) & (iz > 0)
    if use is not True:
        inside &= use
    key = ((1.0 / iz).view(torch.int32).to(torch.int64) << 32) | ids
    pix = ((t.y0 + dy) * width + t.x0 + dx - HW) * inside + HW
    buf.scatter_reduce_(0, pix, key, reduce="amin")


def _draw_boxes(big, tri: _Triangles, width, HW, eps, buf, max_candidates):
    dev = big.device
    count = tri.bw.index_select(0, big) * tri.bh.index_select(0, big)
    ends = torch.cumsum(count, 0)
    # chunk boundaries so that no chunk holds more than max_candidates (a single huge triangle stands alone)
    starts_at = [0]
    total = int(ends[-1])
    if total > 256 * HW:
        raise GeometryError("the moved object comes so close to the camera that its surface would cover the image "
                            f"{total // HW} times over: move it further away from the camera")
    if total > max_candidates:
        cut = torch.searchsorted(ends, torch.arange(max_candidates, total, max_candidates, device=dev))
        starts_at += sorted(set(int(c) for c in cut.tolist()) - {0})
    starts_at.append(big.numel())
    for a, b in zip(starts_at[:-1], starts_at[1:]):
        if b <= a:
            continue
        tris, cnt = big[a:b], count[a:b]
        n = int(cnt.sum())
        local = torch.repeat_interleave(torch.arange(tris.numel(), device=dev), cnt, output_size=n)
        ids = tris.index_select(0, local)
        k = torch.arange(n, device=dev) - (torch.cumsum(cnt, 0) - cnt).index_select(0, local)
        rows = tri.rows(ids, ("bw",))
        dy = torch.div(k, rows.bw, rounding_mode="floor")
        _draw(ids, k - dy * rows.bw, dy, rows, True, width, HW, eps, buf)
