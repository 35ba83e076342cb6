"""The depth-conditioned Stable Diffusion 2 components as one bundle: UNet (5 input channels: 4 latent + depth),
VAE, CLIP text encoder and tokenizer, DDIM scheduler, plus where and in which precision they run.

``load_diffusion("sd2-depth")`` (the default), a hub id, a local folder in the diffusers layout (``unet/``,
``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``) or ``"tiny"``. ``bundle.save(folder)`` writes that
layout with safetensors, so a saved folder loads back. Low-memory fallbacks (``engine.device.LOW_MEMORY_LEVELS``)
are applied with ``bundle.enable_low_memory()``; with offloading on, ``bundle.using(module)`` moves a model to the
accelerator only while it works.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import hub
from .registry import resolve

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@dataclass
class DiffusionModels:
    name: str
    source: str
    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    scheduler: object
    device: object = None
    dtype: object = None
    low_memory: list = field(default_factory=list)
    weights: str = ""  # which weights: hub commit, local files' fingerprint or random seed (engine.models.hub)
    adapter: object = None  # the LoRA on the UNet (engine.perspective.edit_lora.LoraChoice), part of identity()

    @property
    def offloaded(self) -> bool:
        return "CPU offload of idle models" in self.low_memory

    def to(self, device, dtype) -> DiffusionModels:
        import torch

        self.device, self.dtype = torch.device(device), dtype
        for module in (self.unet, self.vae, self.text_encoder):
            if next(module.parameters()).dtype != dtype:
                module.to(dtype=dtype)
            module.to(device="cpu" if self.offloaded else self.device)
            module.requires_grad_(False)  # guidance differentiates w.r.t. latents only: no weight gradients
        if self.device.type == "cuda":
            self.unet.to(memory_format=torch.channels_last)
        return self

    @contextlib.contextmanager
    def using(self, *modules):
        """Have ``modules`` on the accelerator inside the block (a no-op unless idle models are offloaded).
        Nestable: a module an outer block brought is left where it is."""
        if not self.offloaded:
            yield
            return
        moved = [module for module in modules if next(module.parameters()).device.type == "cpu"]
        for module in moved:
            module.to(self.device)
        try:
            yield
        finally:
            for module in moved:
                module.to("cpu")
            if moved:
                from ..device import free_memory

                free_memory()

    def can_lower_memory(self) -> bool:
        """Whether ``enable_low_memory`` has a fallback left."""
        from ..device import LOW_MEMORY_LEVELS

        return len(self.low_memory) < len(LOW_MEMORY_LEVELS)

    def enable_low_memory(self) -> str | None:
        """Apply the next low-memory fallback; returns its name, or None when all are already on."""
        from ..device import LOW_MEMORY_LEVELS

        if len(self.low_memory) >= len(LOW_MEMORY_LEVELS):
            return None
        level = LOW_MEMORY_LEVELS[len(self.low_memory)]
        if level == "attention slicing":
            self.unet.set_attention_slice("auto")
        elif level == "VAE tiling":
            self.vae.enable_tiling()
            self.vae.enable_slicing()
        else:
            self.low_memory.append(level)
            self.to(self.device, self.dtype)
            return level
        self.low_memory.append(level)
        return level

    def identity(self) -> str:
        """A short stable id of these weights' origin and architecture, for cache keys."""
        digest = hashlib.sha256()
        digest.update(self.source.encode())
        config = {k: v for k, v in dict(self.unet.config).items() if not k.startswith("_")}  # "_" keys vary by run
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        digest.update(self.weights.encode())  # other weights under the same name and config: another identity
        identity = f"{self.name}@{digest.hexdigest()[:12]}"
        return identity if self.adapter is None else f"{identity}+{self.adapter.identity()}"

    def save(self, folder) -> Path:
        folder = Path(folder)
        for name in COMPONENTS:
            component = getattr(self, name)
            if name in ("unet", "vae", "text_encoder"):
                component.save_pretrained(folder / name, safe_serialization=True)
            else:
                component.save_pretrained(folder / name)
        (folder / "model_index.json").write_text(json.dumps({
            "_class_name": "StableDiffusionDepth2ImgPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "DDIMScheduler"]}, indent=1))
        return folder


def load_diffusion(name_or_path: str | None = None, device=None, dtype=None) -> DiffusionModels:
    """Load the SD2-depth bundle (see module docstring) onto ``device`` in ``dtype`` (defaults: engine.device
    policy). Raises ``ModelMissingError`` naming the model when weights are not available."""
    from diffusers import DDIMScheduler

    from ..device import pick_device, pick_dtype

    name, source = resolve(name_or_path, "diffusion")
    device = pick_device(device if device is None else str(device))
    dtype = dtype if dtype is not None else pick_dtype(device)
    if source == "tiny":
        from .tiny import TINY_SEED, build_tiny_diffusion

        parts, weights = build_tiny_diffusion(TINY_SEED), f"seed:{TINY_SEED}"
    elif source == "random":
        from .full_size_random import build_full_size_random

        seed = 0
        parts, weights = build_full_size_random(seed), f"seed:{seed}"
    else:
        parts, source, weights = _load_real(name_or_path, dtype)
    if parts["unet"].config.in_channels != 5:
        raise ValueError(f"'{name}' is not depth-conditioned: its UNet takes {parts['unet'].config.in_channels} "
                         "input channels, Diffusion Handles needs 5 (4 latent + depth), as in SD2-depth.")
    # DDIM as Diffusion Handles uses it: deterministic (eta 0), no clipping, alpha_0 of the first trained step
    parts["scheduler"] = DDIMScheduler.from_config(parts["scheduler"].config, clip_sample=False,
                                                   set_alpha_to_one=False)
    bundle = DiffusionModels(name=name, source=source, weights=weights, **parts)
    return bundle.to(device, dtype)


WHAT = "depth-conditioned diffusion model"


def _load_real(name_or_path, dtype) -> tuple[dict, str, str]:
    """(parts, where from, weights identity) from the first source that has the model (``sources.find``)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .sources import ensure_local, find

    located = ensure_local(find(name_or_path, "diffusion", WHAT, "unet/config.json"), WHAT)
    if located.kind == "single_file":
        from .single_file import load_single_file

        parts = load_single_file(located.where, name_or_path, dtype)
        return parts, located.where, hub.weights_identity(located.where, "")
    parts = {
        # loaded straight in the compute dtype: no transient fp32 copy of 1.3B parameters
        "unet": hub.load(UNet2DConditionModel, located, WHAT, subfolder="unet", dtype=dtype),
        "vae": hub.load(AutoencoderKL, located, WHAT, subfolder="vae", dtype=dtype),
        "text_encoder": hub.load(CLIPTextModel, located, WHAT, subfolder="text_encoder", dtype=dtype),
        "tokenizer": hub.load(CLIPTokenizer, located, WHAT, subfolder="tokenizer", safetensors=False),
        "scheduler": hub.load(DDIMScheduler, located, WHAT, subfolder="scheduler", safetensors=False),
    }
    return parts, located.where, hub.weights_identity(located.where, "unet/config.json")
