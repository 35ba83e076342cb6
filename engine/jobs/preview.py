"""``preview``: the photo after a 3D edit, by reprojection alone (no diffusion model): the offline main job.

The object's pixels are lifted by their depth, moved by the edit, and projected back through the engine's
``reproject`` (the same transform and correspondences the diffusion edit uses); the background they reveal comes
from the background image, or, without one, from classical inpainting.

Params: ``PreviewParams`` (``engine/params/jobs.py``, tables in ``docs/protocol.md``): the photo's files (as for
``scene``; ``masks``: the masks of further objects, each transform then a list of one 4x4 per object, the ``mask``
object first); ``camera`` (engine intrinsics, the ones the scene was built with); ``transforms`` (4x4 row-major
matrices in the engine frame, one per output) and ``outputs``, or ``transform`` and ``output`` for a single frame;
``allow_out_of_view`` (an edit that moves the object entirely out of view is an error unless true, for animations:
that frame shows the background only); ``save_arrays`` (a 4K frame's correspondences take tens of MB); and the
background completion options (``inpaint_model``..., see ``_inpaint``).

Result: ``frames``, one per output: ``{"image", "visible_fraction", "screen_scale", "visible_share", "objects"}``,
with ``save_arrays`` also ``"correspondences"`` (.npy, int32 Nx4: src_x, src_y, tgt_x, tgt_y) and ``"target_mask"``
(.npy bool HxW, every object), fresh names in the job's workdir (which the client must then give); ``objects``, per
object ``{"visible_fraction", "out_of_view"}``. ``visible_fraction`` (and the two below: the first object's) is
the geometry's: the object's visible pixels over its pixels in the photo, so above 1 when the edit brings it
closer. The two others separate size from visibility: ``screen_scale`` is the moved
object's area on screen over its area in the photo, as if nothing hid it and the frame had no edge (its parts
behind the camera count nothing), and ``visible_share`` (0 to 1) the share of that area that shows: inside the frame
and not hidden behind the background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadGeometry, BadTransform, ObjectOutOfView, SizeMismatch
from ..io import safe_write
from ..params import PreviewParams as PARAMS
from . import _inpaint, _photo_inputs

NAME = "preview"


# The filled background depth of the last photo previewed: the engine process lives on between previews, and
# filling a 4K hole takes seconds while every edit of one photo shares the same background.
_background_cache: dict = {}


def _background_key(params, inputs) -> tuple:
    import hashlib

    def stamp(path):
        return (path, Path(path).stat().st_mtime_ns) if path else None

    mask_hash = hashlib.sha1(np.packbits(inputs.mask).tobytes()).hexdigest()
    return stamp(params.depth), stamp(params.bg_depth), mask_hash, inputs.mask.shape


def _matrix(value) -> np.ndarray:
    """A frame's transform (a checked 4x4 of finite numbers, or K of them) as an array; ``BadTransform`` for a
    zero scale."""
    matrix = np.asarray(value, dtype=np.float64)
    if np.any(np.abs(np.linalg.det(matrix[..., :3, :3])) < 1e-9):
        raise BadTransform("The edit scales the object to nothing (a zero scale). Give it a non-zero "
                       "scale and preview again.")
    return matrix


def _frames(params, objects: int = 1) -> list[tuple[np.ndarray, Path]]:
    """[(transform, output)] of the job's frames, each output checked against the photo's files; with several
    objects each transform is a K x 4 x 4 array (one 4x4 per object, counted by the parameters), else a 4x4."""
    frames = []
    inputs = safe_write.inputs_of(params)
    for transform, output in params.frame_list():
        safe_write.refuse_inputs(Path(output), inputs)
        matrix = _matrix(transform)
        if objects == 1 and matrix.ndim == 3:  # one object given as a list of one 4x4
            matrix = matrix[0]
        frames.append((matrix, Path(output)))
    return frames


class _ScreenArea:
    """The object's surface (the per-pixel quads ``reproject`` moves), to measure its area on screen after an
    edit: each quad covers one pixel in the photo, so the mean projected area is the on-screen scale; the quads
    whose centre lands in the frame give the share of that area inside it."""

    def __init__(self, depth: np.ndarray, mask: np.ndarray, camera):
        import torch

        from ..geometry.surface_mesh import build_pixel_quads

        self.camera = camera
        self.quads = build_pixel_quads(torch.as_tensor(depth, dtype=torch.float64), torch.as_tensor(mask))
        self.near = float(depth.min()) * 1e-3  # as reproject: nearer than this is behind the camera

    def measure(self, transform: np.ndarray) -> tuple[float, float]:
        """(screen scale, share of the on-screen area inside the frame) after ``transform``."""
        import torch

        from ..geometry.lifting import MovedRays
        from ..geometry.surface_mesh import CORNER_DXY

        q = self.quads
        rays = MovedRays(q.pix_x, q.pix_y, torch.as_tensor(transform, dtype=torch.float64), self.camera,
                         q.corner_inv.dtype)
        corners = [rays.at(du, dv, q.corner_inv[c]) for c, (du, dv) in enumerate(CORNER_DXY)]
        u, v, den = (torch.stack([corner[i] for corner in corners]) for i in range(3))
        # shoelace over the corners TL, TR, BR, BL; a quad with a corner behind the camera (z after = den / (1/z)
        # below near) shows nothing
        area = 0.5 * torch.abs((u * v.roll(-1, 0) - u.roll(-1, 0) * v).sum(0))
        area = torch.where((den > self.near * q.corner_inv).all(0), area, 0.0)
        cu, cv = u.mean(0), v.mean(0)
        inside = (cu >= -0.5) & (cu <= self.camera.width - 0.5) & (cv >= -0.5) & (cv <= self.camera.height - 0.5)
        total = float(area.sum())
        in_frame = float(torch.where(inside, area, 0.0).sum()) / total if total > 0 else 0.0
        return total / max(1, len(self.quads)), in_frame


def _unhidden_share(inputs, transform, camera, visible: float) -> float:
    """Of what the moved object draws in the frame (itself hiding its own back, its silhouette cut as the edit's
    reprojection cuts it), the share the background leaves visible: the same render with the background moved far
    away counts what it draws."""
    from ..geometry import reproject

    far = np.full_like(inputs.depth, float(inputs.depth.max()) * 1e6)
    drawn = float(reproject(inputs.depth, inputs.mask, transform, camera, background_depth=far,
                            require_visible=False).visible_fraction[0])
    return min(1.0, visible / drawn) if drawn > 0 else 0.0


def run(params, ctx) -> dict:
    from dataclasses import replace

    from ..geometry import Camera
    from .scene import extra_masks

    params = PARAMS.from_json(params)
    frames = _frames(params, params.object_count())
    camera = Camera.from_dict(params.camera.to_json())
    protected = safe_write.inputs_of(params)

    inputs = _photo_inputs.load(params)
    if (inputs.height, inputs.width) != camera.shape:
        raise SizeMismatch(f"The photo is {inputs.width}x{inputs.height} but the scene's camera is "
                       f"{camera.width}x{camera.height}. Import the photo again.")
    masks = [inputs.mask, *extra_masks(params, inputs)]
    first = inputs
    if len(masks) > 1:  # the background loses every object; sizes and shares are the first object's
        inputs = replace(inputs, mask=np.logical_or.reduce(masks))
    hole = _inpaint.dilate(inputs.mask, _inpaint.colour_hole_dilation(inputs.height, inputs.width))
    base = _inpaint.fill_background(inputs.photo, hole, inputs.background, _inpaint.model_fill(params, ctx))
    ctx.check_cancelled()

    results = []
    screen = _ScreenArea(first.depth, first.mask, camera)
    key = _background_key(params, inputs)
    for index, (transform, output) in enumerate(frames):
        ctx.progress("reproject", index + 1, len(frames))
        r = _reproject(inputs, masks, transform, camera, key, params.allow_out_of_view)
        correspondences = np.asarray(r.correspondences(None), dtype=np.int32)
        image = base.copy()
        # the source pixel of every visible object pixel: exactly the engine's correspondences
        image[correspondences[:, 3], correspondences[:, 2]] = inputs.photo[correspondences[:, 1],
                                                                           correspondences[:, 0]]
        safe_write.write_atomic(output, lambda path, image=image: _inpaint.save_png(path, image), protected)
        visible = float(r.visible_fraction[0])
        own = transform[0] if len(masks) > 1 else transform
        scale, in_frame = screen.measure(own)
        share = in_frame * _unhidden_share(first, own, camera, visible) if visible > 0 else 0.0
        frame = {"image": str(output), "visible_fraction": visible, "screen_scale": scale, "visible_share": share,
                 "objects": [{"visible_fraction": float(f), "out_of_view": k in r.invisible}
                             for k, f in enumerate(r.visible_fraction)]}
        if params.save_arrays:
            target = np.asarray(r.target_masks, dtype=bool).any(axis=0)
            for name, array in (("correspondences", correspondences), ("target_mask", target)):
                path = ctx.default_output(f"frame_{index:04d}_{name}.npy", "save_arrays")
                safe_write.write_atomic(path, lambda path, array=array: np.save(path, array), protected)
                frame[name] = str(path)
        results.append(frame)
        ctx.check_cancelled()
    return {"frames": results}


def _reproject(inputs, masks: list, transform, camera, key: tuple, allow_out_of_view: bool):
    """One frame's reprojection of every object (``inputs.mask``: their union); the filled background depth is
    cached under ``key``: filled once, reused by every frame and later previews."""
    from ..geometry import GeometryError, OutOfViewError, reproject

    several = len(masks) > 1
    try:
        r = reproject(inputs.depth, masks if several else masks[0], list(transform) if several else transform,
                      camera, bg_depth=inputs.background_depth, background_depth=_background_cache.get(key),
                      require_visible=not allow_out_of_view)
    except GeometryError as error:
        typed = ObjectOutOfView if isinstance(error, OutOfViewError) else BadGeometry
        raise typed(f"The edit cannot be previewed: {error}.") from None
    if key not in _background_cache:
        _background_cache.clear()
        _background_cache[key] = r.background_depth
    return r
