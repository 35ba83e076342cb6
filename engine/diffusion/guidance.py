"""The two guidance losses of Diffusion Handles, on UNet decoder activations.

- identity: the moved object's activations at its new place should equal the original activations at the
  corresponding old place (L1, averaged over corresponding cells and channels);
- background: the background should keep its activations. ``global_avg`` (the official default) compares the mean
  activation over cells outside the old object (original) with the mean over cells outside the new object (edited);
  ``local`` compares cell by cell where neither object is.

Correspondences come from the geometry engine at the working resolution in pixels (src_x, src_y, tgt_x, tgt_y) and
are resampled to each activation grid (32x32 and 64x64 for SD2 at 512; any aspect ratio) by integer cell
division. Many pixel correspondences land in one pair of cells; ``weighting`` says how such a pair counts:
- ``"multiplicity"`` (official): as often as correspondences land in it, i.e. the identity loss is the mean over
  the correspondence list, computed on the distinct pairs weighted by their counts (the same number, without
  gathering C x N activations);
- ``"unique"``: once, the mean over the distinct cell pairs.
Index tensors are built once per grid and kept.
"""

from __future__ import annotations

import numpy as np


class GuidanceTargets:
    def __init__(self, correspondences, source_mask, target_mask, device, weighting: str = "multiplicity",
                 objects=None):
        """correspondences: Nx4 int (src_x, src_y, tgt_x, tgt_y) in pixels of an HxW image; source_mask: HxW bool
        where the object(s) were; target_mask: HxW bool where they are after the edit; weighting: "multiplicity"
        or "unique" (``EditSettings.pair_weighting``); objects: N ints, the object each correspondence belongs to
        (None: all one object). With several objects the identity loss is the mean of the objects' own losses, so
        each object keeps its identity whatever its size on screen."""
        if weighting not in ("multiplicity", "unique"):
            raise ValueError(f"Unknown pair weighting {weighting!r}; use 'multiplicity' or 'unique'.")
        self.weighting = weighting
        self.pairs = np.asarray(correspondences, dtype=np.int64).reshape(-1, 4)
        self.objects = np.zeros(len(self.pairs), np.int64) if objects is None else np.asarray(objects, np.int64)
        if self.objects.shape != (len(self.pairs),):
            raise ValueError(f"objects must give one object index per correspondence ({len(self.pairs)}), not "
                             f"{self.objects.shape}")
        self.source_mask = np.asarray(source_mask, dtype=bool)
        self.target_mask = np.asarray(target_mask, dtype=bool)
        self.height, self.width = self.source_mask.shape
        self.device = device
        self._grids: dict[tuple[int, int], dict] = {}

    def _cells(self, x, y, grid):
        gh, gw = grid
        return (y * gh // self.height) * gw + (x * gw // self.width)

    def _mask_cells(self, mask, grid):
        ys, xs = np.nonzero(mask)
        cells = np.zeros(grid[0] * grid[1], dtype=bool)
        cells[self._cells(xs, ys, grid)] = True
        return cells

    def grid(self, grid: tuple[int, int]) -> dict:
        """Index tensors on ``grid`` (h, w): ``src``/``tgt`` (distinct paired cells), ``count`` (how many
        correspondences each pair has; None with ``unique`` weighting), ``bg_src``/``bg_tgt`` (cells outside the
        old/new object), ``bg_both`` (outside both)."""
        grid = (int(grid[0]), int(grid[1]))
        if grid not in self._grids:
            import torch

            p = self.pairs
            size = grid[0] * grid[1]
            keys = (self.objects * size + self._cells(p[:, 0], p[:, 1], grid)) * size + self._cells(p[:, 2], p[:, 3],
                                                                                                    grid)
            keys, counts = np.unique(keys, return_counts=True)
            pairs, objects = keys % (size * size), keys // (size * size)
            src_cells = self._mask_cells(self.source_mask, grid)
            tgt_cells = self._mask_cells(self.target_mask, grid)
            arrays = {"src": pairs // size, "tgt": pairs % size, "bg_src": np.flatnonzero(~src_cells),
                      "bg_tgt": np.flatnonzero(~tgt_cells), "bg_both": np.flatnonzero(~(src_cells | tgt_cells))}
            index = {k: torch.from_numpy(v.astype(np.int64)).to(self.device) for k, v in arrays.items()}
            multiplicity = self.weighting == "multiplicity"
            index["count"] = torch.from_numpy(counts.astype(np.float32)).to(self.device) if multiplicity else None
            _, dense = np.unique(objects, return_inverse=True)  # objects with pairs on this grid, numbered 0..K-1
            index["object"] = torch.from_numpy(dense.astype(np.int64)).to(self.device)
            index["objects"] = int(dense.max()) + 1 if dense.size else 0
            self._grids[grid] = index
        return self._grids[grid]


def _flat(activation):
    """1xCxhxw or Cxhxw -> C x (h*w) float32."""
    a = activation[0] if activation.dim() == 4 else activation
    return a.reshape(a.shape[0], -1).float()


def identity_loss(current, original, targets: GuidanceTargets):
    """Mean L1 distance between the current activations at the target cells and the original ones at their source
    cells, over channels and pairs (each pair weighted by its count with ``multiplicity`` weighting); with several
    objects, the mean over the objects of that loss for each."""
    index = targets.grid(current.shape[-2:])
    if index["src"].numel() == 0:
        return current.new_zeros((), dtype=current.dtype).float()
    cur, orig = _flat(current), _flat(original)
    distance = (cur[:, index["tgt"]] - orig[:, index["src"]]).abs()
    if index["objects"] > 1:
        return _per_object_mean(distance.mean(dim=0), index)
    if index["count"] is None:
        return distance.mean()
    return (distance.mean(dim=0) * index["count"]).sum() / index["count"].sum()


def _per_object_mean(pair_distance, index):
    """The mean over objects of each object's (count-weighted) mean pair distance."""
    weight = index["count"] if index["count"] is not None else pair_distance.new_ones(pair_distance.shape)
    totals = pair_distance.new_zeros(index["objects"]).index_add(0, index["object"], pair_distance * weight)
    weights = weight.new_zeros(index["objects"]).index_add(0, index["object"], weight)
    return (totals / weights).mean()


def background_loss(current, original, targets: GuidanceTargets, kind: str = "global_avg"):
    index = targets.grid(current.shape[-2:])
    cur, orig = _flat(current), _flat(original)
    if kind == "global_avg":
        if index["bg_src"].numel() == 0 or index["bg_tgt"].numel() == 0:
            return cur.new_zeros(())
        return (orig[:, index["bg_src"]].mean(dim=1) - cur[:, index["bg_tgt"]].mean(dim=1)).abs().mean()
    if kind == "local":
        if index["bg_both"].numel() == 0:
            return cur.new_zeros(())
        return (cur[:, index["bg_both"]] - orig[:, index["bg_both"]]).abs().mean()
    raise ValueError(f"Unknown background loss {kind!r}; use 'global_avg' or 'local'.")
