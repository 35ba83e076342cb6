"""Move objects of a photo in 3D through its depth and render the edited view: the edited depth map, where each
moved object is visible, and for every such pixel the source pixel it came from (dense: no holes under
magnification, no rubber sheets at silhouettes), with several objects in one call.

Each object's masked depth becomes a watertight per-pixel quad surface (surface_mesh), moved by its 4x4 and
z-buffered (rasterise) against the others; the background is the depth with every object's hole filled
(depth_fill); an object pixel shows where it is nearer than that background.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .arrays import is_torch, like_input, pick_device, to_tensor
from .camera import Camera
from .depth_fill import default_hole_dilation, dilate, fill_depth_hole
from .errors import GeometryError
from .lifting import check_depth, transform_project_columns
from .rasterise import rasterise
from .surface_mesh import build_pixel_quads


@dataclass
class Reprojection:
    depth: object               # HxW edited z-depth: background with holes filled, moved objects z-buffered in
    background_depth: object    # HxW depth with the objects removed and their holes filled
    target_masks: object        # KxHxW bool, where each moved object is visible
    source_xy: object           # HxWx2 float32 sub-pixel source (x, y) where an object is visible, -1 elsewhere
    source_pixel: object        # HxWx2 int32 integer source pixel (x, y) there (the pixel whose quad is seen), -1
    object_index: object        # HxW int16, -1 background, k for object k
    visible_fraction: list = field(default_factory=list)  # visible target pixels / source mask pixels, per object
    drawn_fraction: list = field(default_factory=list)    # the same before the background could hide them
    in_front_fraction: list = field(default_factory=list)  # share of each object's surface in front of the camera

    def correspondences(self, k: int | None = None):
        """int32 Nx4 (src_x, src_y, tgt_x, tgt_y) in pixels, row-major over the target; object k or all."""
        as_torch = is_torch(self.object_index)
        oi = torch.as_tensor(self.object_index) if not as_torch else self.object_index
        sp = torch.as_tensor(self.source_pixel) if not as_torch else self.source_pixel
        sel = oi >= 0 if k is None else oi == int(k)
        ty, tx = torch.nonzero(sel, as_tuple=True)
        src = sp[ty, tx]
        out = torch.stack([src[:, 0], src[:, 1], tx.to(torch.int32), ty.to(torch.int32)], dim=1).to(torch.int32)
        return like_input(out, as_torch)


def reproject(depth, masks, transforms, camera: Camera, bg_depth=None, *, background_depth=None,
              discontinuity: float = 0.1, hole_dilation: int | None = None, require_visible: bool = True,
              device=None) -> Reprojection:
    """Render the edit.

    depth: HxW metric z-depth (numpy or torch). masks: one HxW bool mask, a list or a KxHxW stack (one per object).
    transforms: one 4x4 or a list, in the ENGINE frame, applied to each object's lifted points.
    bg_depth: optional depth of the scene without the objects; it guides the harmonic fill of the holes
    (dilated by hole_dilation pixels, default 15 at 512 like the official code). background_depth: a finished
    background (skips the fill, e.g. reused across edits of one photo).
    discontinuity: relative depth jump above which neighbouring pixels are not joined into one surface.
    require_visible: raise GeometryError when an object ends up with no visible pixel.
    Results are torch tensors on the compute device when depth is a tensor, numpy arrays otherwise.
    """
    as_torch = is_torch(depth)
    dev = pick_device(device if device is not None else (depth.device if as_torch else None))
    d = to_tensor(depth, dev)
    check_depth(d, camera)
    H, W = camera.shape
    mask_list = masks if isinstance(masks, (list, tuple)) else (
        list(masks) if _ndim(masks) == 3 else [masks])
    m = torch.stack([to_tensor(mk, dev, dtype=torch.bool) for mk in mask_list]) if mask_list else None
    if m is None or m.dim() != 3 or tuple(m.shape[1:]) != (H, W):
        raise GeometryError(f"masks must be HxW = {H}x{W} boolean maps, one per object")
    K = m.shape[0]
    tf_list = transforms if isinstance(transforms, (list, tuple)) else (
        [transforms] if _ndim(transforms) == 2 else list(transforms))
    if len(tf_list) != K:
        raise GeometryError(f"got {K} masks but {len(tf_list)} transforms: give one 4x4 per object")
    M = torch.stack([torch.as_tensor(_np(t), dtype=torch.float64).reshape(4, 4) for t in tf_list])
    if not bool(torch.isfinite(M).all()):
        raise GeometryError("a transform has non-finite entries")
    counts = torch.count_nonzero(m.reshape(K, -1), dim=1)
    for k in range(K):
        if int(counts[k]) == 0:
            raise GeometryError(f"object {k}'s mask is empty: select the object (paint or load a mask) first")

    if background_depth is not None:
        bg = to_tensor(background_depth, dev)
        check_depth(bg, camera, "background depth")
    else:
        union = m.any(0).cpu().numpy()
        r = default_hole_dilation(H, W) if hole_dilation is None else int(hole_dilation)
        guide = None if bg_depth is None else _np(bg_depth)
        bg = to_tensor(fill_depth_hole(d.cpu().numpy(), dilate(union, r), guide=guide), dev)
        check_depth(bg, camera, "filled background depth")

    # one surface per object, moved and projected; all triangles go through one z-buffer. Quads are numbered
    # object after object (Q in all); triangle q is (TL, TR, BR) of quad q and triangle Q + q is its (TL, BR, BL).
    near = float(d.min()) * 1e-3
    us, vs, zs, quads, in_front, cu, cv, cz = [], [], [], [], [], [], [], []
    for k in range(K):
        q = build_pixel_quads(d, m[k], camera, discontinuity)
        u, v, z = transform_project_columns(q.points, M[k], camera)
        in_front.append(float((z > near).float().mean()))
        us.append(u)
        vs.append(v)
        zs.append(z)
        quads.append(q)
        # a quad cut loose at a discontinuity can shrink below a pixel and slip between pixel centres; its pixel
        # centre is also splatted, so every such source pixel shows at least where its centre lands
        sel = torch.nonzero(q.split).squeeze(1)
        u, v, z = transform_project_columns(tuple(c.index_select(0, sel) for c in q.centre), M[k], camera)
        cu.append(u)
        cv.append(v)
        cz.append(z)
    u, v, z = torch.cat(us, 1), torch.cat(vs, 1), torch.cat(zs, 1)                  # 4 x Q corners
    Q = u.shape[1]
    quad_object = torch.repeat_interleave(torch.arange(K, device=dev), torch.tensor([len(q) for q in quads],
                                                                                     device=dev))
    split_quad = torch.nonzero(torch.cat([q.split for q in quads])).squeeze(1)
    front = z > near
    iz = 1.0 / (z * front + ~front)
    cz = torch.cat(cz)
    c_front = cz > near
    T = 2 * Q
    tri_ok = _triangles(front)
    hits = rasterise(_triangles(u), _triangles(v), _triangles(iz), tri_ok[0] & tri_ok[1] & tri_ok[2], H, W,
                     points=(torch.cat(cu), torch.cat(cv), 1.0 / (cz * c_front + ~c_front), c_front))

    # keep the hits where the object is nearer than the background, then find each one's source: the quad's
    # pixel, and the perspective-correct sub-pixel point within it (3D barycentrics from the target's, then the
    # source camera's screen barycentrics from those); a splatted centre is its pixel's centre
    z_hit = 1.0 / hits.inv_z
    keep = torch.nonzero(z_hit <= bg.reshape(-1).index_select(0, hits.pixel)).squeeze(1)
    pix, t_id, z_hit = (a.index_select(0, keep) for a in (hits.pixel, hits.triangle, z_hit))
    bary = hits.bary.index_select(1, keep)                                          # 3 x M
    is_point = t_id >= T
    p = (t_id >= Q) & ~is_point                                                     # second triangle of its quad
    quad = _quad_of(t_id, Q, split_quad)
    corner_z = torch.cat([q.corner_z for q in quads], 1)                            # 4 x Q

    def at_corners(a):
        """a (4 x Q) at the three corners (0, 1 + p, 2 + p) of each hit's triangle: 3 x M."""
        g = a.index_select(1, quad)
        return torch.stack([g[0], torch.where(p, g[2], g[1]), torch.where(p, g[3], g[2])])

    s = bary * at_corners(iz) / at_corners(corner_z)
    s = s / s.sum(0, keepdim=True)
    src_xy = torch.stack([torch.cat([q.pix_x for q in quads]).index_select(0, quad),
                          torch.cat([q.pix_y for q in quads]).index_select(0, quad)], 1)
    # corner offsets (CORNER_DXY) of the three corners: x (-.5, .5, .5 - p), y (-.5, p - .5, .5); a splatted
    # point sits at its pixel centre
    pf = p.to(s.dtype)
    sub = torch.stack([0.5 * (s[1] - s[0]) + (0.5 - pf) * s[2],
                       (pf - 0.5) * s[1] + 0.5 * (s[2] - s[0])], 1) * ~is_point[:, None]

    obj = quad_object.index_select(0, quad)
    out_depth = bg.reshape(-1).clone()
    out_depth[pix] = z_hit
    object_index = torch.full((H * W,), -1, dtype=torch.int16, device=dev)
    object_index[pix] = obj.to(torch.int16)
    source_xy = torch.full((H * W, 2), -1.0, dtype=torch.float32, device=dev)
    source_xy[pix] = src_xy.to(torch.float32) + sub
    source_pixel = torch.full((H * W, 2), -1, dtype=torch.int32, device=dev)
    source_pixel[pix] = src_xy.to(torch.int32)
    drawn_obj = quad_object.index_select(0, _quad_of(hits.triangle, Q, split_quad)) if K > 1 else None
    object_index = object_index.reshape(H, W)
    target = torch.stack([object_index == k for k in range(K)])
    drawn = torch.bincount(drawn_obj, minlength=K).cpu() if K > 1 else torch.tensor([hits.pixel.numel()])
    shown = torch.bincount(obj.to(torch.int64), minlength=K).cpu()
    counts = counts.cpu()
    result = Reprojection(
        depth=like_input(out_depth.reshape(H, W), as_torch),
        background_depth=like_input(bg, as_torch),
        target_masks=like_input(target, as_torch),
        source_xy=like_input(source_xy.reshape(H, W, 2), as_torch),
        source_pixel=like_input(source_pixel.reshape(H, W, 2), as_torch),
        object_index=like_input(object_index, as_torch),
        visible_fraction=[float(shown[k]) / float(counts[k]) for k in range(K)],
        drawn_fraction=[float(drawn[k]) / float(counts[k]) for k in range(K)],
        in_front_fraction=in_front,
    )
    if require_visible:
        for k in range(K):
            if result.visible_fraction[k] == 0.0:
                raise GeometryError(invisible_reason(result, k))
    return result


