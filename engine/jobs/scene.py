"""``scene``: turn a photo, its depth and an object mask into the meshes Blender builds its scene from.

Params: ``SceneParams`` (``engine/params/jobs.py``, tables in ``docs/protocol.md``): ``photo``, ``depth``, ``mask``
(depth as EXR, NPY or 16-bit PNG in mm; mask as an image, white = object, or an NPY), ``masks`` (optional: the masks of
further objects, each its own mesh cut from the one background), optional ``bg`` and ``bg_depth``, ``fov`` (degrees
across the larger side, outermost pixel centres, as the official test set; null: from the photo's EXIF, its 35 mm
equivalent focal length or else its focal length and focal plane resolution, else 55), ``output_dir`` (absolute;
default a fresh ``scene`` folder in the job's workdir), ``max_grid``, ``object_grid``, ``tear`` (relative depth jump
between neighbouring cells at which the meshes split, 0.01 to 1, default 0.1: the engine surface's discontinuity, see
geometry/surface_mesh.py; a split leaves both sides' faces in place, so no pixel loses its surface), ``hole_dilate``
(default the official 15 at 512, scaled to the photo), and the background completion options (``inpaint_model``...,
see ``_inpaint``).

Result: ``width``, ``height``, ``fov_deg``, ``fov_source`` ("given", "exif_35mm", "exif_focal_plane" or "default"),
``fov_note`` (a sentence for the user: where the field of view came from), ``camera`` (engine intrinsics),
``centroid`` (the object's 3D centroid, engine frame: the official rotation centre), ``mask_pixels``,
``depth_range``, ``objects`` (per object ``{"mesh", "centroid", "mask_pixels", "object_step"}``; the first one's
also as ``centroid``, ``mask_pixels``, ``object_step`` and ``object``), ``background`` and ``object`` (each
``{"points", "uv", "quads"}``: paths of .npy arrays, engine frame; the object's also ``ramp_limit``, per face: see
``SurfaceMesh``), ``background_texture`` (the photo with the background image, or inpainting, where the objects
were: a PNG, or a quality-95 JPEG above 2048 pixels), ``photo_texture`` (the photo as displayed: the photo file
itself, or a copy turned by its EXIF orientation, which Blender's image loader ignores).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import BadGeometry, EmptyMask, FullMask, ObjectTooSmall
from ..io import safe_write
from ..params import SceneParams as PARAMS
from . import _inpaint, _photo_inputs, existing_file

NAME = "scene"
# ``tear`` (SceneParams: default 0.1, 0.01 to 1) is the engine surface's discontinuity (reprojection's default), so
# Blender and the engine split the same neighbours; below 1 % even a gently slanted plane splits into steps
# behind the object the background is at least 1 + BEHIND x tear times as far as the object: farther than any
# corner of the object's surface there, and split from the fill around it, whose corners would pull it forward
BEHIND = 3.0


def _background_mesh(inputs, hole, camera, step: int, tear: float):
    """The background's surface on cells of ``step`` pixels: the photo's depth with the hole behind the object
    filled by the depth fill (guided by the background depth when given), kept behind the object so that from the
    photo's camera every object pixel shows the object, never a fill poking through it."""
    from ..geometry import fill_depth_hole
    from ..geometry import surface_mesh as surface

    cell_depth, _ = surface.sample_cells(inputs.depth, None, step)
    cell_hole = surface.sample_mask_cells(hole, step)                        # any pixel it reads in the hole
    guide = None
    if inputs.background_depth is not None:
        guide = surface.sample_cells(inputs.background_depth, None, step)[0]
    filled = np.asarray(fill_depth_hole(cell_depth, cell_hole, guide=guide), dtype=np.float64)
    cell_object = surface.sample_mask_cells(inputs.mask, step)               # any pixel it reads on the object
    filled = np.where(cell_object, np.maximum(filled, cell_depth * (1.0 + BEHIND * tear)), filled)
    return surface.mesh_from_cells(filled, np.ones_like(cell_hole), camera, step, (0, 0), tear)


def _write_texture(inputs, out_dir: Path, complete=None, protected=None) -> Path:
    """The background mesh's texture: the photo, with the background image (or inpainting) where the objects were."""
    texture_hole = _inpaint.dilate(inputs.mask, _inpaint.colour_hole_dilation(inputs.height, inputs.width))
    texture = _inpaint.fill_background(inputs.photo, texture_hole, inputs.background, complete)
    return _inpaint.save_texture(out_dir / "background_texture", texture, protected)


def _output_dir(params, ctx) -> Path:
    """``output_dir`` (absolute: the parameters check it), else a fresh ``scene`` folder in the client's workdir."""
    if params.output_dir is None:
        return ctx.default_output("scene", "output_dir")
    return Path(params.output_dir)


def extra_masks(params, inputs) -> list:
    """The masks of the objects after the first (``params.masks``, checked by the parameters), each read by
    ``engine.io`` at the displayed photo's size and required to select something, like ``mask``."""
    from .. import io

    if not params.masks:
        return []
    shape = io.photo_shape(existing_file(params.photo, "photo"))
    masks = []
    for index, path in enumerate(params.masks):
        what = f"mask of object {index + 2}"
        mask = io.read_mask(existing_file(path, what), shape, what)
        if not mask.any():
            raise EmptyMask(f"The mask of object {index + 2} ('{path}') selects no pixels. Paint the object white, "
                            "or leave the mask out.")
        masks.append(mask)
    return masks


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _hole(union: np.ndarray, hole_dilate: int) -> np.ndarray:
    """The background depth's hole: the objects grown by ``hole_dilate`` (mixed-depth silhouette pixels must not
    anchor the fill, as in the official code), worked out in the objects' box grown by it."""
    from ..geometry import dilate

    y0, y1, x0, x1 = _bounds(union)
    hole = np.zeros_like(union)
    grow = hole_dilate + 1
    box = np.s_[max(0, y0 - grow):y1 + grow, max(0, x0 - grow):x1 + grow]
    hole[box] = dilate(union[box], hole_dilate)
    return hole


