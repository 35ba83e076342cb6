"""Guided sampling: the second diffusion pass, on the edited depth, pulled towards the photo's identity.

For each of the N timesteps (noisiest first), starting from the inverted noise:
1. while ``step_index < guided_steps``: ``opt_steps`` gradient steps on the latents (plain SGD, as in the official
   code) on the weighted sum of the identity and background losses over the used layers (weights from
   ``EditSettings.layer_weights``), plus any extra guidance terms; the UNet forward of a gradient step is stopped
   right after the deepest decoder block it needs unless an extra term needs the noise prediction;
2. one denoising step on the edited depth: classifier-free guidance with the timestep's null embedding (null-text
   inversion, batched uncond+cond), or the conditional prediction alone (DDIM/negative-prompt inversion).

Progress: ``progress("edit", step, total, preview=...)`` after each timestep; ``preview()`` decodes that step's
clean-latent estimate (one VAE decode, so callers call it only for the thumbnails they send).

Extension point: extra guidance terms
-------------------------------------
``guided_sample(..., extra_terms=[...])`` accepts any objects with
- ``name`` (str): the key of its losses in the report;
- ``weight`` (float): multiplies its loss; 0 switches it off;
- ``active(step_index: int, t: int) -> bool``: whether it applies at this timestep (step_index 0 is the noisiest);
- ``loss(x0_latents, decode) -> scalar tensor``: its loss, differentiable w.r.t. ``x0_latents`` (1x4xhxw float32,
  the clean-latent estimate of the current latents); ``decode(latents) -> 1x3xHxW`` float32 image in [0, 1] of the
  photo's part of the working frame (``guided_sample``'s ``view`` crops the padding away, so the image has the
  photo's aspect), differentiable (through the VAE decoder; costly, call it once).
A term is evaluated at every gradient step of every timestep where it is active, including timesteps beyond
``guided_steps`` if it says it is active there (then ``opt_steps`` gradient steps are taken for it alone).
Gradients flow from the loss through the UNet's noise prediction into the latents. The perspective engine's
vanishing-point loss plugs in here.
"""

from __future__ import annotations

from . import ddim
from .activations import ActivationHooks, run_unet
from .encoding import previewer
from .guidance import background_loss, identity_loss


def _forward(models, z, t, embeddings, depth, counter):
    import torch

    batch = embeddings.shape[0]
    x = z.to(models.dtype)
    if x.shape[0] != batch:
        x = x.expand(batch, -1, -1, -1)
    x = torch.cat([x, depth.expand(batch, -1, -1, -1)], dim=1)
    out = run_unet(models.unet, x, t, embeddings, counter)
    return None if out is None else out.float()


def guidance_losses(settings, activations, originals, step_index, targets, iteration):
    """(weighted total, unweighted identity mean, unweighted background mean) over the layers in ``activations``."""
    w_identity, w_background = settings.layer_weights(step_index, iteration)
    total, identities, backgrounds = 0.0, [], []
    for layer, wi, wb in zip(settings.layers, w_identity, w_background):
        if layer not in activations:
            continue
        current, original = activations[layer], originals[layer][step_index]
        li = identity_loss(current, original, targets)
        lb = background_loss(current, original, targets, settings.background_loss)
        identities.append(li)
        backgrounds.append(lb)
        total = total + wi * li + wb * lb
    mean = (lambda xs: sum(xs) / len(xs) if xs else None)
    return total, mean(identities), mean(backgrounds)


def _needed_layers(settings, step_index, iteration):
    wi, wb = settings.layer_weights(step_index, iteration)
    return [layer for layer, a, b in zip(settings.layers, wi, wb) if a or b]


