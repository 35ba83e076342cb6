"""A perspective loss that needs no pixel-aligned reference: edges should point at some vanishing point.

At each pixel the edge runs perpendicular to the Sobel gradient g. Its misalignment with the direction r to a
vanishing point (from the pixel towards a finite VP, or the direction of a VP at infinity) is
sin^2 = (g . r)^2 / |g|^2, 0 when the edge points at the VP. Each pixel takes its best VP (the smallest
misalignment), and the loss is the mean of that weighted by the gradient energy |g|^2: the share of the image's
gradient energy that lies across the direction to its best VP (the structure-tensor form, sum (g . r)^2 / sum |g|^2).
Strong edges dominate; flat regions and texture, whose gradient direction is noise, barely count. It lies in
[0, 1] and does not change when the contrast does.

Why energy, not magnitude: on 8 rendered 512x512 rooms (``bench/bench_perspective.py``) the energy-weighted loss
grows by 5 %, 27 % and 106 % when the VPs move by 2 %, 5 % and 10 % of the diagonal; the magnitude-weighted mean
grew by 1.4 %, 8 % and 29 %. (A robust angular penalty and weighting only the strongest edges separated less:
the Sobel direction itself is off by more than a degree on most edge pixels; blurring first helped on the rendered
rooms and hurt on finely gridded ones.) It stays a dense, per-pixel loss: edges that converge to none of the given
VPs (curves, other directions, corners) keep the loss of a correct image above 0, so VP errors of a degree or
less barely register; the LSD metric (``metric.py``) is the measure of those.
"""

from __future__ import annotations

import torch

from .image_gradients import image_gradients
from .loss import reduce_batch
from .sweep import as_homogeneous


def directions_to_vps(vps, batch_size: int, height: int, width: int, device=None, dtype=torch.float32):
    """((BxKxHxW u, v components of the unit direction from each pixel centre to each VP), BxK usable mask).

    The pixel grid broadcasts: no HxWx2 coordinate tensor is built.
    """
    homogeneous, usable = as_homogeneous(vps, batch_size)
    homogeneous = homogeneous.to(torch.float32).to(device)  # enough even 1e9 px away; MPS has no float64
    u = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, 1, width)
    v = torch.arange(height, device=device, dtype=torch.float32).view(1, 1, height, 1)
    x, y, w = (homogeneous[..., i, None, None] for i in range(3))
    # Homogeneous difference: vp - w * pixel is the direction to a finite VP and the VP's own direction at w = 0.
    ray_u, ray_v = x - w * u, y - w * v
    length = (ray_u.square() + ray_v.square()).sqrt().clamp_min(1e-12)
    return (ray_u / length).to(dtype), (ray_v / length).to(dtype), usable.to(device)


def vp_consistency_loss(images: torch.Tensor, vps, weights: torch.Tensor | None = None, eps: float = 1e-6,
                        reduction: str = "mean") -> torch.Tensor:
    """Gradient-energy-weighted misalignment of the edges of BxCxHxW ``images`` with their nearest vanishing point.

    ``vps`` as for ``perspective_loss``. ``weights`` (Bx1xHxW, optional) restricts the loss to a region, e.g.
    the background. An image without a usable VP contributes 0.
    """
    B, _, H, W = images.shape
    gradients = image_gradients(images)  # Bx2xHxW
    ray_u, ray_v, usable = directions_to_vps(vps, B, H, W, images.device, images.dtype)  # BxKxHxW each
    gu, gv = gradients[:, :1], gradients[:, 1:]  # Bx1xHxW
    squared = gu.square() + gv.square()
    misalignment = (gu * ray_u + gv * ray_v).square() / (squared + eps)  # BxKxHxW, sin^2 of the angle
    misalignment = torch.where(usable.view(B, -1, 1, 1), misalignment, torch.ones_like(misalignment))
    best = misalignment.min(dim=1).values  # BxHxW
    energy = squared.squeeze(1)
    if weights is not None:
        energy = energy * weights.to(energy.dtype).view(B, H, W)
    per_image = (energy * best).sum(dim=(1, 2)) / energy.sum(dim=(1, 2)).clamp_min(eps)
    per_image = per_image * usable.any(dim=1).to(per_image.dtype)
    return reduce_batch(per_image, reduction)
