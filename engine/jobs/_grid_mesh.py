"""A depth map as a mesh of image-aligned cells, torn at depth discontinuities (numpy, vectorised).

The image is cut into cells of ``step`` x ``step`` pixels. Each cell samples the depth of its centre pixel; each
cell corner sits on pixel edges (so a full grid covers the image exactly, from -0.5 to W-0.5) at the mean INVERSE
depth of the kept cells around it (1/z is affine across a plane in the image, so planes stay planar). A cell whose
corners differ by more than ``tear`` (relative to the nearest) is dropped, which tears the surface at occlusion
edges instead of stretching a rubber sheet across them.

Outputs are what Blender needs to build the mesh with ``foreach_set``: engine-frame corner points (OpenCV frame),
UVs into the full-resolution photo, and quads wound counter-clockwise as seen from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GridMesh:
    points: np.ndarray  # N x 3 float32, engine frame
    uv: np.ndarray      # N x 2 float32, (0, 0) bottom-left of the photo as Blender's UVs have it
    quads: np.ndarray   # F x 4 int32 vertex indices

    def save(self, folder, prefix: str) -> dict:
        paths = {}
        for key in ("points", "uv", "quads"):
            path = folder / f"{prefix}_{key}.npy"
            np.save(path, getattr(self, key))
            paths[key] = str(path)
        return paths


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

    # tear: drop cells whose corners span too large a depth ratio
    tl, tr = corner_z[:-1, :-1], corner_z[:-1, 1:]
    bl, br = corner_z[1:, :-1], corner_z[1:, 1:]
    near = np.minimum(np.minimum(tl, tr), np.minimum(bl, br))
    far = np.maximum(np.maximum(tl, tr), np.maximum(bl, br))
    with np.errstate(divide="ignore", invalid="ignore"):
        cell_keep &= far <= (1.0 + tear) * near

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
