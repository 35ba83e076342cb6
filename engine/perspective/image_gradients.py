"""Grayscale and Sobel gradients of a batch of images, differentiable, on the images' device."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, as most grayscale conversions use.
_LUMA = (0.299, 0.587, 0.114)


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW luminance of BxCxHxW images: RGB(A) by luma weights, one channel as is, others by mean."""
    if images.ndim != 4:
        raise ValueError(f"expected images shaped BxCxHxW, got {tuple(images.shape)}")
    channels = images.shape[1]
    if channels == 1:
        return images
    if channels in (3, 4):
        weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (images[:, :3] * weights).sum(dim=1, keepdim=True)
    return images.mean(dim=1, keepdim=True)


def sobel(gray: torch.Tensor) -> torch.Tensor:
    """Bx2xHxW (d/du, d/dv) Sobel gradient of Bx1xHxW images; borders replicated so the frame adds no edge."""
    kernel_u = gray.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kernel_u, kernel_u.t()]).unsqueeze(1)
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernels)


def image_gradients(images: torch.Tensor) -> torch.Tensor:
    """Bx2xHxW Sobel gradient of the grayscale of BxCxHxW images."""
    return sobel(to_grayscale(images))
