"""A vectorised z-buffer for quads (two triangles each) and points in torch (CPU or GPU), no per-pixel loops.

Quad q's corners are (TL, TR, BR, BL); triangle q is (TL, TR, BR) and triangle Q + q is (TL, BR, BL). Every
triangle lists the pixel centres of its bounding box as candidates; a candidate inside the triangle packs its
depth's float bits above the triangle id into one int64 key, and scatter_reduce(amin) keeps the nearest per pixel,
ties going to the lower id. The buffer starts at the background's depth (id 0xFFFFFFFF), so only surface in front
of the background is kept. Triangles about a pixel across (almost all of them in a moved photo) have at most 2x2
centres in their box: four passes test each of those centres for every triangle at once, with no gathers;
larger triangles enumerate their boxes (repeat_interleave, in chunks so that a triangle blown up close to the
camera cannot exhaust memory). Depth is interpolated as 1/z, exact for planar triangles. A pixel centre on a
shared edge is claimed by both triangles (tolerance eps), so shared edges never crack.

Validity is carried as 0/1 floats and a candidate that is not drawn gets an infinite depth instead of being
removed: float comparisons, products and one scatter per pass are far cheaper on the CPU than bool masks,
torch.where or compaction.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from .arrays import flat_nonzero, float_le
from .errors import GeometryError

_NO_ID = 0xFFFFFFFF                  # the id half of a key that is no triangle or point (background, nothing)
_FAR = torch.finfo(torch.float32).max
_LIM = 1e7                           # vertices further out than this many pixels are not drawn
# a key is written as two int32 halves: the id into the low one, the depth's float bits into the high one
_LO, _HI = (0, 1) if sys.byteorder == "little" else (1, 0)


@dataclass
class RasterHits:
    pixel: torch.Tensor     # M int64 flat pixel index (row * W + col) of every pixel a quad or point wins
    triangle: torch.Tensor  # M int64 id there: triangle (< 2Q) or point (2Q + i)
    depth: torch.Tensor     # M float32 z of the surface there (what the z-buffer compared)


def rasterise(u: torch.Tensor, v: torch.Tensor, inv_z: torch.Tensor, ok: torch.Tensor, height: int, width: int,
              points=None, background: torch.Tensor | None = None, max_candidates: int = 1 << 22,
              eps: float = 1e-5) -> RasterHits:
    """u, v: 4 x Q pixel coordinates of the quads' corners (TL, TR, BR, BL); inv_z: 4 x Q their 1/z (> 0 where
    drawn); ok: Q 0/1 floats or bools, the quads to draw.

    points: optional (u, v, inv_z, ok), P each: single points splatted to their nearest pixel centre, ids
    2Q .. 2Q + P - 1; on an exact depth tie a triangle wins over a point. background: HxW depth; surface behind
    it is not drawn (equal depth: the surface wins).
    """
    dev = u.device
    Q = u.shape[1]
    HW = height * width
    P = 0 if points is None else int(points[0].numel())
    if 2 * Q + P >= 1 << 31:
        raise ValueError("too many triangles for the packed z-buffer key")
    # the slack past HW swallows candidates outside the image (never drawn)
    buf = torch.full((HW + 2 * width + 2,), _key_of(_FAR, _NO_ID), dtype=torch.int64, device=dev)
    halves = buf.view(torch.int32).view(-1, 2)
    if background is not None:
        halves[:HW, _HI] = background.reshape(-1).to(torch.float32).view(torch.int32)
    ok = ok.to(torch.uint8).to(u.dtype) if ok.dtype == torch.bool else ok
    big = []
    for first, (a, b, c) in enumerate(((0, 1, 2), (0, 2, 3))):
        tri = _setup((u[a], u[b], u[c]), (v[a], v[b], v[c]), (inv_z[a], inv_z[b], inv_z[c]), ok, height, width,
                     eps)
        _draw_small(tri, _keys(torch.arange(first * Q, first * Q + Q, device=dev)), width, buf)
        big.append(flat_nonzero(tri.big))
        if big[-1].numel():
            big[-1] = (big[-1], tri, first * Q)
        else:
            big.pop()
    total = sum(int((t.bw.index_select(0, i) * t.bh.index_select(0, i)).sum()) for i, t, _ in big)
    if total > 256 * HW:
        raise GeometryError("the moved object comes so close to the camera that its surface would cover the image "
                            f"{total // HW} times over: move it further away from the camera")
    for i, t, offset in big:
        _draw_boxes(i, t, offset, width, buf, max_candidates)
    if P:
        _draw_points(points, 2 * Q, height, width, buf)
    ids = halves[:HW, _LO]
    pixel = flat_nonzero(ids != -1)
    depth = halves[:HW, _HI].index_select(0, pixel).view(torch.float32)
    return RasterHits(pixel, ids.index_select(0, pixel).to(torch.int64), depth)


def _key_of(depth: float, ident: int) -> int:
    return (int(torch.tensor(depth, dtype=torch.float32).view(torch.int32)) << 32) | ident


def _keys(ids: torch.Tensor) -> torch.Tensor:
    """An n x 2 int32 key buffer holding ids; each pass writes its depths into the other half. A positive
    float's bit pattern orders like the float, so the int64 keys order by depth, then by id."""
    key = torch.empty(ids.numel(), 2, dtype=torch.int32, device=ids.device)
    key[:, _LO] = ids
    return key


