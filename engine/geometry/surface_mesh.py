"""An object's depth as a watertight surface of per-pixel quads, ready to move and rasterise.

Each masked pixel becomes a quad whose corners sit at the pixel's corners (u +- 0.5, v +- 0.5), so at rest the
quads tile exactly the mask (a pixel's footprint), and magnified they still tile the object with no holes.
A corner's depth is the mean INVERSE depth of the masked pixels sharing that corner that are continuous with the
quad's own pixel (1/z is affine across a plane in the image, so planes stay exactly planar). Neighbours across a
depth discontinuity are left out, which splits the surface there instead of stretching a "rubber sheet" across it.
Every quad is two triangles, (TL, TR, BR) and (TL, BR, BL). Corner arrays are corner-major (4 x N, TL, TR, BR,
BL), so each corner's values are contiguous.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .camera import Camera
from .lifting import unproject_columns

# the 8 neighbours, in this order, and which of them share each corner (TL, TR, BR, BL) with the pixel
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_CORNER_NEIGHBOURS = ((0, 1, 3), (1, 2, 4), (4, 6, 7), (3, 5, 6))
CORNER_DXY = ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5))  # (du, dv) of TL, TR, BR, BL
TRIANGLE_CORNERS = ((0, 1, 2), (0, 2, 3))  # corner ids of the quad's two triangles


@dataclass
class PixelQuads:
    pix_x: torch.Tensor      # N int64 source column of each quad's pixel
    pix_y: torch.Tensor      # N int64 source row
    corner_u: torch.Tensor   # 4 x N source image coordinates of the corners
    corner_v: torch.Tensor   # 4 x N
    corner_z: torch.Tensor   # 4 x N source z-depth of the corners
    points: tuple            # (X, Y, Z), each 4 x N: engine-frame corner points
    split: torch.Tensor      # N bool: a masked neighbour is across a discontinuity (the quad is cut loose there)
    centre: tuple            # (X, Y, Z), each N: engine-frame point at the pixel centre, at the pixel's own depth

    def __len__(self) -> int:
        return int(self.pix_x.numel())


def build_pixel_quads(depth: torch.Tensor, mask: torch.Tensor, camera: Camera,
                      discontinuity: float = 0.1) -> PixelQuads:
    """Quads for the pixels of `mask` (HxW bool) on `depth` (HxW, > 0).

    discontinuity: neighbours whose depths differ by more than this fraction of the nearer one are not joined.
    """
    H, W = depth.shape
    dev = depth.device
    inv = 1.0 / depth
    flat = torch.nonzero(mask.reshape(-1)).squeeze(1)
    pix_y = torch.div(flat, W, rounding_mode="floor")
    pix_x = flat - pix_y * W
    # neighbours via a 1-pixel padded copy, so border pixels need no special case (the pad is outside the mask)
    inv_pad = F.pad(inv[None, None], (1, 1, 1, 1), value=1.0)[0, 0].reshape(-1)
    m_pad = F.pad(mask[None, None].to(torch.uint8), (1, 1, 1, 1), value=0)[0, 0].reshape(-1).bool()
    Wp = W + 2
    centre = (pix_y + 1) * Wp + (pix_x + 1)
    offs = torch.tensor([dy * Wp + dx for dy, dx in _OFFSETS], device=dev)
    nb = (offs[:, None] + centre[None, :]).reshape(-1)       # 8*N, neighbour-major (index_select beats a[idx])
    N = centre.numel()
    i_n = inv_pad.index_select(0, nb).view(8, N)
    m_n = m_pad.index_select(0, nb).view(8, N)
    i_p = inv_pad.index_select(0, centre)[None, :]
    # continuous when the farther depth is at most (1 + discontinuity) times the nearer one
    joined = m_n & (torch.maximum(i_n, i_p) <= (1.0 + discontinuity) * torch.minimum(i_n, i_p))
    w = joined.to(inv.dtype)
    wi = w * i_n
    # explicit column sums: small matmuls are slow on the CPU
    corner_inv = torch.stack([(i_p[0] + wi[a] + wi[b] + wi[c]) / (1.0 + w[a] + w[b] + w[c])
                              for a, b, c in _CORNER_NEIGHBOURS])  # 4 x N
    corner_z = 1.0 / corner_inv
    dxy = torch.tensor(CORNER_DXY, device=dev, dtype=inv.dtype)
    corner_u = pix_x.to(inv.dtype)[None, :] + dxy[:, 0, None]
    corner_v = pix_y.to(inv.dtype)[None, :] + dxy[:, 1, None]
    points = unproject_columns(corner_u, corner_v, corner_z, camera)
    split = (m_n & ~joined).any(0)
    centre = unproject_columns(pix_x.to(inv.dtype), pix_y.to(inv.dtype), 1.0 / i_p[0], camera)
    return PixelQuads(pix_x, pix_y, corner_u, corner_v, corner_z, points, split, centre)
