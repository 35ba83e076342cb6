"""Move objects of a photo in 3D through its depth and render the edited view: the edited depth map, where each
moved object is visible, and for every such pixel the source pixel it came from (dense: no holes under
magnification, no rubber sheets at silhouettes), with several objects in one call.

Each object's masked depth becomes a watertight per-pixel quad surface (surface_mesh), moved by its 4x4 and
z-buffered (rasterise) against the others and the background: the depth with every object's hole filled
(depth_fill). An object pixel shows where it is nearer than that background.

Silhouette ramps: a depth estimator blurs the depth jump at an object's outline into a smooth ramp a few pixels
wide, which the surface follows (its steps are under the discontinuity threshold). The photo sees that ramp at a
grazing angle; an edit that turns it towards the camera would stretch each of its pixels into a long streak. So a
quad near the outline (surface_mesh.silhouette_px) is not drawn where the edit stretches it more than max_stretch
times as much as a patch facing the camera at the same depths: that ratio is cos(slant after) / cos(slant before),
large only for surface the photo saw almost edge-on and the edit turns to face the camera.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .arrays import float_le, is_torch, like_input, pick_device, to_tensor
from .camera import Camera
from .depth_fill import default_hole_dilation, dilate, fill_depth_hole
from .errors import GeometryError, OutOfViewError
from .lifting import MovedRays, check_depth
from .rasterise import rasterise
from .surface_mesh import CORNER_DXY, build_pixel_quads, silhouette_px

DEFAULT_MAX_STRETCH = 12.0  # bench/bench_geometry.py --stretch-sweep measures the choice on the photogen edits


@dataclass
class Reprojection:
    depth: object               # HxW edited z-depth: background with holes filled, moved objects z-buffered in
    background_depth: object    # HxW depth with the objects removed and their holes filled
    target_masks: object        # KxHxW bool, where each moved object is visible
    source_xy: object           # HxWx2 float32 sub-pixel source (x, y) where an object is visible, -1 elsewhere
    source_pixel: object        # HxWx2 int32 integer source pixel (x, y) there (the pixel whose quad is seen), -1
    object_index: object        # HxW int16, -1 background, k for object k
    visible_fraction: list = field(default_factory=list)  # visible target pixels / source mask pixels, per object
    invisible: dict = field(default_factory=dict)  # object k -> why none of it is visible (only for such objects)

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


@dataclass
class _Moved:
    """One object's quads after its edit: corners (4 x N) in the target image, 1/z there, which quads are drawn
    (0/1) and the drawn split quads' centres (splatted, so that a quad cut loose still shows where its centre
    lands)."""
    u: torch.Tensor
    v: torch.Tensor
    inv_z: torch.Tensor
    ok: torch.Tensor
    stretched: torch.Tensor     # 0/1: not drawn because it is a stretched silhouette ramp
    centres: tuple              # (u, v, inv_z, ok) of the splatted centres
    splat: torch.Tensor         # quad index of each splatted centre
    pix_x: torch.Tensor
    pix_y: torch.Tensor


def reproject(depth, masks, transforms, camera: Camera, bg_depth=None, *, background_depth=None,
              discontinuity: float = 0.1, max_stretch: float | None = DEFAULT_MAX_STRETCH,
              hole_dilation: int | None = None, require_visible: bool = True, device=None,
              names: list | None = None) -> Reprojection:
    """Render the edit.

    depth: HxW metric z-depth (numpy or torch). masks: one HxW bool mask, a list or a KxHxW stack (one per object).
    transforms: one 4x4 or a list, in the ENGINE frame, applied to each object's lifted points.
    bg_depth: optional depth of the scene without the objects; it guides the harmonic fill of the holes
    (dilated by hole_dilation pixels, default 15 at 512 like the official code). background_depth: a finished
    background (skips the fill, e.g. reused across edits of one photo).
    discontinuity: relative depth jump above which neighbouring pixels are not joined into one surface.
    max_stretch: silhouette ramps stretched more than this by the edit are not drawn (None: always drawn).
    require_visible: raise GeometryError when an object ends up with no visible pixel.
    names: what to call each object in messages (default "the object", or "object k" for several).
    Results are torch tensors on the compute device when depth is a tensor, numpy arrays otherwise.
    """
    as_torch = is_torch(depth)
    dev = pick_device(device if device is not None else (depth.device if as_torch else None))
    d = to_tensor(depth, dev)
    near = check_depth(d, camera) * 1e-3
    H, W = camera.shape
    m, M, names = _objects(masks, transforms, names, dev, H, W)
    K = m.shape[0]
    quads = [build_pixel_quads(d, m[k], discontinuity, silhouette_px(H, W)) for k in range(K)]
    for k in range(K):
        if quads[k] is None:
            raise GeometryError(f"the mask of {names[k]} is empty: select the object (paint or load a mask) first")
    counts = [len(q) for q in quads]
    bg = _background(d, m, camera, dev, bg_depth, background_depth, hole_dilation)

    parts = [_move(quads[k], M[k], camera, near, max_stretch) for k in range(K)]
    one = parts[0] if K == 1 else _concat(parts)
    hits = rasterise(one.u, one.v, one.inv_z, one.ok, H, W, points=one.centres, background=bg)
    pix = hits.pixel
    obj, src_x, src_y, px, py = _hit_sources(hits, one, parts, M, camera)
    maps = _scatter_maps(bg, hits, obj, (src_x, src_y), (px, py), camera, dev)
    object_index = maps["object_index"]
    target = (object_index >= 0)[None] if K == 1 else torch.stack([object_index == k for k in range(K)])
    shown = [int(pix.numel())] if K == 1 else torch.bincount(obj, minlength=K).tolist()
    visible = [shown[k] / counts[k] for k in range(K)]
    invisible = {k: f"{names[k]} {_why_invisible(parts[k], H, W, near, K)}" for k in range(K) if shown[k] == 0}
    result = Reprojection(
        depth=like_input(maps["depth"], as_torch),
        background_depth=like_input(bg, as_torch),
        target_masks=like_input(target, as_torch),
        source_xy=like_input(maps["source_xy"], as_torch),
        source_pixel=like_input(maps["source_pixel"], as_torch),
        object_index=like_input(object_index, as_torch),
        visible_fraction=visible,
        invisible=invisible,
    )
    if require_visible and invisible:
        raise OutOfViewError(next(iter(invisible.values())))
    return result


def _objects(masks, transforms, names, dev, H: int, W: int):
    """The objects' masks as a KxHxW bool tensor, their 4x4 transforms (Kx4x4 float64) and their names, checked."""
    mask_list = masks if isinstance(masks, (list, tuple)) else (
        list(masks) if _ndim(masks) == 3 else [masks])
    m = torch.stack([to_tensor(mk, dev, dtype=torch.bool) for mk in mask_list]) if mask_list else None
    if m is None or m.dim() != 3 or tuple(m.shape[1:]) != (H, W):
        raise GeometryError(f"masks must be HxW = {H}x{W} boolean maps, one per object")
    K = m.shape[0]
    names = list(names) if names is not None else (["the object"] if K == 1 else [f"object {k}" for k in range(K)])
    tf_list = transforms if isinstance(transforms, (list, tuple)) else (
        [transforms] if _ndim(transforms) == 2 else list(transforms))
    if len(tf_list) != K:
        raise GeometryError(f"got {K} masks but {len(tf_list)} transforms: give one 4x4 per object")
    M = torch.stack([torch.as_tensor(_np(t), dtype=torch.float64).reshape(4, 4) for t in tf_list])
    if not bool(torch.isfinite(M).all()):
        raise GeometryError("a transform has non-finite entries")
    return m, M, names