def _quad_of(ids: torch.Tensor, Q: int, split_quad: torch.Tensor) -> torch.Tensor:
    """Quad of each raster id: triangles q and Q + q belong to quad q; point 2Q + i is the centre of
    split_quad[i]."""
    quad = ids - Q * (ids >= Q)
    if split_quad.numel():
        at = torch.nonzero(ids >= 2 * Q).squeeze(1)
        quad[at] = split_quad.index_select(0, ids.index_select(0, at) - 2 * Q)
    return quad


def _triangles(a: torch.Tensor) -> torch.Tensor:
    """4 x Q per-corner values (TL, TR, BR, BL) to 3 x 2Q per-triangle-vertex values: triangles (TL, TR, BR) of
    every quad, then (TL, BR, BL) of every quad (TRIANGLE_CORNERS)."""
    return torch.stack([torch.cat([a[0], a[0]]), torch.cat([a[1], a[2]]), torch.cat([a[2], a[3]])])


def invisible_reason(r: Reprojection, k: int) -> str:
    """Why object k shows no pixel, and what to do about it."""
    if r.in_front_fraction[k] == 0.0:
        why = "is entirely behind the camera"
    elif r.drawn_fraction[k] == 0.0:
        why = "is moved out of the frame" if r.in_front_fraction[k] == 1.0 else \
            "is moved out of the frame or behind the camera"
    else:
        why = "is hidden behind the background"
    return f"object {k} {why} after the edit, so nothing of it is visible: move it back into view"


def _ndim(a) -> int:
    return a.dim() if is_torch(a) else np.ndim(a)


def _np(a):
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
