"""The background depth behind an object: a harmonic (Laplace) fill of the hole it leaves.

Unknowns are the hole's pixels only; the 5-point Laplacian is assembled with vectorised index arithmetic (no Python
loop over pixels) and solved by multigrid-preconditioned CG (multigrid.py); a hole's system and solver are
kept for reuse, as every edit of one photo leaves the same hole. With a guide (the official bg_depth.exr, the
depth of the inpainted background) the fill solves for the RESIDUAL depth - guide, which is harmonic with the
known residual on the hole's border: the result keeps the guide's detail and meets the surrounding depth without
a seam (the official solve_laplacian_depth, which solves Lap f = Lap guide). Image borders are natural (Neumann)
boundaries. The filled depth itself depends only on (depth, hole, guide), the same for every edit of one photo,
so the last few results are kept too (keyed by a digest of their inputs) and further edits pay only for hashing.
numpy / scipy on the CPU.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import scipy.sparse

from .errors import GeometryError
from .multigrid import LaplacianSolver


def default_hole_dilation(height: int, width: int) -> int:
    """The official dilation (15 pixels at 512) scaled to the image: mixed-depth silhouette pixels must not anchor
    the fill."""
    return max(1, int(round(15 * max(height, width) / 512)))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by `radius` 4-neighbour steps (a diamond), like scipy's binary_dilation(iterations=radius)."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0 or not mask.any():
        return mask.copy()
    import cv2

    # L1 distance to the nearest mask pixel, exact for cv2.DIST_L1
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L1, 3)
    return dist <= radius


def fill_depth_hole(depth, hole_mask, guide=None):
    """Replace depth inside hole_mask by the harmonic fill from the depth around it (guided by `guide`).

    Accepts numpy arrays or torch tensors (returns the same kind, float32, a fresh array).
    """
    as_torch = hasattr(depth, "detach")
    device = depth.device if as_torch else None
    d_in, hole = _np(depth), _np(hole_mask).astype(bool)
    g_in = None if guide is None else _np(guide)
    key = _digest(d_in, hole, g_in)
    out = _FILLS.pop(key, None)
    if out is None:
        out = _fill(d_in, hole, g_in)
    _FILLS[key] = out
    while len(_FILLS) > _KEEP or sum(a.nbytes for a in _FILLS.values()) > _KEEP_BYTES:
        _FILLS.popitem(last=False)
    out = out.copy()
    if as_torch:
        import torch

        return torch.from_numpy(out).to(device)
    return out


def _fill(d_in: np.ndarray, hole: np.ndarray, g_in) -> np.ndarray:
    d = d_in.astype(np.float64)
    if hole.shape != d.shape:
        raise GeometryError(f"hole mask shape {hole.shape} does not match depth shape {d.shape}")
    g = None
    if g_in is not None:
        g = g_in.astype(np.float64)
        if g.shape != d.shape:
            raise GeometryError(f"background depth shape {g.shape} does not match depth shape {d.shape}: "
                                "use the background depth estimated for this photo")
        if not np.all(np.isfinite(g[hole])):
            raise GeometryError("background depth is not finite inside the hole: re-estimate it")
    known = ~hole
    if not np.all(np.isfinite(d[known])):
        raise GeometryError("depth around the hole is not finite: re-estimate the depth")
    out = d.copy()
    if hole.any():
        if not known.any():
            if g is None:
                raise GeometryError("the hole covers the whole image, so there is no depth to fill it from: "
                                    "give a background depth or a smaller mask")
            out = g.copy()
        else:
            base = np.zeros_like(d) if g is None else g
            # only the hole and a 1-pixel ring of known neighbours enter the system: solve on that box
            rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
            box = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))
            out[hole] = base[hole] + _harmonic(d[box] - base[box], hole[box])
    return out.astype(np.float32)


def _digest(depth: np.ndarray, hole: np.ndarray, guide) -> tuple:
    """Inputs to a key: SHA-1 of their bytes (about 0.6 ms per MB; a fill takes tens of ms)."""
    h = hashlib.sha1(usedforsecurity=False)
    for a in (depth, hole, guide):
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(np.packbits(a) if a.dtype == bool else a).cast("B"))
    return depth.shape, h.digest()


class HoleSystem:
    """Everything about a hole's 5-point Laplacian that does not depend on the depth: A, which neighbours feed
    b, and the solver (its factorisation or multigrid hierarchy, most of the cost). Every unknown equals the mean
    of its in-image 4-neighbours; known neighbours move to b."""

    def __init__(self, hole: np.ndarray):
        H, W = hole.shape
        self.shape = hole.shape
        # state of every pixel on a 1-pixel padded grid: 0 known, 1 unknown, 2 outside the image (no neighbour)
        state = np.full((H + 2, W + 2), 2, dtype=np.int8)
        state[1:-1, 1:-1] = hole
        state_f = state.reshape(-1)
        flat_p = np.flatnonzero(state_f == 1)
        n = flat_p.size
        index = np.full(state_f.size, -1, dtype=np.int64)
        index[flat_p] = np.arange(n)
        diag = np.zeros(n)
        rows, cols, nbs = [np.arange(n)], [np.arange(n)], []
        for step in (-(W + 2), W + 2, -1, 1):
            nb = flat_p + step
            st = state_f[nb]
            diag += st != 2
            nbs.append(nb)
            unknown = np.flatnonzero(st == 1)
            rows.append(unknown)
            cols.append(index[nb[unknown]])
        r, c = np.concatenate(rows), np.concatenate(cols)
        v = np.concatenate([diag, -np.ones(r.size - n)])
        self.A = scipy.sparse.csr_matrix((v, (r, c)), shape=(n, n))
        self.neighbours = np.stack(nbs)          # 4 x n, on the padded grid
        self.flat_padded = flat_p
        ys, xs = np.divmod(flat_p, W + 2)
        self.ys, self.xs = ys - 1, xs - 1
        self.flat = self.ys * W + self.xs
        self.solver = None

    def rhs(self, values: np.ndarray) -> np.ndarray:
        """b: the sum of each unknown's known neighbours (unknown and outside ones count 0)."""
        H, W = self.shape
        vals = np.zeros((H + 2, W + 2))
        vals[1:-1, 1:-1] = values
        vals_f = vals.reshape(-1)
        vals_f[self.flat_padded] = 0.0
        return vals_f[self.neighbours].sum(0)

    def solve(self, values: np.ndarray) -> np.ndarray:
        if self.solver is None:
            self.solver = LaplacianSolver(self.A, self.ys, self.xs)
        return self.solver.solve(self.rhs(values))


_SYSTEMS: OrderedDict = OrderedDict()
_FILLS: OrderedDict = OrderedDict()
_KEEP = 4
_KEEP_BYTES = 256 << 20  # filled depths kept at most (a 4096 x 4096 float32 map is 64 MB)


def clear_cache() -> None:
    """Forget the hole systems and filled depths kept for reuse (benchmarks use this to time cold fills)."""
    _SYSTEMS.clear()
    _FILLS.clear()


def _harmonic(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    # the edits of one photo, and an artist's repeated renders, share the object's hole: keep its system
    key = (hole.shape, hashlib.blake2b(np.packbits(hole).tobytes(), digest_size=16).digest())
    system = _SYSTEMS.pop(key, None) or HoleSystem(hole)
    _SYSTEMS[key] = system
    while len(_SYSTEMS) > _KEEP:
        _SYSTEMS.popitem(last=False)
    return system.solve(values)


def _np(a):
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