def _background(d, m, camera: Camera, dev, bg_depth, background_depth, hole_dilation):
    """The depth behind the objects: the given finished background, or the photo's depth with the objects' holes
    (dilated) filled, guided by bg_depth when given."""
    if background_depth is not None:
        bg = to_tensor(background_depth, dev)
        check_depth(bg, camera, "background depth")
        return bg
    H, W = camera.shape
    union = m.any(0).cpu().numpy()
    r = default_hole_dilation(H, W) if hole_dilation is None else int(hole_dilation)
    guide = None if bg_depth is None else _np(bg_depth)
    bg = to_tensor(fill_depth_hole(d.cpu().numpy(), dilate(union, r), guide=guide), dev)
    check_depth(bg, camera, "filled background depth")
    return bg


def _hit_sources(hits, one: _Moved, parts: list, M: torch.Tensor, camera: Camera):
    """For each rasterised hit: its object, the photo point it shows (x, y) and that point's pixel (px, py)."""
    t_id = hits.triangle
    Q = one.u.shape[1]
    # the quad each hit shows (triangles q and Q + q are quad q; point 2Q + i is the centre of splat[i])
    is_point = t_id >= 2 * Q
    quad = t_id - Q * ((t_id >= Q) & ~is_point).to(torch.int64)
    at = torch.nonzero(is_point).squeeze(1)
    if at.numel():
        quad[at] = one.splat.index_select(0, t_id.index_select(0, at) - 2 * Q)
    px, py = one.pix_x.index_select(0, quad), one.pix_y.index_select(0, quad)
    obj = torch.zeros_like(quad) if len(parts) == 1 else _object_of(parts).index_select(0, quad)
    src_x, src_y = _source_points(hits.pixel, hits.depth, obj, M, camera)
    # a splatted centre is its pixel's centre
    centre = is_point.to(src_x.dtype)
    src_x = src_x + centre * (px.to(src_x.dtype) - src_x)
    src_y = src_y + centre * (py.to(src_y.dtype) - src_y)
    return obj, src_x, src_y, px, py


