"""The benchmark baseline only (``bench/import_4k.py``): the scene job's mesh builder before issue 14, which the
engine no longer uses (the scene job builds ``engine/geometry/surface_mesh.py``'s surface). Kept to time against.

A depth map as a mesh of image-aligned cells, torn at depth discontinuities (numpy, vectorised).

The image is cut into cells of ``step`` x ``step`` pixels. Each cell samples the depth of its centre pixel; each
cell corner sits on pixel edges (so a full grid covers the image exactly, from -0.5 to W-0.5) at the mean INVERSE
depth of the kept cells around it (1/z is affine across a plane in the image, so planes stay planar).

The surface tears at occlusion edges instead of stretching a rubber sheet across them: both cells of an edge are
dropped when their inverse depths differ by more than ``tear`` (relative to the farther one) AND the edge is not in
the middle of a plane. A plane's 1/z changes by the same amount per pixel all along a row or column, however
grazing it is (a floor receding to 80 m jumps by far more than 5 % per row near the top), so an edge whose slope
in 1/z agrees with that of every kept edge within ``PLANE_SPAN`` cells on either side is smooth. A step (an object
in front of a wall) has a flat run on each side and tears; so does the soft ramp a depth estimator makes at a
silhouette, which is too short for the span.

Outputs are what Blender needs to build the mesh with ``foreach_set``: engine-frame corner points (OpenCV frame),
UVs into the full-resolution photo, and quads wound counter-clockwise as seen from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANE_SPAN = 2  # edges on each side that must continue an edge's 1/z slope for a large jump to count as a plane
PLANE_TOLERANCE = 0.1  # how closely they must continue it, as a share of the tear threshold


@dataclass
class GridMesh:
    points: np.ndarray  # N x 3 float32, engine frame
    uv: np.ndarray      # N x 2 float32, (0, 0) bottom-left of the photo as Blender's UVs have it
    quads: np.ndarray   # F x 4 int32 vertex indices


def cell_edges(start: int, stop: int, step: int) -> np.ndarray:
    """Pixel-edge coordinates of cells of ``step`` pixels covering pixels start..stop-1 (last cell may be short)."""
    edges = np.arange(start, stop, step, dtype=np.int64)
    return np.append(edges, stop)


def cell_centres(edges: np.ndarray) -> np.ndarray:
    """The centre pixel of each cell between consecutive pixel edges."""
    return (edges[:-1] + edges[1:] - 1) // 2


def sample_cells(array: np.ndarray, xe: np.ndarray, ye: np.ndarray) -> np.ndarray:
    """``array`` (HxW...) at the centre pixel of every cell: a (rows x cols ...) array."""
    return array[np.ix_(cell_centres(ye), cell_centres(xe))]


def grid_mesh(cell_depth: np.ndarray, cell_keep: np.ndarray, xe: np.ndarray, ye: np.ndarray, camera,
              tear: float) -> GridMesh:
    """Mesh of the kept cells; ``cell_depth``/``cell_keep`` are (len(ye)-1) x (len(xe)-1), ``xe``/``ye`` the cells'
    pixel edges in the full image (see ``cell_edges``), ``camera`` an engine ``Camera`` of the full image."""
    cell_keep = np.asarray(cell_keep, dtype=bool).copy()
    cell_inv = np.where(cell_keep, 1.0 / np.where(cell_keep, cell_depth, 1.0).astype(np.float64), 0.0)

    # corner (j, i) touches cells (j-1..j, i-1..i): sum their inverse depths through a zero-padded copy
    pad_inv = np.pad(cell_inv, 1)
    pad_keep = np.pad(cell_keep.astype(np.float64), 1)
    corner_sum = pad_inv[:-1, :-1] + pad_inv[:-1, 1:] + pad_inv[1:, :-1] + pad_inv[1:, 1:]
    corner_n = pad_keep[:-1, :-1] + pad_keep[:-1, 1:] + pad_keep[1:, :-1] + pad_keep[1:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        corner_z = np.where(corner_n > 0, corner_n / corner_sum, 0.0)

    # tear: drop both cells of every edge across a discontinuity (rows of edges, then columns via the transpose)
    across = _discontinuous_edges(cell_inv, cell_keep, cell_centres(xe), tear)
    down = _discontinuous_edges(cell_inv.T, cell_keep.T, cell_centres(ye), tear).T
    torn = np.zeros_like(cell_keep)
    torn[:, :-1] |= across
    torn[:, 1:] |= across
    torn[:-1] |= down
    torn[1:] |= down
    cell_keep &= ~torn

    rows, cols = corner_z.shape
    index = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    j, i = np.nonzero(cell_keep)
    # counter-clockwise seen from the camera (image v points down, the camera's up is -v): TL, BL, BR, TR
    quads = np.stack((index[j, i], index[j + 1, i], index[j + 1, i + 1], index[j, i + 1]), axis=1)

    used = np.unique(quads)
    remap = np.full(rows * cols, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    quads = remap[quads].astype(np.int32)

    cy_idx, cx_idx = np.divmod(used, cols)
    u = xe[cx_idx].astype(np.float64) - 0.5  # pixel-edge coordinate in the engine's pixel-centre convention
    v = ye[cy_idx].astype(np.float64) - 0.5
    z = corner_z.reshape(-1)[used]
    points = np.stack(((u - camera.cx) / camera.fx * z, (v - camera.cy) / camera.fy * z, z), axis=1)
    uv = np.stack(((u + 0.5) / camera.width, 1.0 - (v + 0.5) / camera.height), axis=1)
    return GridMesh(points.astype(np.float32), uv.astype(np.float32), quads)


def _discontinuous_edges(inv: np.ndarray, keep: np.ndarray, centres: np.ndarray, tear: float) -> np.ndarray:
    """rows x (cols-1): True where the edge between cells (j, i) and (j, i+1), both kept, is a discontinuity.

    ``inv`` is the cells' inverse depth, ``centres`` the pixel column each cell samples (the last cell of a grid
    may be short, so slopes are per pixel).
    """
    a, b = inv[:, :-1], inv[:, 1:]
    valid = keep[:, :-1] & keep[:, 1:]
    gap = np.diff(centres).astype(np.float64)
    slope = (b - a) / gap
    tolerance = tear * np.minimum(a, b)
    span = PLANE_SPAN
    pad_valid = np.pad(valid, ((0, 0), (span, span)))  # edges beyond the grid are not there
    pad_slope = np.pad(slope, ((0, 0), (span, span)))
    agrees = np.ones_like(valid)
    seen = np.zeros_like(valid)
    n = slope.shape[1]
    for offset in (o for o in range(-span, span + 1) if o):
        other_valid = pad_valid[:, span + offset:span + offset + n]
        other_slope = pad_slope[:, span + offset:span + offset + n]
        agrees &= ~other_valid | (np.abs(slope - other_slope) * gap <= PLANE_TOLERANCE * tolerance)
        seen |= other_valid
    return valid & (np.abs(b - a) > tolerance) & ~(agrees & seen)