def _scatter(key: torch.Tensor, depth: torch.Tensor, pix: torch.Tensor, buf: torch.Tensor) -> None:
    key[:, _HI] = depth.to(torch.float32).view(torch.int32)
    buf.scatter_reduce_(0, pix, key.view(torch.int64).view(-1), reduce="amin")


class _Triangles:
    """Per-triangle tables, one contiguous 1-D tensor per field. At the box's first pixel centre (x0, y0): the
    barycentrics b1, b2, b3 of vertices 1, 2, 0 and 1/z (iz); their steps one centre to the right (*x) and down
    (*y); the first centre's flat pixel index pix0, the box size bw x bh in centres (<= 0: nothing to draw), and
    0/1 flags for the small (<= 2 x 2) boxes' four candidates."""
    STEPS = ("b1", "b2", "b3", "iz", "b1x", "b2x", "b3x", "izx", "b1y", "b2y", "b3y", "izy")

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _setup(x, y, iz, ok, height, width, eps) -> _Triangles:
    (xa, xb, xc), (ya, yb, yc), (za, zb, zc) = x, y, iz
    e1x, e1y, e2x, e2y = xb - xa, yb - ya, xc - xa, yc - ya
    area2 = e1x * e2y - e1y * e2x
    xmin, xmax = torch.minimum(torch.minimum(xa, xb), xc), torch.maximum(torch.maximum(xa, xb), xc)
    ymin, ymax = torch.minimum(torch.minimum(ya, yb), yc), torch.maximum(torch.maximum(ya, yb), yc)
    # NaN fails every comparison, so non-finite triangles drop out here
    ok = (ok * float_le(-_LIM, xmin) * float_le(xmax, _LIM) * float_le(-_LIM, ymin) * float_le(ymax, _LIM)
          * float_le(1e-12, area2.abs()))
    x0 = torch.ceil(xmin).clamp_(0, width).nan_to_num_(0.0)
    y0 = torch.ceil(ymin).clamp_(0, height).nan_to_num_(0.0)
    bw = torch.floor(xmax).clamp_(-1, width - 1) - x0 + 1
    bh = torch.floor(ymax).clamp_(-1, height - 1) - y0 + 1
    has = ok * float_le(1.0, bw) * float_le(1.0, bh)
    small = float_le(bw, 2.0) * float_le(bh, 2.0)
    ok00 = has * small
    okx, oky = ok00 * float_le(2.0, bw), ok00 * float_le(2.0, bh)
    inv_area = 1.0 / area2
    a1, c1, a2, c2 = e2y * inv_area, e2x * inv_area, e1x * inv_area, e1y * inv_area
    ox, oy = x0 - xa, y0 - ya
    b1 = ox * a1 - oy * c1
    b2 = oy * a2 - ox * c2
    d1, d2 = zb - za, zc - za
    # the barycentrics carry the edge tolerance: a centre is inside when all three are >= 0
    return _Triangles(b1=b1 + eps, b2=b2 + eps, b3=(1.0 + eps) - b1 - b2, iz=za + b1 * d1 + b2 * d2,
                      b1x=a1, b2x=-c2, b3x=c2 - a1, izx=a1 * d1 - c2 * d2,
                      b1y=-c1, b2y=a2, b3y=c1 - a2, izy=a2 * d2 - c1 * d1,
                      pix0=_flat_index(x0, y0, width, height), bw=bw, bh=bh,
                      ok00=ok00, okx=okx, oky=oky, okxy=okx * float_le(2.0, bh), big=(has - ok00) > 0)


