"""Conversions between the photo's world and the model's: RGB <-> VAE latents, prompt -> CLIP embeddings, and
depth -> the UNet's fifth input channel.

Depth conditioning as SD2-depth was trained and as Diffusion Handles feeds it: disparity (1 / depth, from
``engine.geometry.normalised_disparity``), resized bicubically to the latent grid, then min-max normalised to
[-1, 1]. The edited depth is normalised with its own range, as in the official code.
"""

from __future__ import annotations

import numpy as np


def image_to_tensor(image_hw3, device, dtype):
    """HxWx3 uint8 or float [0, 1] array -> 1x3xHxW tensor in [-1, 1]."""
    import torch

    array = np.asarray(image_hw3)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
    return (tensor * 2.0 - 1.0).to(device=device, dtype=dtype)


def encode_image(models, image_hw3):
    """Latents (1x4xh/8xw/8) of an image, the distribution's mean times the VAE scaling factor."""
    import torch

    with models.using(models.vae), torch.no_grad():
        pixels = image_to_tensor(image_hw3, models.device, models.dtype)
        latents = models.vae.encode(pixels).latent_dist.mean
    return (latents * models.vae.config.scaling_factor).clone()


def decode_latents(models, latents):
    """Image tensor 1x3xHxW in [0, 1] (float32) from latents; differentiable when called with gradients on."""
    image = models.vae.decode((latents / models.vae.config.scaling_factor).to(models.dtype), return_dict=False)[0]
    return (image.float() / 2.0 + 0.5).clamp(0.0, 1.0)


def preview_image(models, latents):
    """HxWx3 uint8 of ``latents`` (e.g. a step's clean-latent estimate) for a progress thumbnail: one VAE decode
    without gradients; with offloading, the VAE comes to the accelerator for it."""
    import torch

    with models.using(models.vae), torch.no_grad():
        return tensor_to_image(decode_latents(models, latents.detach()))


def previewer(models, latents):
    """A zero-argument callable giving ``preview_image(models, latents)``: progress callbacks decode only the
    steps they show."""
    return lambda: preview_image(models, latents)


def tensor_to_image(image):
    """1x3xHxW [0, 1] tensor -> HxWx3 uint8 array."""
    array = image[0].detach().float().cpu().permute(1, 2, 0).numpy()
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_prompt(models, prompt: str):
    """CLIP text embeddings (1x77xD) of ``prompt`` ("" gives the unconditional embedding)."""
    import torch

    tokens = models.tokenizer([prompt], padding="max_length", max_length=models.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt")
    with models.using(models.text_encoder), torch.no_grad():
        embeddings = models.text_encoder(tokens.input_ids.to(models.device))[0]
    return embeddings.to(models.dtype).clone()


def depth_condition(depth_hw, latent_hw: tuple[int, int], device, dtype):
    """1x1xhxw depth conditioning from HxW metric depth (any size): the geometry engine's normalised disparity,
    resized bicubically to the latent grid, then min-max normalised to [-1, 1] (as SD2-depth's pipeline does)."""
    import torch

    from ..geometry import normalised_disparity, resample_to_grid

    disparity = normalised_disparity(np.asarray(depth_hw, dtype=np.float32))  # GeometryError on bad depth
    small = torch.as_tensor(resample_to_grid(disparity, latent_hw, mode="bicubic"))[None, None]
    low, high = small.amin(), small.amax()
    normalised = 2.0 * (small - low) / (high - low).clamp_min(1e-8) - 1.0
    return normalised.to(device=device, dtype=dtype)