def guided_sample(models, inversion, cond, depth, targets, settings, counter, extra_terms=(), progress=None,
                  report_losses=None, view=None):
    """Latents (1x4xhxw float32) of the edited image. ``report_losses`` (a dict) receives identity/background
    losses before and after guidance at the first guided timestep, and per-term extra losses. ``view``: applied
    to the images extra terms decode (1x3xHxW -> the photo's part)."""
    import torch

    steps = ddim.timesteps(models.scheduler, settings.num_steps)
    originals = inversion.activations
    recorded_steps = min((len(v) for v in originals.values()), default=0)
    z = inversion.latents_t.clone().float()
    use_cfg = inversion.null_embeddings is not None and settings.guidance_scale != 1.0
    losses = report_losses if report_losses is not None else {}
    extra_log = losses.setdefault("extra_terms", {})
    view = view or (lambda image: image)
    decode = (lambda latents: view(_decode(models, latents)))
    with ActivationHooks(models.unet, settings.used_layers()) as hooks:
        for i, t in enumerate(steps):
            guided = i < min(settings.guided_steps, recorded_steps)
            if i == 0 and guided:
                losses["identity_before"], losses["background_before"] = _measure(
                    models, z, t, cond, depth, hooks, settings, originals, targets, counter)
            for k in range(settings.opt_steps):
                layers = _needed_layers(settings, i, k) if guided else []
                terms = [term for term in extra_terms if term.weight and term.active(i, t)]
                if not layers and not terms:
                    break
                hooks.enabled = bool(layers)
                hooks.stop_after = max(layers) if layers and not terms else None
                z = z.detach().requires_grad_(True)
                with torch.enable_grad():
                    eps = _forward(models, z, t, cond, depth, counter)
                    total, _, _ = guidance_losses(settings, hooks.take(), originals, i, targets, k)
                    for term in terms:
                        term_loss = term.loss(ddim.predict_x0(models.scheduler, z, eps, t), decode)
                        extra_log.setdefault(term.name, []).append({"step": i, "iteration": k,
                                                                    "loss": float(term_loss.detach())})
                        total = total + term.weight * term_loss
                    if torch.is_tensor(total) and total.requires_grad:
                        (grad,) = torch.autograd.grad(total, [z])
                        counter.backward(1)
                        z = z.detach() - settings.opt_learning_rate * grad
                z = z.detach()
            if i == 0 and guided:
                losses["identity_after"], losses["background_after"] = _measure(
                    models, z, t, cond, depth, hooks, settings, originals, targets, counter)
            with torch.no_grad():
                hooks.enabled = False
                if use_cfg:
                    embeddings = torch.cat([inversion.null_embeddings[i:i + 1].to(cond.dtype), cond])
                    eps_uncond, eps_cond = _forward(models, z, t, embeddings, depth, counter).chunk(2)
                    eps = eps_uncond + settings.guidance_scale * (eps_cond - eps_uncond)
                else:
                    eps = _forward(models, z, t, cond, depth, counter)
                x0 = ddim.predict_x0(models.scheduler, z, eps, t)  # what this step aims at: the preview
                z = ddim.step_down(models.scheduler, z, eps, t)
            if progress:
                progress("edit", i + 1, len(steps), preview=previewer(models, x0))
    return z


def _measure(models, z, t, cond, depth, hooks, settings, originals, targets, counter):
    """Unweighted (identity, background) losses averaged over all used layers at the first timestep: one extra
    forward, measured before and after that timestep's gradient steps for the report."""
    import torch

    layers = [layer for layer in settings.used_layers() if layer in originals]
    hooks.enabled, hooks.stop_after = True, max(layers)
    with torch.no_grad():
        _forward(models, z, t, cond, depth, counter)
        activations = hooks.take()
    hooks.stop_after = None
    identities = [float(identity_loss(activations[layer], originals[layer][0], targets)) for layer in layers]
    backgrounds = [float(background_loss(activations[layer], originals[layer][0], targets, settings.background_loss))
                   for layer in layers]
    return sum(identities) / len(identities), sum(backgrounds) / len(backgrounds)


def _decode(models, latents):
    from .encoding import decode_latents

    return decode_latents(models, latents)
