"""One call of the depth-conditioned UNet, used by every pass (inversion, reconstruction, guidance, denoising).

SD2-depth's UNet takes 5 input channels: the 4 latent channels and the depth conditioning
(``encoding.depth_condition``) as the fifth. ``predict_noise`` builds that input for a batch of prompt embeddings
(one latent and one depth map broadcast to it: a CFG batch is uncond + cond on the same latents) and returns the
noise prediction in float32 whatever the UNet's dtype, or None when an activation hook ended the forward early
(``activations.StopForward``). Every call is counted in the report's UNet evaluations.
"""

from __future__ import annotations

from .activations import run_unet


def unet_input(latents, depth, batch: int, dtype):
    """Bx5xhxw: ``latents`` (1 or B x4xhxw) and ``depth`` (1x1xhxw) broadcast to ``batch``, in ``dtype``."""
    import torch

    x = latents.to(dtype)
    if x.shape[0] != batch:
        x = x.expand(batch, -1, -1, -1)
    return torch.cat([x, depth.to(dtype).expand(batch, -1, -1, -1)], dim=1)


def predict_noise(models, latents, t, embeddings, depth, counter=None):
    """The UNet's noise prediction (float32, one per embedding) for ``latents`` at timestep ``t``, or None."""
    batch = embeddings.shape[0]
    out = run_unet(models.unet, unet_input(latents, depth, batch, models.dtype), t, embeddings, counter)
    return None if out is None else out.float()