def _flat_index(x0, y0, width, height):
    """int64 y0 * width + x0 from integer-valued floats: in float32 while that is exact (below 2**24), else in
    int64 (not float64, which MPS lacks)."""
    if (height + 2) * width >= 1 << 24:
        return y0.to(torch.int64) * width + x0.to(torch.int64)
    return (y0 * width + x0).to(torch.int64)


def _test(b1, b2, b3, iz, ok, key, pix, buf):
    """z-buffer the candidates inside their triangle (barycentrics with the tolerance added), in front of the camera
    and in `ok`."""
    inside = float_le(0.0, torch.minimum(torch.minimum(torch.minimum(b1, b2), b3), iz))
    _scatter(key, torch.reciprocal(iz * (inside * ok)).abs_(), pix, buf)  # +inf (or NaN > inf): not drawn


def _draw_small(t: _Triangles, key, width, buf):
    """The up to 2 x 2 centres of every small box, each in one pass over all triangles."""
    right = (t.b1 + t.b1x, t.b2 + t.b2x, t.b3 + t.b3x, t.iz + t.izx)
    _test(t.b1, t.b2, t.b3, t.iz, t.ok00, key, t.pix0, buf)
    _test(*right, t.okx, key, t.pix0 + 1, buf)
    _test(t.b1 + t.b1y, t.b2 + t.b2y, t.b3 + t.b3y, t.iz + t.izy, t.oky, key, t.pix0 + width, buf)
    _test(right[0] + t.b1y, right[1] + t.b2y, right[2] + t.b3y, right[3] + t.izy, t.okxy, key,
          t.pix0 + (width + 1), buf)


def _draw_boxes(big, t: _Triangles, offset, width, buf, max_candidates):
    """Every centre of the larger boxes, enumerated in chunks of at most max_candidates (a huge triangle alone)."""
    dev = big.device
    bw = t.bw.index_select(0, big).to(torch.int64)
    count = bw * t.bh.index_select(0, big).to(torch.int64)
    ends = torch.cumsum(count, 0)
    total = int(ends[-1])
    starts_at = [0]
    if total > max_candidates:
        cut = torch.searchsorted(ends, torch.arange(max_candidates, total, max_candidates, device=dev))
        starts_at += sorted(set(int(c) for c in cut.tolist()) - {0})
    starts_at.append(big.numel())
    for a, b in zip(starts_at[:-1], starts_at[1:], strict=True):
        if b <= a:
            continue
        cnt = count[a:b]
        n = int(cnt.sum())
        local = torch.repeat_interleave(torch.arange(b - a, device=dev), cnt, output_size=n)
        which = big[a:b].index_select(0, local)
        k = torch.arange(n, device=dev) - (torch.cumsum(cnt, 0) - cnt).index_select(0, local)
        w = bw[a:b].index_select(0, local)
        dy = torch.div(k, w, rounding_mode="floor")
        dx = k - dy * w
        f = {name: getattr(t, name).index_select(0, which) for name in _Triangles.STEPS}
        fx, fy = dx.to(f["b1"].dtype), dy.to(f["b1"].dtype)
        vals = [f[n] + fx * f[n + "x"] + fy * f[n + "y"] for n in ("b1", "b2", "b3", "iz")]
        pix = t.pix0.index_select(0, which) + dx + dy * width
        _test(*vals, 1.0, _keys(which + offset), pix, buf)


def _draw_points(points, first_id, height, width, buf):
    pu, pv, piz, pok = points
    cx, cy = torch.floor(pu + 0.5), torch.floor(pv + 0.5)
    ok = pok & (piz > 0) & (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
    key = _keys(torch.arange(first_id, first_id + pu.numel(), device=pu.device))
    pix = torch.where(ok, cy.nan_to_num(0.0).clamp(0, height - 1).to(torch.int64) * width
                      + cx.nan_to_num(0.0).clamp(0, width - 1).to(torch.int64), height * width)
    _scatter(key, 1.0 / piz, pix, buf)
