"""Inverting the photo so that sampling from the result reconstructs it, and recording the UNet decoder
activations of that reconstruction (what guidance later pulls the edit towards).

Two methods (``EditSettings.inversion``), costs in batch-1 UNet forward equivalents for N steps, k inner steps
(a backward counts 2):
- ``null-text`` (the paper; Mokady et al. 2023): DDIM inversion with the prompt (N), then per timestep an Adam
  optimisation of the unconditional ("null") embedding so that the CFG step lands on the inversion trajectory
  (<= 3kN), plus one conditional forward (N) and one unconditional forward with the optimised embedding (N).
  The activations are recorded during the conditional forwards, which run on exactly the latents the
  reconstruction visits, so there is no separate reconstruction pass: <= 3N + 3kN = 900 at N=50, k=5, against
  the official ~950 for inversion plus ~150 for its reconstruction pass.
- ``ddim`` (cheap; equivalent to negative-prompt inversion, Miyake et al. 2023): DDIM inversion with the prompt (N)
  and a reconstruction pass with the prompt as the null embedding, which reduces CFG to the conditional branch (N,
  recording activations): 2N = 100 at N=50. Reconstruction is as good as DDIM inversion is (slightly soft), and
  edits then sample without classifier-free guidance, which also halves the cost of their denoising steps.

Progress: ``progress(stage, step, total, preview=None)`` per step; during the reconstruction ``preview`` is a
callable that decodes the step's clean-latent estimate (see ``engine.diffusion.pipeline``).

``invert(...)`` returns an ``Inversion``: the starting noise, per-timestep null embeddings (null-text only), the
activations of the used layers for the first ``guided_steps`` timesteps, and how well the latents reconstruct.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ddim
from .activations import ActivationHooks
from .encoding import previewer
from .unet_call import predict_noise


@dataclass
class Inversion:
    latents_t: object  # 1x4xhxw float32: the inverted noise x_T
    null_embeddings: object  # Nx77xD (one per timestep), or None: use the prompt (no CFG)
    activations: dict  # layer -> S x C x gh x gw, recorded on the reconstruction trajectory
    reconstruction_mse: float  # latent MSE between the reconstruction and the photo's latents
    method: str


def ddim_invert(models, latents0, cond, depth, steps, counter, progress=None):
    """The DDIM inversion trajectory [x_0, x_t1, ..., x_T] (float32), noise predicted with the prompt."""
    import torch

    trajectory = [latents0.float()]
    z = latents0.float()
    with torch.no_grad():
        for n, t in enumerate(reversed(steps)):
            z = ddim.step_up(models.scheduler, z, predict_noise(models, z, t, cond, depth, counter), t)
            trajectory.append(z)
            if progress:
                progress("invert", n + 1, len(steps))
    return trajectory


def _store(recorded, outputs, layers):
    for layer in layers:
        recorded[layer].append(outputs[layer].detach()[0])


def invert(models, latents0, cond, uncond, depth, settings, counter, progress=None) -> Inversion:
    with models.using(models.unet):
        return _invert(models, latents0, cond, uncond, depth, settings, counter, progress)


def _invert(models, latents0, cond, uncond, depth, settings, counter, progress) -> Inversion:
    import torch

    steps = ddim.timesteps(models.scheduler, settings.num_steps)
    layers = settings.used_layers()
    trajectory = ddim_invert(models, latents0, cond, depth, steps, counter, progress)
    recorded = {layer: [] for layer in layers}
    null_embeddings = []
    z = trajectory[-1].clone()
    with ActivationHooks(models.unet, layers) as hooks:
        for i, t in enumerate(steps):
            hooks.enabled = i < settings.guided_steps and bool(layers)
            with torch.no_grad():
                eps_cond = predict_noise(models, z, t, cond, depth, counter)
            if hooks.enabled:
                _store(recorded, hooks.take(), layers)
            hooks.enabled = False
            if settings.inversion == "null-text":
                null = _optimise_null(models, z, t, i, eps_cond, uncond, depth, trajectory[-i - 2], settings, counter)
                null_embeddings.append(null)
                with torch.no_grad():
                    eps_uncond = predict_noise(models, z, t, null, depth, counter)
                eps = eps_uncond + settings.guidance_scale * (eps_cond - eps_uncond)
                uncond = null
            else:
                eps = eps_cond
            if progress:  # the reconstruction's clean estimate at this step, decoded only if shown
                x0 = ddim.predict_x0(models.scheduler, z, eps.float(), t)
            z = ddim.step_down(models.scheduler, z, eps, t)
            if progress:
                progress("reconstruct", i + 1, len(steps), preview=previewer(models, x0))
    activations = {layer: torch.stack(recorded[layer]) for layer in layers if recorded[layer]}
    return Inversion(
        latents_t=trajectory[-1].clone(),
        null_embeddings=torch.cat(null_embeddings) if null_embeddings else None,
        activations=activations,
        reconstruction_mse=float(((z - latents0.float()) ** 2).mean()),
        method=settings.inversion)


def _optimise_null(models, z, t, i, eps_cond, uncond, depth, target, settings, counter):
    """Null-text optimisation at one timestep: the null embedding that makes the CFG step land on ``target``."""
    import torch

    null = uncond.detach().float().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([null], lr=settings.null_learning_rate * (1.0 - i / 100.0))
    threshold = settings.null_early_stop + i * 2e-5
    with torch.enable_grad():
        for _ in range(settings.null_inner_steps):
            eps_uncond = predict_noise(models, z, t, null.to(models.dtype), depth, counter)
            eps = eps_uncond + settings.guidance_scale * (eps_cond - eps_uncond)
            loss = torch.nn.functional.mse_loss(ddim.step_down(models.scheduler, z, eps, t), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            counter.backward(1)
            optimiser.step()
            if loss.item() < threshold:
                break
    return null.detach().to(models.dtype)