def _scatter_maps(bg, hits, obj, src, src_pixel, camera: Camera, dev) -> dict:
    """The per-pixel maps of the edited view: depth, object index (-1: none), source point and source pixel."""
    H, W = camera.shape
    HW = H * W
    pix = hits.pixel
    (src_x, src_y), (px, py) = src, src_pixel
    out_depth = bg.reshape(-1).clone().scatter_(0, pix, hits.depth.to(bg.dtype))
    object_index = torch.full((HW,), -1, dtype=torch.int16, device=dev).scatter_(0, pix, obj.to(torch.int16))
    source_xy = torch.full((HW * 2,), -1.0, dtype=torch.float32, device=dev)
    source_xy.scatter_(0, 2 * pix, src_x.to(torch.float32))
    source_xy.scatter_(0, 2 * pix + 1, src_y.to(torch.float32))
    source_pixel = torch.full((HW * 2,), -1, dtype=torch.int32, device=dev)
    source_pixel.scatter_(0, 2 * pix, px.to(torch.int32))
    source_pixel.scatter_(0, 2 * pix + 1, py.to(torch.int32))
    return {"depth": out_depth.reshape(H, W), "object_index": object_index.reshape(H, W),
            "source_xy": source_xy.reshape(H, W, 2), "source_pixel": source_pixel.reshape(H, W, 2)}

def _move(q, M: torch.Tensor, camera: Camera, near: float, max_stretch: float | None) -> _Moved:
    rays = MovedRays(q.pix_x, q.pix_y, M, camera, q.corner_inv.dtype)
    corners = [rays.at(du, dv, q.corner_inv[c]) for c, (du, dv) in enumerate(CORNER_DXY)]
    u = torch.stack([c[0] for c in corners])
    v = torch.stack([c[1] for c in corners])
    den = torch.stack([c[2] for c in corners])               # (z after) / (z before) at each corner
    inv_z = q.corner_inv / den
    ok = float_le(near * q.corner_inv, den).prod(0)          # all four corners in front of the camera
    stretched = torch.zeros_like(ok)
    if max_stretch is not None and bool(q.rim.any()):
        area = 0.5 * ((u[2] - u[0]) * (v[3] - v[1]) - (v[2] - v[0]) * (u[3] - u[1])).abs()
        facing = area * den.mean(0) ** 2                     # a pixel facing the camera keeps area (z / z')^2
        stretched = (1.0 - float_le(facing, max_stretch)) * q.rim.to(torch.uint8).to(ok.dtype) * ok
        ok = ok - stretched
    splat = torch.nonzero(q.split & (ok > 0)).squeeze(1)
    inv_c = 1.0 / q.depth.index_select(0, splat)
    cu, cv, cden = rays.at(0.0, 0.0, inv_c, splat)
    centres = (cu, cv, inv_c / cden, cden > near * inv_c)
    return _Moved(u, v, inv_z, ok, stretched, centres, splat, q.pix_x, q.pix_y)


