"""The reference perspective loss of Upadhyay et al. (SIGGRAPH Asia 2023, arXiv 2312.00944).

For each vanishing point, lines are swept through it across the image; along each line the Sobel gradient of the
grayscale image is projected on the line's normal and its absolute value averaged (strong where an edge runs
along the line, as edges converging to a true VP do). The loss is the L2 norm of the difference between these
profiles for the generated image and for a reference, averaged over the usable VPs of each image and over the
batch. Differentiable in the images; batched; runs on the images' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .image_gradients import image_gradients
from .sweep import sweep_lines

# The paper's public code sweeps 1000 lines per vanishing point.
DEFAULT_NUM_LINES = 1000


def profiles_from_gradients(gradients: torch.Tensor, sweep) -> torch.Tensor:
    """BxKxN mean |gradient . line normal| along each swept line (0 for lines that miss the image)."""
    B = gradients.shape[0]
    K, N = sweep.normals.shape[1:3]
    sampled = F.grid_sample(gradients, sweep.grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.view(B, 2, K, N, -1)  # Bx2xKxNxS
    normals = sweep.normals.permute(0, 3, 1, 2).unsqueeze(-1)  # Bx2xKxNx1
    across = (sampled * normals).sum(dim=1).abs()  # BxKxNxS
    return across.mean(dim=-1) * sweep.valid


def profile_distance(profiles: torch.Tensor, reference_profiles: torch.Tensor, usable: torch.Tensor,
                     reduction: str = "mean") -> torch.Tensor:
    """L2 distance between profiles per VP, averaged over each image's usable VPs, then over the batch."""
    per_vp = torch.linalg.vector_norm(profiles - reference_profiles, dim=-1)  # BxK
    usable = usable.to(per_vp.dtype)
    per_image = (per_vp * usable).sum(dim=-1) / usable.sum(dim=-1).clamp_min(1.0)
    return reduce_batch(per_image, reduction)


def reduce_batch(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    """A loss's per-image values reduced over the batch: 'mean', 'sum' or 'none' (kept per image)."""
    if reduction == "none":
        return per_image
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    raise ValueError(f"unknown reduction {reduction!r}: use 'mean', 'sum' or 'none'")


def perspective_loss(images: torch.Tensor, references: torch.Tensor, vps, num_lines: int = DEFAULT_NUM_LINES,
                     samples_per_line: int | None = None, reduction: str = "mean") -> torch.Tensor:
    """The paper's loss between BxCxHxW ``images`` and pixel-aligned ``references`` (same shape, values in [0, 1]).

    ``vps``: Kx2/Kx3 shared by the batch or BxKx2/BxKx3 per image, in pixels (see the package docstring);
    rows of NaN or zeros are skipped. An image without a usable VP contributes 0. Gradients flow into
    ``images`` (and into ``references`` if they require them).
    """
    if images.shape != references.shape:
        raise ValueError(f"images {tuple(images.shape)} and references {tuple(references.shape)} differ in shape")
    B, _, H, W = images.shape
    sweep, usable = sweep_lines(vps, B, H, W, num_lines, samples_per_line, images.device, images.dtype)
    both = image_gradients(torch.cat([images, references.to(images.dtype)]))
    profiles = profiles_from_gradients(both, _doubled(sweep))
    return profile_distance(profiles[:B], profiles[B:], usable, reduction)


def _doubled(sweep):
    """The same sweep for a batch stacked twice (images then references), so one grid_sample serves both."""
    return type(sweep)(grid=torch.cat([sweep.grid, sweep.grid]), normals=torch.cat([sweep.normals, sweep.normals]),
                       valid=torch.cat([sweep.valid, sweep.valid]))
