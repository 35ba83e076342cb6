"""Guided sampling: the second diffusion pass, on the edited depth, pulled towards the photo's identity.

``GuidedSampler.sample()`` starts from the inverted noise and, for each of the N timesteps (noisiest first):
1. ``guidance_step``, while ``step_index < guided_steps`` (``EditSettings``; the official 38 of 50): ``opt_steps``
   gradient steps on the latents (plain SGD, as in the official code) on the weighted sum of the identity and
   background losses over the used layers (weights from ``EditSettings.layer_weights``), plus any extra guidance
   terms; the UNet forward of a gradient step is stopped right after the deepest decoder block it needs unless an
   extra term needs the noise prediction;
2. ``denoising_step`` on the edited depth: classifier-free guidance with the timestep's null embedding (null-text
   inversion, batched uncond+cond), or the conditional prediction alone (DDIM/negative-prompt inversion), then one
   DDIM step; its output (``DenoisingOutput``) holds the next latents and the clean-latent estimate.
It returns a ``GuidedSample``: the final latents, the losses measured for the report (``MeasuredLosses``, only with
``EditSettings.measure_losses``: one extra forward before and one after the first guided timestep's gradient steps)
and the extra terms' losses. ``guided_sample(...)`` is the one-call form.

Randomness: the method draws none (DDIM with eta = 0, Adam and SGD are deterministic). The sampler keeps the run's
``torch.Generator`` (seeded from ``EditSettings.seed`` by the pipeline) as ``generator``, the one source for any
random draw a sampling step or term makes; the process-wide RNG is never seeded or drawn from.

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

from dataclasses import dataclass, field

from . import ddim
from .activations import ActivationHooks
from .encoding import decode_latents, previewer
from .guidance import background_loss, identity_loss
from .unet_call import predict_noise


@dataclass
class MeasuredLosses:
    """Unweighted identity and background losses, each the mean over ``layers`` (indices into
    ``unet.up_blocks``), at timestep index ``step`` (scheduler timestep ``timestep``): before its first gradient step
    and after its last one."""

    layers: list
    step: int
    timestep: int
    identity_before: float
    background_before: float
    identity_after: float | None = None
    background_after: float | None = None

    def to_report(self) -> dict:
        return {"measured": True, "layers": [f"up_blocks[{layer}]" for layer in self.layers], "step": self.step,
                "timestep": self.timestep, "identity_before": self.identity_before,
                "background_before": self.background_before, "identity_after": self.identity_after,
                "background_after": self.background_after}


@dataclass
class GuidedSample:
    latents: object  # 1x4xhxw float32: the edited image's latents
    losses: MeasuredLosses | None = None  # with EditSettings.measure_losses
    extra_terms: dict = field(default_factory=dict)  # term name -> [{"step", "iteration", "loss"}]


@dataclass
class DenoisingOutput:
    latents: object  # the next (less noisy) latents
    x0: object  # the clean-latent estimate this step aims at (the progress preview)


def guidance_losses(settings, activations, originals, step_index, targets, iteration):
    """(weighted total, unweighted identity mean, unweighted background mean) over the layers in ``activations``."""
    w_identity, w_background = settings.layer_weights(step_index, iteration)
    total, identities, backgrounds = 0.0, [], []
    for layer, wi, wb in zip(settings.layers, w_identity, w_background, strict=True):
        if layer not in activations:
            continue
        current, original = activations[layer], originals[layer][step_index]
        li = identity_loss(current, original, targets)
        lb = background_loss(current, original, targets, settings.background_loss)
        identities.append(li)
        backgrounds.append(lb)
        total = total + wi * li + wb * lb
    return total, _mean(identities), _mean(backgrounds)


def _mean(values):
    return sum(values) / len(values) if values else None


class GuidedSampler:
    def __init__(self, models, inversion, cond, depth, targets, settings, counter, extra_terms=(), view=None,
                 generator=None):
        """``depth``: the edited depth conditioning; ``view``: applied to the images extra terms decode (1x3xHxW ->
        the photo's part); ``generator``: the run's ``torch.Generator``."""
        self.models, self.inversion, self.cond, self.depth = models, inversion, cond, depth
        self.targets, self.settings, self.counter = targets, settings, counter
        self.extra_terms, self.generator = tuple(extra_terms), generator
        self.view = view or (lambda image: image)
        self.steps = ddim.timesteps(models.scheduler, settings.num_steps)
        recorded = min((len(v) for v in inversion.activations.values()), default=0)
        self.guided_steps = min(settings.guided_steps, recorded)
        self.use_cfg = inversion.null_embeddings is not None and settings.guidance_scale != 1.0
        self.hooks = None
        self.extra_log: dict = {}

    def sample(self, progress=None) -> GuidedSample:
        z = self.inversion.latents_t.clone().float()
        measured = None
        with ActivationHooks(self.models.unet, self.settings.used_layers()) as self.hooks:
            for i, t in enumerate(self.steps):
                measuring = self.settings.measure_losses and i == 0 and i < self.guided_steps
                if measuring:
                    measured = self.measure(z, i, t)
                z = self.guidance_step(z, i, t)
                if measuring:
                    measured.identity_after, measured.background_after = self._losses_now(z, i, t)
                out = self.denoising_step(z, i, t)
                z = out.latents
                if progress:
                    progress("edit", i + 1, len(self.steps), preview=previewer(self.models, out.x0))
        self.hooks = None
        return GuidedSample(latents=z, losses=measured, extra_terms=self.extra_log)

    def _needed_layers(self, step_index, iteration):
        if step_index >= self.guided_steps:
            return []
        wi, wb = self.settings.layer_weights(step_index, iteration)
        return [layer for layer, a, b in zip(self.settings.layers, wi, wb, strict=True) if a or b]

    def guidance_step(self, z, i, t):
        """Step 1 at timestep index ``i``: up to ``opt_steps`` gradient steps on the latents."""
        for k in range(self.settings.opt_steps):
            layers = self._needed_layers(i, k)
            terms = [term for term in self.extra_terms if term.weight and term.active(i, t)]
            if not layers and not terms:
                break
            z = self._gradient_step(z, i, t, k, layers, terms)
        return z.detach()

    def _gradient_step(self, z, i, t, k, layers, terms):
        import torch

        models, settings = self.models, self.settings
        self.hooks.enabled = bool(layers)
        self.hooks.stop_after = max(layers) if layers and not terms else None
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            eps = predict_noise(models, z, t, self.cond, self.depth, self.counter)
            total, _, _ = guidance_losses(settings, self.hooks.take(), self.inversion.activations, i, self.targets, k)
            for term in terms:
                term_loss = term.loss(ddim.predict_x0(models.scheduler, z, eps, t), self._decode)
                self.extra_log.setdefault(term.name, []).append({"step": i, "iteration": k,
                                                                 "loss": float(term_loss.detach())})
                total = total + term.weight * term_loss
            if torch.is_tensor(total) and total.requires_grad:
                (grad,) = torch.autograd.grad(total, [z])
                self.counter.backward(1)
                return z.detach() - settings.opt_learning_rate * grad
        return z.detach()

    def _decode(self, latents):
        return self.view(decode_latents(self.models, latents))

    def denoising_step(self, z, i, t) -> DenoisingOutput:
        """Step 2 at timestep index ``i``: the noise prediction on the edited depth (with CFG when the inversion
        gave null embeddings) and one DDIM step down."""
        import torch

        models, settings, cond = self.models, self.settings, self.cond
        with torch.no_grad():
            self.hooks.enabled = False
            if self.use_cfg:
                embeddings = torch.cat([self.inversion.null_embeddings[i:i + 1].to(cond.dtype), cond])
                eps_uncond, eps_cond = predict_noise(models, z, t, embeddings, self.depth, self.counter).chunk(2)
                eps = eps_uncond + settings.guidance_scale * (eps_cond - eps_uncond)
            else:
                eps = predict_noise(models, z, t, cond, self.depth, self.counter)
            return DenoisingOutput(latents=ddim.step_down(models.scheduler, z, eps, t),
                                   x0=ddim.predict_x0(models.scheduler, z, eps, t))

    def measure(self, z, i, t) -> MeasuredLosses:
        """The report's losses at timestep index ``i`` before guidance: one extra forward (stopped after the
        deepest used layer)."""
        identity, background = self._losses_now(z, i, t)
        layers = [layer for layer in self.settings.used_layers() if layer in self.inversion.activations]
        return MeasuredLosses(layers=layers, step=i, timestep=int(t), identity_before=identity,
                              background_before=background)

    def _losses_now(self, z, i, t):
        """Unweighted (identity, background) means over the used layers for latents ``z``: one extra forward."""
        import torch

        layers = [layer for layer in self.settings.used_layers() if layer in self.inversion.activations]
        self.hooks.enabled, self.hooks.stop_after = True, max(layers)
        with torch.no_grad():
            predict_noise(self.models, z, t, self.cond, self.depth, self.counter)
            activations = self.hooks.take()
        self.hooks.stop_after = None
        _, identity, background = guidance_losses(self.settings, activations, self.inversion.activations, i,
                                                  self.targets, 0)
        return float(identity), float(background)


def guided_sample(models, inversion, cond, depth, targets, settings, counter, extra_terms=(), progress=None,
                  view=None, generator=None) -> GuidedSample:
    """The guided pass in one call: ``GuidedSampler(...).sample(progress)``."""
    return GuidedSampler(models, inversion, cond, depth, targets, settings, counter, extra_terms, view,
                         generator).sample(progress)
