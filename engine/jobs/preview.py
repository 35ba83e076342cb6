"""``preview``: the photo after a 3D edit, by reprojection alone (no diffusion model): the offline main job.

The object's pixels are lifted by their depth, moved by the edit, and projected back through the engine's
``reproject`` (the same transform and correspondences the diffusion edit uses); the background they reveal comes
from the background image, or, without one, from classical inpainting.

Params: ``photo``, ``depth``, ``mask``, optional ``bg``, ``bg_depth`` (as for the ``scene`` job); ``camera`` (engine
intrinsics ``{"width", "height", "fx", "fy", "cx", "cy"}``, the ones the scene was built with); ``transforms`` (a
list of 4x4 row-major matrices in the engine frame, one per output) and ``outputs`` (PNG paths, one per transform),
or ``transform`` and ``output`` for a single frame; ``allow_out_of_view`` (default false: an edit that moves the
object entirely out of view is an error; true, for animations: that frame shows the background only);
``save_arrays`` (default false; a 4K frame's correspondences take tens of MB); optional ``inpaint_model`` (the
revealed background from a diffusion inpainting model instead of OpenCV's, see ``_inpaint``).

Result: ``frames``, one per output: ``{"image", "visible_fraction", "screen_scale", "visible_share"}``, with
``save_arrays`` also ``"correspondences"`` (.npy, int32 Nx4: src_x, src_y, tgt_x, tgt_y) and ``"target_mask"``
(.npy bool HxW), fresh names in the job's workdir (which the client must then give). ``visible_fraction`` is
the geometry's: the object's visible pixels over its pixels in the photo, so above 1 when the edit brings it
closer. The two others separate size from visibility: ``screen_scale`` is the moved
object's area on screen over its area in the photo, as if nothing hid it and the frame had no edge (its parts
behind the camera count nothing), and ``visible_share`` (0 to 1) the share of that area that shows: inside the frame
and not hidden behind the background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import safe_write
from . import JobError, _inpaint, _photo_inputs

NAME = "preview"


# The filled background depth of the last photo previewed: the engine process lives on between previews, and
# filling a 4K hole takes seconds while every edit of one photo shares the same background.
_background_cache: dict = {}


def _background_key(params: dict, inputs) -> tuple:
    import hashlib

    def stamp(key):
        path = params.get(key)
        return (path, Path(path).stat().st_mtime_ns) if path else None

    mask_hash = hashlib.sha1(np.packbits(inputs.mask).tobytes()).hexdigest()
    return stamp("depth"), stamp("bg_depth"), mask_hash, inputs.mask.shape


def _matrix(value, what: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = np.zeros(0)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise JobError("bad_params", f"{what} must be a 4x4 matrix of finite numbers.")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-9:
        raise JobError("bad_transform", "The edit scales the object to nothing (a zero scale). Give it a non-zero "
                       "scale and preview again.")
    return matrix


def _frames(params: dict) -> list[tuple[np.ndarray, Path]]:
    if "transforms" in params:
        transforms, outputs = params.get("transforms"), params.get("outputs")
        if not isinstance(transforms, list) or not isinstance(outputs, list) or len(transforms) != len(outputs) \
                or not transforms:
            raise JobError("bad_params", "'transforms' and 'outputs' must be lists of the same, non-zero length.")
    else:
        transforms, outputs = [params.get("transform")], [params.get("output")]
    frames = []
    inputs = safe_write.inputs_of(params)
    for index, (transform, output) in enumerate(zip(transforms, outputs)):
        if not isinstance(output, str) or not output:
            raise JobError("bad_params", f"Output {index} must be the path of a PNG file to write.")
        path = safe_write.require_absolute(output, f"outputs[{index}]" if "transforms" in params else "output")
        safe_write.refuse_inputs(path, inputs)
        frames.append((_matrix(transform, f"Transform {index}"), path))
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


def run(params: dict, ctx) -> dict:
    from ..geometry import Camera, GeometryError, reproject

    frames = _frames(params)
    try:
        camera = Camera.from_dict(params.get("camera") or {})
    except (KeyError, TypeError, ValueError) as error:
        raise JobError("bad_params", f"'camera' must hold the scene's intrinsics (width, height, fx, fy, cx, cy): "
                       f"{error}.") from None
    allow_out_of_view = bool(params.get("allow_out_of_view", False))
    save_arrays = bool(params.get("save_arrays", False))
    protected = safe_write.inputs_of(params)

    inputs = _photo_inputs.load(params)
    if (inputs.height, inputs.width) != camera.shape:
        raise JobError("size_mismatch", f"The photo is {inputs.width}x{inputs.height} but the scene's camera is "
                       f"{camera.width}x{camera.height}. Import the photo again.")
    hole = _inpaint.dilate(inputs.mask, _inpaint.colour_hole_dilation(inputs.height, inputs.width))
    base = _inpaint.fill_background(inputs.photo, hole, inputs.background, _inpaint.model_fill(params, ctx))
    ctx.check_cancelled()

    results = []
    screen = _ScreenArea(inputs.depth, inputs.mask, camera)
    key = _background_key(params, inputs)
    background_depth = _background_cache.get(key)  # filled once, reused by every frame and later previews
    for index, (transform, output) in enumerate(frames):
        ctx.progress("reproject", index + 1, len(frames))
        try:
            r = reproject(inputs.depth, inputs.mask, transform, camera, bg_depth=inputs.background_depth,
                          background_depth=background_depth, require_visible=not allow_out_of_view)
        except GeometryError as error:
            code = "object_out_of_view" if "visible" in str(error) else "bad_geometry"
            raise JobError(code, f"The edit cannot be previewed: {error}.") from None
        if background_depth is None:
            background_depth = r.background_depth
            _background_cache.clear()
            _background_cache[key] = background_depth
        visible = float(r.visible_fraction[0])
        image = base.copy()
        correspondences = np.asarray(r.correspondences(0), dtype=np.int32)
        target = np.asarray(r.target_masks[0], dtype=bool)
        # the source pixel of every visible object pixel: exactly the engine's correspondences
        image[correspondences[:, 3], correspondences[:, 2]] = inputs.photo[correspondences[:, 1],
                                                                           correspondences[:, 0]]
        safe_write.write_atomic(output, lambda path, image=image: _inpaint.save_png(path, image), protected)
        scale, in_frame = screen.measure(transform)
        share = in_frame * _unhidden_share(inputs, transform, camera, visible) if visible > 0 else 0.0
        frame = {"image": str(output), "visible_fraction": visible, "screen_scale": scale, "visible_share": share}
        if save_arrays:
            for key, array in (("correspondences", correspondences), ("target_mask", target)):
                path = ctx.default_output(f"frame_{index:04d}_{key}.npy", "save_arrays")
                safe_write.write_atomic(path, lambda path, array=array: np.save(path, array), protected)
                frame[key] = str(path)
        results.append(frame)
        ctx.check_cancelled()
    return {"frames": results}
