"""An object's depth as a watertight surface of per-pixel quads, ready to move and rasterise.

Each masked pixel becomes a quad whose corners sit at the pixel's corners (u +- 0.5, v +- 0.5), so at rest the
quads tile exactly the mask (a pixel's footprint), and magnified they still tile the object with no holes.

Neighbouring pixels (edge and diagonal) are JOINED when their depths differ by at most `discontinuity`; a larger
jump splits the surface there instead of stretching a "rubber sheet" across it. Every corner takes its depth from
the pixels around it that are joined, directly or through each other (the connected component of the join graph
among the up-to-4 pixels at that corner), and all pixels of a component get the same value: two quads joined
across an edge share both corners exactly, so the surface is watertight by construction, and the result does not
depend on which pixel asks. The value is the mean, over the component, of each pixel's inverse depth extrapolated
to the corner with its own inverse-depth gradient (a least-squares fit to its joined neighbours): 1/z is affine in
(u, v) on a plane, so every term, and the mean, is exact for any plane, at the mask border too.

Pixels within `rim_px` of the mask's outline are flagged: depth estimators blur the depth jump at an object's
silhouette into a ramp about that wide, which the reprojection treats apart (see reprojection.py).

Corner arrays are corner-major (4 x N: TL, TR, BR, BL), so each corner's values are contiguous. The maps are
computed on the mask's bounding box with shifted slices, 0/1 float masks and bool algebra (no gathers, no
torch.where: both are slow on the CPU).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import flat_nonzero, float_le

CORNER_DXY = ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5))  # (du, dv) of TL, TR, BR, BL
PLANE_TOLERANCE = 0.1  # how closely a large step of 1/z must repeat on both sides to count as a plane, as a share
#                        of the discontinuity threshold


def silhouette_px(height: int, width: int) -> int:
    """How far in from the outline a depth estimator's silhouette ramp reaches: 3 pixels at 512, scaled."""
    return max(1, int(round(3 * max(height, width) / 512)))


@dataclass
class PixelQuads:
    pix_x: torch.Tensor       # N int64 source column of each quad's pixel
    pix_y: torch.Tensor       # N int64 source row
    depth: torch.Tensor       # N the pixel's own z-depth
    corner_inv: torch.Tensor  # 4 x N 1/z at the corners
    split: torch.Tensor       # N bool: a masked neighbour is not joined (the quad is cut loose there)
    rim: torch.Tensor         # N bool: within rim_px pixels of the mask's outline

    def __len__(self) -> int:
        return int(self.pix_x.numel())