def _object(depth, mask, camera, params, number: int, out_dir: Path, protected: dict) -> dict:
    """One object's mesh (cells across its own box), its 3D centroid (the official rotation centre) and size."""
    from ..geometry import Camera, GeometryError, object_centroid
    from ..geometry import surface_mesh as surface
    from ..geometry.reprojection import DEFAULT_MAX_STRETCH

    y0, y1, x0, x1 = _bounds(mask)
    try:  # the mean over the object's box only, with the principal point moved into the box
        box_camera = Camera(x1 - x0, y1 - y0, camera.fx, camera.fy, camera.cx - x0, camera.cy - y0)
        centroid = object_centroid(depth[y0:y1, x0:x1], mask[y0:y1, x0:x1], box_camera)
    except GeometryError as error:
        raise BadGeometry(str(error)) from None
    step = max(1, math.ceil(max(x1 - x0, y1 - y0) / params.object_grid))
    cells = (surface.cell_count(x0, x1, step), surface.cell_count(y0, y1, step))
    cell_depth, cell_mask = surface.sample_cells(depth, mask, step, (x0, y0), cells)
    mesh = surface.mesh_from_cells(cell_depth, cell_mask, camera, step, (x0, y0), params.tear,
                                   max_stretch=DEFAULT_MAX_STRETCH)
    if mesh is None or len(mesh.quads) == 0:
        which = "The object's mask" if number == 1 else f"The mask of object {number}"
        raise ObjectTooSmall(f"{which} is too thin to make a mesh at this Object Resolution. Paint a larger mask, "
                             "or raise Object Resolution, and import again.")
    prefix = "object" if number == 1 else f"object{number}"
    return {"mesh": mesh.save(out_dir, prefix, protected), "centroid": [float(c) for c in centroid],
            "mask_pixels": int(mask.sum()), "object_step": step}


def _start_texture(inputs, out_dir: Path, params, ctx, protected: dict):
    """The texture (inpainting, JPEG/PNG encoding) as a future, run beside the meshes: OpenCV releases the GIL."""
    for suffix in (".png", ".jpg"):
        safe_write.refuse_inputs((out_dir / "background_texture").with_suffix(suffix), protected)
    pool = ThreadPoolExecutor(max_workers=1)
    texture_job = pool.submit(_write_texture, inputs, out_dir, _inpaint.model_fill(params, ctx), protected)
    pool.shutdown(wait=False)
    return texture_job


def _meshes(inputs, masks, union, camera, params, ctx, out_dir: Path, protected: dict):
    """(background mesh paths, its cell step, [per object: mesh paths, centroid, mask pixels, step])."""
    from ..geometry import GeometryError
    from ..geometry.depth_fill import default_hole_dilation

    ctx.progress("background", 2, 4)
    hole_dilate = params.hole_dilate
    if hole_dilate is None:
        hole_dilate = min(256, max(0, int(default_hole_dilation(inputs.height, inputs.width))))
    hole = _hole(union, hole_dilate)
    if hole.all():
        raise FullMask("The objects cover the whole photo, so there is no background to fill behind them. Use "
                       "masks of the objects only.")
    step = max(1, math.ceil(max(inputs.width, inputs.height) / params.max_grid))
    try:
        background = _background_mesh(replace(inputs, mask=union), hole, camera, step, params.tear)
    except GeometryError as error:
        raise BadGeometry(str(error)) from None
    background_paths = background.save(out_dir, "background", protected)
    ctx.check_cancelled()

    objects = []
    for number, mask in enumerate(masks, start=1):
        ctx.progress("object", 3, 4)
        objects.append(_object(inputs.depth, mask, camera, params, number, out_dir, protected))
        ctx.check_cancelled()
    return background_paths, step, objects


def run(params, ctx) -> dict:
    from ..geometry import Camera

    params = PARAMS.from_json(params)
    ctx.progress("read", 1, 4)
    inputs = _photo_inputs.load(params)
    masks = [inputs.mask, *extra_masks(params, inputs)]
    union = np.logical_or.reduce(masks) if len(masks) > 1 else inputs.mask
    out_dir = _output_dir(params, ctx)
    out_dir.mkdir(parents=True, exist_ok=True)
    protected = safe_write.inputs_of(params)
    width, height = inputs.width, inputs.height
    fov, fov_source, fov_note = _photo_inputs.resolve_fov(params.fov, Path(params.photo), width, height)
    camera = Camera.default(width, height, fov)
    ctx.check_cancelled()

    texture_job = _start_texture(replace(inputs, mask=union), out_dir, params, ctx, protected)  # no object in it
    try:
        background, step, objects = _meshes(inputs, masks, union, camera, params, ctx, out_dir, protected)
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
        "centroid": objects[0]["centroid"],
        "mask_pixels": objects[0]["mask_pixels"],
        "depth_range": [float(inputs.depth.min()), float(inputs.depth.max())],
        "grid_step": step,
        "object_step": objects[0]["object_step"],
        "background": background,
        "object": objects[0]["mesh"],
        "objects": objects,
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
