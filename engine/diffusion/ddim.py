"""Deterministic DDIM steps (eta = 0) in both directions, on the scheduler's own noise schedule.

``timesteps(scheduler, n)`` are the sampling timesteps, noisiest first: the official Diffusion Handles schedule,
"leading" spacing with offset 0 (stride ``num_train_timesteps // n``: 980, 960, ..., 0 for 50 steps), whatever
``steps_offset`` or ``timestep_spacing`` the model folder's scheduler config names (the published SD2-depth config
says offset 1, which would sample at 981 ... 1). ``step_down`` goes from timestep ``t`` to the
next one of the sampling order (less noise), ``step_up`` the reverse (inversion). ``predict_x0`` is the clean-latent
estimate guidance terms look at. All in float32 whatever the UNet's dtype.
"""

from __future__ import annotations


def timesteps(scheduler, num_steps: int) -> list[int]:
    num_steps = int(num_steps)
    scheduler.set_timesteps(num_steps)  # the scheduler's step count, which ``_previous`` reads
    stride = scheduler.config.num_train_timesteps // num_steps
    return [step * stride for step in reversed(range(num_steps))]


def _alpha(scheduler, t: int):
    return scheduler.alphas_cumprod[t] if t >= 0 else scheduler.final_alpha_cumprod


def _previous(scheduler, t: int) -> int:
    return t - scheduler.config.num_train_timesteps // scheduler.num_inference_steps


def predict_x0(scheduler, latents, eps, t: int):
    a = _alpha(scheduler, t).to(latents.device)
    return (latents - (1 - a).sqrt() * eps) / a.sqrt()


def step_down(scheduler, latents, eps, t: int):
    """x_t -> x_{t - stride}."""
    eps = eps.float()
    a_prev = _alpha(scheduler, _previous(scheduler, t)).to(latents.device)
    x0 = predict_x0(scheduler, latents, eps, t)
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps


def step_up(scheduler, latents, eps, t: int):
    """x_{t - stride} -> x_t, with eps predicted at the lower noise level (the usual DDIM inversion)."""
    eps = eps.float()
    a_low = _alpha(scheduler, _previous(scheduler, t)).to(latents.device)
    a_t = _alpha(scheduler, t).to(latents.device)
    x0 = (latents - (1 - a_low).sqrt() * eps) / a_low.sqrt()
    return a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