def build_pixel_quads(depth: torch.Tensor, mask: torch.Tensor, discontinuity: float = 0.1,
                      rim_px: int = 3) -> PixelQuads | None:
    """Quads for the pixels of `mask` (HxW bool) on `depth` (HxW, > 0); None for an empty mask.

    discontinuity: neighbours whose depths differ by more than this fraction of the nearer one are not joined.
    """
    H, W = depth.shape
    flat = flat_nonzero(mask.reshape(-1))
    if flat.numel() == 0:
        return None
    pix_y = torch.div(flat, W, rounding_mode="floor")
    pix_x = flat - pix_y * W
    # the mask's bounding box, padded by one unmasked pixel all round: neighbours are plain shifted slices
    y0, y1, x0, x1 = (int(a) for a in (pix_y.min(), pix_y.max(), pix_x.min(), pix_x.max()))
    inv = F.pad((1.0 / depth[y0:y1 + 1, x0:x1 + 1])[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    m = F.pad(mask[y0:y1 + 1, x0:x1 + 1].to(torch.uint8).to(depth.dtype), (1, 1, 1, 1))
    k = 1.0 + float(discontinuity)
    joins = _joins(inv, m, k)
    c = inv[1:-1, 1:-1]
    gx, gy, n_joined = _gradient(inv, joins)
    va, vb, vc, vd = _corner_values(c, gx, gy, joins, k)                 # on the (h+1) x (w+1) corner grid
    h, w = c.shape
    local = (pix_y - y0) * (w + 1) + (pix_x - x0)                         # TL corner of each pixel, corner grid
    # a pixel is node d of its TL corner, c of its TR, a of its BR and b of its BL
    corner_inv = torch.stack([g.reshape(-1).index_select(0, local + o)
                              for g, o in ((vd, 0), (vc, 1), (va, w + 2), (vb, w + 1))])
    in_box = (pix_y - y0) * w + (pix_x - x0)
    split = (_masked_neighbours(m) - n_joined).reshape(-1).index_select(0, in_box) > 0.5
    rim = _near_outline(m, rim_px).reshape(-1).index_select(0, in_box)
    return PixelQuads(pix_x, pix_y, depth.reshape(-1).index_select(0, flat), corner_inv, split, rim)


def _joins(inv, m, k):
    """0/1 joins of every neighbour pair on the padded box: horizontal (y, x)-(y, x+1), vertical (y, x)-(y+1, x),
    diagonal (y, x)-(y+1, x+1) and anti-diagonal (y, x+1)-(y+1, x). Joined: both masked and either the farther
    depth at most k times the nearer, or the pair continues a plane: 1/z is affine along a line on a plane, so on a
    grazing one (a floor receding to the horizon) the step of 1/z across the pair is the step of the pair before
    it and of the pair after it (those that are masked, at least one), to within PLANE_TOLERANCE of the threshold;
    a step edge has a flat run on each side, and tears."""
    out = []
    for (dy, dx), a, b, ma, mb in (((0, 1), inv[:, :-1], inv[:, 1:], m[:, :-1], m[:, 1:]),
                                   ((1, 0), inv[:-1, :], inv[1:, :], m[:-1, :], m[1:, :]),
                                   ((1, 1), inv[:-1, :-1], inv[1:, 1:], m[:-1, :-1], m[1:, 1:]),
                                   ((1, -1), inv[:-1, 1:], inv[1:, :-1], m[:-1, 1:], m[1:, :-1])):
        both = ma * mb
        near = float_le(a, b * k) * float_le(b, a * k)
        step = b - a
        tol = PLANE_TOLERANCE * (k - 1.0) * torch.minimum(a, b)
        plane, seen = both.clone(), torch.zeros_like(both)
        for sy, sx in ((dy, dx), (-dy, -dx)):   # the pair before and the pair after, where there is one
            there = _shifted(both, sy, sx)
            plane *= 1.0 - there * (1.0 - float_le((step - _shifted(step, sy, sx)).abs(), tol))
            seen = torch.maximum(seen, there)
        out.append(both * torch.maximum(near, plane * seen))
    return out


def _shifted(t, dy, dx):
    """t moved by (dy, dx): out[y, x] = t[y - dy, x - dx], zero where that is outside."""
    out = torch.zeros_like(t)
    h, w = t.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = t[ys, xs]
    return out


def _gradient(inv, joins):
    """Per-pixel least-squares gradient (d/du, d/dv) of 1/z from the joined 8-neighbours; exact on a plane. With
    collinear neighbours only, the gradient along them (minimum norm); with none, 0."""
    jh, jv, jd, ja = joins
    qh = jh * (inv[:, 1:] - inv[:, :-1])        # joined forward differences, one per pair
    qv = jv * (inv[1:, :] - inv[:-1, :])
    qd = jd * (inv[1:, 1:] - inv[:-1, :-1])
    qa = ja * (inv[1:, :-1] - inv[:-1, 1:])     # from (y, x+1) to (y+1, x): direction (-1, +1)
    # each pixel sees a pair from both ends: the differences towards the pixel's +x/+y side add up
    sh = qh[1:-1, 1:] + qh[1:-1, :-1]
    sv = qv[1:, 1:-1] + qv[:-1, 1:-1]
    sd = qd[1:, 1:] + qd[:-1, :-1]
    sa = qa[1:, :-1] + qa[:-1, 1:]
    nh = jh[1:-1, 1:] + jh[1:-1, :-1]
    nv = jv[1:, 1:-1] + jv[:-1, 1:-1]
    nd = jd[1:, 1:] + jd[:-1, :-1]
    na = ja[1:, :-1] + ja[:-1, 1:]
    bx, by = sh + sd - sa, sv + sd + sa
    sxx, syy, sxy = nh + nd + na, nv + nd + na, nd - na
    det = sxx * syy - sxy * sxy                  # integer-valued: 0 exactly when the neighbours are collinear
    full = float_le(1.0, det)        # det >= 1
    inv_det = full / (det + (1.0 - full))
    # rank 1 (A = s d d^T): the minimum-norm solution is b / trace(A); rank 0 has b = 0
    inv_tr = (1.0 - full) / (sxx + syy).clamp(min=1.0)
    gx = (syy * bx - sxy * by) * inv_det + bx * inv_tr
    gy = (sxx * by - sxy * bx) * inv_det + by * inv_tr
    return gx, gy, nh + nv + nd + na


def _corner_values(c, gx, gy, joins, k):
    """1/z at every corner of the (h+1) x (w+1) corner grid, for each of the 4 pixels around it: a (up left),
    b (up right), c (down left), d (down right), each the mean over its connected component there."""
    # each pixel's own extrapolation to its 4 corners. Joined neighbours differ by at most (k - 1) c, so half a
    # pixel of gradient moves c by well under a quarter for k <= 1.25; larger k can overshoot to 1/z <= 0, so
    # it is kept within a factor k^2 (never active on planes)
    s, t = 0.5 * (gx + gy), 0.5 * (gx - gy)
    e_tl, e_tr, e_br, e_bl = c - s, c + t, c + s, c - t
    if k > 1.25:
        lo, hi = c / (k * k), c * (k * k)
        e_tl, e_tr, e_br, e_bl = (torch.minimum(torch.maximum(v, lo), hi) for v in (e_tl, e_tr, e_br, e_bl))
    pad = lambda e: F.pad(e, (1, 1, 1, 1))  # noqa: E731 - the pad ring is unmasked, so never in a component
    ea, eb, ec, ed = pad(e_br)[:-1, :-1], pad(e_bl)[:-1, 1:], pad(e_tr)[1:, :-1], pad(e_tl)[1:, 1:]
    jh, jv, jd, ja = joins
    # bool copies (contiguous): boolean algebra is several times cheaper than float on the CPU
    ab, cd, ac, bd, ad, bc = (j.to(torch.bool) for j in (jh[:-1, :], jh[1:, :], jv[:, :-1], jv[:, 1:], jd, ja))

    def conn(direct, via1, via2, long1, long2):
        f = direct | via1 | via2 | long1 | long2
        return f.view(torch.uint8).to(e_tl.dtype)
    # two nodes are in one component when joined directly, through one of the others, or through both
    c_ab = conn(ab, ac & bc, ad & bd, ac & cd & bd, ad & cd & bc)
    c_cd = conn(cd, ac & ad, bc & bd, ac & ab & bd, bc & ab & ad)
    c_ac = conn(ac, ab & bc, ad & cd, ab & bd & cd, ad & bd & bc)
    c_bd = conn(bd, ab & ad, bc & cd, ab & ac & cd, bc & ac & ad)
    c_ad = conn(ad, ab & bd, ac & cd, ab & bc & cd, ac & bc & bd)
    c_bc = conn(bc, ab & ac, bd & cd, ab & ad & cd, bd & ad & ac)

    def mean(e, pairs):
        num, den = e.clone(), 1.0 + pairs[0][0] + pairs[1][0] + pairs[2][0]
        for w_, e_ in pairs:
            num.addcmul_(w_, e_)
        return num / den
    return (mean(ea, ((c_ab, eb), (c_ac, ec), (c_ad, ed))), mean(eb, ((c_ab, ea), (c_bc, ec), (c_bd, ed))),
            mean(ec, ((c_ac, ea), (c_bc, eb), (c_cd, ed))), mean(ed, ((c_ad, ea), (c_bd, eb), (c_cd, ec))))


def _near_outline(m, r):
    """Box pixels within r pixels (chessboard) of an unmasked one, bool: a dilation of the outside by separable
    shifted ORs (max pooling is far slower on the CPU)."""
    out = F.pad(m < 0.5, (r - 1,) * 4, value=True)   # the padded box already has one unmasked ring
    for axis in (1, 0):
        n = out.shape[axis] - 2 * r
        acc = out.narrow(axis, 0, n)
        for i in range(1, 2 * r + 1):
            acc = acc | out.narrow(axis, i, n)
        out = acc
    return out


def _masked_neighbours(m):
    """Per box pixel: how many of its 8 neighbours are masked (a separable 3 x 3 box sum, less the pixel)."""
    rows = m[:, :-2] + m[:, 1:-1] + m[:, 2:]
    return rows[:-2] + rows[1:-1] + rows[2:] - m[1:-1, 1:-1]


NEVER_CUT = 2.0  # a ramp limit above any |cos|
WELD_TOLERANCE = 1e-5  # corners whose 1/z agree this closely (relative) are one vertex: float32 rounding of a mean


@dataclass
class SurfaceMesh:
    """The surface as a mesh Blender builds with ``foreach_set``: shared corners welded into vertices."""
    points: np.ndarray  # N x 3 float32, engine frame (OpenCV)
    uv: np.ndarray      # N x 2 float32 into the full photo, (0, 0) bottom-left as Blender's UVs have it
    quads: np.ndarray   # F x 4 int32 vertex indices, counter-clockwise seen from the camera (TL, BL, BR, TR)
    cells: np.ndarray   # F x 2 int64 (x, y) of each quad's cell in the mesh's cell grid
    ramp_limit: np.ndarray  # F float32: cut the face when |cos| of its slant to the camera exceeds this (see below)

    def save(self, folder, prefix: str, protected: dict | None = None) -> dict:
        """Each array as ``<folder>/<prefix>_<key>.npy``, written atomically and never over one of ``protected``
        (``{label: path}``, the job's inputs)."""
        from ..io.safe_write import write_atomic

        paths = {}
        for key in ("points", "uv", "quads", "ramp_limit"):
            array = getattr(self, key)
            path = write_atomic(folder / f"{prefix}_{key}.npy", lambda where, array=array: np.save(where, array),
                                protected)
            paths[key] = str(path)
        return paths


def cell_count(start: int, stop: int, step: int) -> int:
    """How many cells of ``step`` pixels cover pixels start..stop-1 (the last may reach past stop)."""
    return -(-(stop - start) // step)


def sample_cells(depth: np.ndarray, mask: np.ndarray | None, step: int = 1, origin=(0, 0), cells=None):
    """The surface's inputs on a grid of ``step`` x ``step`` pixel cells starting at pixel ``origin`` (x, y),
    ``cells`` (columns, rows) long (default: to the photo's far edge; the last cells may reach past it).

    Returns (cell z-depth, cell mask): 1/z sampled exactly at each cell's centre (bilinear between the pixels
    around it, so a plane stays a plane; clamped to the photo past its edge), and the cell kept where every pixel
    the sample reads is masked (at step 1: exactly the mask; ``mask`` None: every cell)."""
    x0, y0 = (int(a) for a in origin)
    height, width = depth.shape
    cols, rows = cells if cells is not None else (cell_count(x0, width, step), cell_count(y0, height, step))

    def taps(start, n, size):
        centre = start + step * np.arange(n) + 0.5 * (step - 1)      # pixel-centre coordinate of each cell
        lo = np.floor(centre).astype(np.int64)
        return np.clip(lo, 0, size - 1), np.clip(lo + 1, 0, size - 1), centre - lo

    xa, xb, tx = taps(x0, cols, width)
    ya, yb, ty = taps(y0, rows, height)
    # gather the taps first: only the cells' pixels are inverted (a 4K photo has 8 M pixels, its grid 0.5 M cells)
    def inv(ys, xs):
        return 1.0 / depth[np.ix_(ys, xs)].astype(np.float64)

    keep = np.ones((rows, cols), dtype=bool) if mask is None else mask[np.ix_(ya, xa)]
    if step % 2 == 1:  # the centre is a pixel centre
        return np.ascontiguousarray(depth[np.ix_(ya, xa)], dtype=np.float64), np.ascontiguousarray(keep)
    top = inv(ya, xa) * (1 - tx) + inv(ya, xb) * tx
    bottom = inv(yb, xa) * (1 - tx) + inv(yb, xb) * tx
    if mask is not None:
        keep = keep & mask[np.ix_(ya, xb)] & mask[np.ix_(yb, xa)] & mask[np.ix_(yb, xb)]
    return 1.0 / (top * (1 - ty)[:, None] + bottom * ty[:, None]), np.ascontiguousarray(keep)


def sample_mask_cells(mask: np.ndarray, step: int = 1, any_pixel: bool = True) -> np.ndarray:
    """rows x cols bool on the full photo's cell grid (as ``sample_cells`` with origin 0): whether any (or every)
    pixel the cell's depth sample reads is in ``mask``."""
    height, width = mask.shape
    cols, rows = cell_count(0, width, step), cell_count(0, height, step)
    def centres(n, size):
        return np.clip(step * np.arange(n) + (step - 1) // 2, 0, size - 1)

    ya, xa = centres(rows, height), centres(cols, width)
    if step % 2 == 1:
        return np.ascontiguousarray(mask[np.ix_(ya, xa)])
    yb, xb = np.clip(ya + 1, 0, height - 1), np.clip(xa + 1, 0, width - 1)
    join = np.logical_or if any_pixel else np.logical_and
    return join(join(mask[np.ix_(ya, xa)], mask[np.ix_(ya, xb)]), join(mask[np.ix_(yb, xa)], mask[np.ix_(yb, xb)]))


def mesh_from_cells(cell_depth: np.ndarray, cell_mask: np.ndarray, camera, step: int = 1, origin=(0, 0),
                    discontinuity: float = 0.1, max_stretch: float | None = None) -> SurfaceMesh | None:
    """The surface over the kept cells (see ``sample_cells``) as a mesh; None when no cell is kept.

    Each cell is one quad of ``build_pixel_quads`` (the engine's reprojection surface), so the mesh is watertight
    where joined and split, never dropped, at a jump: from the photo's camera its quads tile the kept cells exactly,
    leaving no pixel without a surface.

    Silhouette ramps as the reprojection cuts them: a face within ``silhouette_px`` of the outline (in cells) gets
    ``ramp_limit`` = max_stretch x |cos| of the angle between its normal and its ray from the photo's camera, and
    is to be drawn only while its |cos| to the camera stays at most that (the stretch cos after / cos before of
    reprojection.py); every other face (and every face with ``max_stretch`` None) gets 2, never cut.
    """
    rows, cols = cell_depth.shape
    rim_px = max(1, round(silhouette_px(camera.height, camera.width) / step))
    # float32, as the reprojection runs it: several times faster than float64 on the CPU
    quads = build_pixel_quads(torch.from_numpy(np.asarray(cell_depth, np.float32)),
                              torch.from_numpy(np.asarray(cell_mask, bool)), discontinuity, rim_px=rim_px)
    if quads is None:
        return None
    mesh = _weld(quads, cols, rows, int(origin[0]), int(origin[1]), step, camera)
    if max_stretch is not None:
        rim = quads.rim.numpy()
        mesh.ramp_limit[rim] = float(max_stretch) * facing_cosine(mesh.points, mesh.quads[rim])
    return mesh


def facing_cosine(points: np.ndarray, quads: np.ndarray, eye=(0.0, 0.0, 0.0)) -> np.ndarray:
    """|cos| of the angle between each quad's normal (cross product of its diagonals) and the ray from ``eye`` to
    its centre; F float32."""
    p = points.astype(np.float64)[quads]                                   # F x 4 x 3
    normal = np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1])
    ray = p.mean(axis=1) - np.asarray(eye, dtype=np.float64)
    dot = np.abs(np.einsum("ij,ij->i", normal, ray))
    norms = np.linalg.norm(normal, axis=1) * np.linalg.norm(ray, axis=1)
    return (dot / np.maximum(norms, 1e-30)).astype(np.float32)


def _weld(q: PixelQuads, cols, rows, x0, y0, step, camera) -> SurfaceMesh:
    """One vertex per corner and connected component: a corner's up-to-4 quads (the nodes a, b, c, d of
    build_pixel_quads) share a vertex where their values agree, which they do exactly when joined."""
    n_corners = (rows + 1) * (cols + 1)
    px, py = q.pix_x.numpy(), q.pix_y.numpy()
    tl = py * (cols + 1) + px
    # each quad corner's corner-grid index and node there: the quad is d at its TL, c at TR, a at BR, b at BL
    corner = np.stack([tl, tl + 1, tl + cols + 2, tl + cols + 1])
    node = np.array([3, 2, 0, 1])[:, None]
    value = np.full((4, n_corners), np.nan, dtype=np.float32)
    value[node, corner] = q.corner_inv.numpy()
    vertex = np.arange(4 * n_corners).reshape(4, n_corners)
    for later in (1, 2, 3):
        for earlier in range(later - 1, -1, -1):  # join the nearest-numbered earlier node it agrees with
            agree = np.abs(value[later] - value[earlier]) <= WELD_TOLERANCE * np.abs(value[later])
            vertex[later] = np.where(agree, vertex[earlier], vertex[later])
    face_vertex = vertex[node, corner]                                  # 4 x F: TL, TR, BR, BL
    used = np.zeros(4 * n_corners, dtype=bool)
    used[face_vertex.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    ids = np.nonzero(used)[0]
    node_of, grid = np.divmod(ids, n_corners)
    cy, cx = np.divmod(grid, cols + 1)
    u = x0 + step * cx - 0.5                                            # pixel-edge coordinates
    v = y0 + step * cy - 0.5
    z = 1.0 / value[node_of, grid].astype(np.float64)
    points = np.stack(((u - camera.cx) / camera.fx * z, (v - camera.cy) / camera.fy * z, z), axis=1)
    uv = np.stack(((u + 0.5) / camera.width, 1.0 - (v + 0.5) / camera.height), axis=1)
    quads = remap[face_vertex[[0, 3, 2, 1]]].T                          # TL, BL, BR, TR: counter-clockwise
    return SurfaceMesh(points.astype(np.float32), uv.astype(np.float32), np.ascontiguousarray(quads, np.int32),
                       np.stack([px, py], axis=1), np.full(len(px), NEVER_CUT, dtype=np.float32))