def _concat(parts: list) -> _Moved:
    """All objects' quads in one set, object after object (splat indices shifted to match)."""
    offsets = np.cumsum([0] + [p.u.shape[1] for p in parts[:-1]])

    def cat1(name):
        return torch.cat([getattr(p, name) for p in parts], 1)

    def cat0(name):
        return torch.cat([getattr(p, name) for p in parts])

    centres = tuple(torch.cat([p.centres[i] for p in parts]) for i in range(4))
    splat = torch.cat([p.splat + int(o) for p, o in zip(parts, offsets, strict=True)])
    return _Moved(cat1("u"), cat1("v"), cat1("inv_z"), cat0("ok"), cat0("stretched"), centres,
                  splat, cat0("pix_x"), cat0("pix_y"))


def _object_of(parts: list) -> torch.Tensor:
    sizes = torch.tensor([p.u.shape[1] for p in parts], device=parts[0].u.device)
    return torch.repeat_interleave(torch.arange(len(parts), device=sizes.device), sizes)


def _source_points(pix, depth, obj, M, camera: Camera):
    """Where the surface seen at each hit pixel was in the photo: the point at the hit's depth on the pixel's
    ray, moved back by the inverse of its object's edit and projected (exact, perspective-correct, no gathers)."""
    width = camera.width
    ty = torch.div(pix, width, rounding_mode="floor")
    tx = pix - ty * width
    inv_z = 1.0 / depth
    K = M.shape[0]
    if K == 1:
        u, v, _ = MovedRays(tx, ty, torch.linalg.inv(M[0]), camera, depth.dtype).at(0.0, 0.0, inv_z)
        return u, v
    u, v = torch.empty_like(inv_z), torch.empty_like(inv_z)
    for k in range(K):
        sel = torch.nonzero(obj == k).squeeze(1)
        if sel.numel():
            uk, vk, _ = MovedRays(tx.index_select(0, sel), ty.index_select(0, sel), torch.linalg.inv(M[k]),
                                  camera, depth.dtype).at(0.0, 0.0, inv_z.index_select(0, sel))
            u[sel], v[sel] = uk, vk
    return u, v


def _why_invisible(part: _Moved, height: int, width: int, near: float, n_objects: int) -> str:
    """Why an object shows no pixel, and what to do about it (only run for such objects)."""
    front = part.inv_z > 0
    if not bool(front.any()):
        return "is entirely behind the camera after the edit, so nothing of it is visible: move it back into view"
    inside = front & (part.u >= -0.5) & (part.u <= width - 0.5) & (part.v >= -0.5) & (part.v <= height - 0.5)
    if not bool(inside.any()):
        where = "out of the frame" if bool(front.all()) else "out of the frame or behind the camera"
        return f"is moved {where} by the edit, so nothing of it is visible: move it back into view"
    drawn = part.ok + part.stretched
    if rasterise(part.u, part.v, part.inv_z, drawn, height, width, points=part.centres).pixel.numel() == 0:
        return ("is so far from the camera after the edit that it is too small to cover a pixel, so nothing of it "
                "is visible: bring it closer")
    if not bool((part.ok > 0).any()):
        return ("is turned edge-on by the edit: all it would show is surface the photo saw at a grazing angle, so "
                "nothing of it is visible: turn it back towards the camera")
    behind = "the background or another object" if n_objects > 1 else "the background"
    return f"is hidden behind {behind} after the edit, so nothing of it is visible: move it back into view"


def _ndim(a) -> int:
    return a.dim() if is_torch(a) else np.ndim(a)


def _np(a):
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
