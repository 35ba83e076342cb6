"""``scene``: turn a photo, its depth and an object mask into the meshes Blender builds its scene from.

Params: ``SceneParams`` (``engine/params/jobs.py``, tables in ``docs/protocol.md``): ``photo``, ``depth``, ``mask``
(depth as EXR, NPY or 16-bit PNG in mm; mask as an image, white = object, or an NPY), optional ``bg`` and
``bg_depth``, ``fov`` (degrees across the larger side, outermost pixel centres, as the official test set; null:
from the photo's EXIF, its 35 mm equivalent focal length or else its focal length and focal plane resolution, else
55), ``output_dir`` (absolute; default a fresh
``scene`` folder in the job's workdir), ``max_grid``, ``object_grid``, ``tear`` (relative depth jump between neighbouring cells at
which the meshes tear, except within a plane, however slanted), ``hole_dilate`` (default the official 15 at 512,
scaled to the photo), and the background completion options (``inpaint_model``..., see ``_inpaint``).

Result: ``width``, ``height``, ``fov_deg``, ``fov_source`` ("given", "exif_35mm", "exif_focal_plane" or
"default"), ``fov_note`` (a sentence for the user: where the field of view came from), ``camera`` (engine
intrinsics), ``centroid`` (the object's 3D centroid, engine frame: the official rotation centre), ``mask_pixels``,
``depth_range``, ``background`` and ``object`` (each ``{"points", "uv", "quads"}``: paths of .npy arrays, engine
frame), ``background_texture`` (the photo with the background image, or inpainting, where the object was: a PNG, or a
quality-95 JPEG above 2048 pixels), ``photo_texture`` (the photo as displayed: the photo file itself, or a copy
turned by its EXIF orientation, which Blender's image loader ignores).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from ..errors import BadGeometry, FullMask, ObjectTooSmall
from ..io import safe_write
from ..params import SceneParams as PARAMS
from . import _grid_mesh as grid
from . import _inpaint, _photo_inputs

NAME = "scene"



def _write_texture(inputs, out_dir: Path, complete=None, protected=None) -> Path:
    """The background mesh's texture: the photo, with the background image (or inpainting) where the object was."""
    texture_hole = _inpaint.dilate(inputs.mask, _inpaint.colour_hole_dilation(inputs.height, inputs.width))
    texture = _inpaint.fill_background(inputs.photo, texture_hole, inputs.background, complete)
    return _inpaint.save_texture(out_dir / "background_texture", texture, protected)


def _output_dir(params, ctx) -> Path:
    """``output_dir`` (absolute: the parameters check it), else a fresh ``scene`` folder in the client's workdir."""
    if params.output_dir is None:
        return ctx.default_output("scene", "output_dir")
    return Path(params.output_dir)


def run(params, ctx) -> dict:
    from ..geometry import (
        Camera,
        GeometryError,
        dilate,
        fill_depth_hole,
        object_centroid,
    )
    from ..geometry.depth_fill import default_hole_dilation

    params = PARAMS.from_json(params)
    max_grid, object_grid, hole_dilate, tear = params.max_grid, params.object_grid, params.hole_dilate, params.tear

    ctx.progress("read", 1, 4)
    inputs = _photo_inputs.load(params)
    out_dir = _output_dir(params, ctx)
    out_dir.mkdir(parents=True, exist_ok=True)
    protected = safe_write.inputs_of(params)
    height, width = inputs.height, inputs.width
    fov, fov_source, fov_note = _photo_inputs.resolve_fov(params.fov, Path(params.photo), width, height)
    camera = Camera.default(width, height, fov)
    ctx.check_cancelled()

    # the texture (inpainting, JPEG/PNG encoding) runs beside the meshes: OpenCV releases the GIL
    for suffix in (".png", ".jpg"):
        safe_write.refuse_inputs((out_dir / "background_texture").with_suffix(suffix), protected)
    pool = ThreadPoolExecutor(max_workers=1)
    texture_job = pool.submit(_write_texture, inputs, out_dir, _inpaint.model_fill(params, ctx), protected)
    pool.shutdown(wait=False)

    try:
        ctx.progress("background", 2, 4)
        if hole_dilate is None:
            hole_dilate = min(256, max(0, int(default_hole_dilation(height, width))))
        rows, cols = np.nonzero(inputs.mask.any(axis=1))[0], np.nonzero(inputs.mask.any(axis=0))[0]
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        # mixed-depth silhouette pixels must not anchor the fill (the official code dilates the same way); the work
        # stays in the object's box grown by the dilation, a fraction of a 4K photo
        hole = np.zeros_like(inputs.mask)
        grow = hole_dilate + 1
        box = np.s_[max(0, y0 - grow):y1 + grow, max(0, x0 - grow):x1 + grow]
        hole[box] = dilate(inputs.mask[box], hole_dilate)
        step = max(1, math.ceil(max(width, height) / max_grid))
        xe, ye = grid.cell_edges(0, width, step), grid.cell_edges(0, height, step)
        cell_depth = grid.sample_cells(inputs.depth, xe, ye).astype(np.float64)
        cell_hole = grid.sample_cells(hole, xe, ye)
        guide = None if inputs.background_depth is None else grid.sample_cells(inputs.background_depth, xe, ye)
        try:
            if cell_hole.all():
                raise FullMask("The object covers the whole photo, so there is no background to fill "
                               "behind it. Use a mask of the object only.")
            filled = np.asarray(fill_depth_hole(cell_depth, cell_hole, guide=guide), dtype=np.float64)
            # the same mean over the object's box only, with the principal point moved into the box
            box_camera = Camera(x1 - x0, y1 - y0, camera.fx, camera.fy, camera.cx - x0, camera.cy - y0)
            centroid = object_centroid(inputs.depth[y0:y1, x0:x1], inputs.mask[y0:y1, x0:x1], box_camera)
        except GeometryError as error:
            raise BadGeometry(str(error)) from None
        background = grid.grid_mesh(filled, np.ones_like(cell_hole), xe, ye, camera, tear)
        ctx.check_cancelled()

        ctx.progress("object", 3, 4)
        object_step = max(1, math.ceil(max(x1 - x0, y1 - y0) / object_grid))
        oxe, oye = grid.cell_edges(x0, x1, object_step), grid.cell_edges(y0, y1, object_step)
        obj = grid.grid_mesh(grid.sample_cells(inputs.depth, oxe, oye), grid.sample_cells(inputs.mask, oxe, oye),
                             oxe, oye, camera, tear)
        if len(obj.quads) == 0:
            raise ObjectTooSmall("The object's mask is too thin to make a mesh (or its depth is torn "
                           "everywhere). Paint a larger mask and import again.")
        ctx.check_cancelled()

        ctx.progress("texture", 4, 4)
        texture_path = texture_job.result()
    except BaseException:
        # one job at a time on the accelerator: an inpainting model must not go on into the next job
        texture_job.cancel()
        wait([texture_job])
        raise
    return {
        "width": width,
        "height": height,
        "fov_deg": fov,
        "fov_source": fov_source,
        "fov_note": fov_note,
        "camera": camera.to_dict(),
        "centroid": [float(c) for c in centroid],
        "mask_pixels": int(inputs.mask.sum()),
        "depth_range": [float(inputs.depth.min()), float(inputs.depth.max())],
        "grid_step": step,
        "object_step": object_step,
        "background": background.save(out_dir, "background", protected),
        "object": obj.save(out_dir, "object", protected),
        "background_texture": str(texture_path),
        "photo_texture": _photo_texture(params, inputs, out_dir, protected),
    }


def _photo_texture(params, inputs, out_dir: Path, protected: dict) -> str:
    """The photo as the meshes see it: the photo file itself, or, for one stored turned (EXIF orientation other
    than 1, which Blender's image loader ignores), a copy written as displayed."""
    from .. import io

    photo = Path(params.photo)
    if io.photo_shape(photo).orientation == 1:
        return str(photo)
    stem = out_dir / "photo_texture"
    for suffix in (".png", ".jpg"):
        safe_write.refuse_inputs(stem.with_suffix(suffix), protected)
    return str(_inpaint.save_texture(stem, inputs.photo, protected))
