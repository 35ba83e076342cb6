"""LoRA fine-tuning of the depth-conditioned UNet with the perspective loss (Upadhyay et al., arXiv 2312.00944).

Objective per batch: the usual noise-prediction MSE plus ``lambda`` x the perspective loss between the VAE-decoded
clean-image prediction (from the predicted noise, at the sampled timestep) and the training image, on the sample's
vanishing points; the paper uses lambda = 0.01 at every timestep. Only LoRA adapters (peft) on the UNet's attention
projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) train; the VAE and text encoder are frozen, and the
gradient of the perspective term reaches the adapters through the VAE decoder.

Adapters are saved as ``adapter_model.safetensors`` + ``adapter_config.json`` (+ ``training.json``: settings,
losses and the base model's identity) and load into a UNet with ``load_perspective_lora(unet, folder)``; edits
use them through the jobs' ``lora`` parameter (``edit_lora.py``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
ADAPTER_NAME = "perspective"
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"


def missing_adapter_files(folder: Path) -> list:
    """Which of the files an adapter folder holds (``WEIGHTS_FILE``, ``CONFIG_FILE``) ``folder`` lacks. Standard
    library only: Blender's side checks its Perspective Adapters setting with it too."""
    return [name for name in (WEIGHTS_FILE, CONFIG_FILE) if not (Path(folder) / name).is_file()]


@dataclass
class FinetuneSettings:
    steps: int = 1000
    batch_size: int = 1
    learning_rate: float = 1e-4
    rank: int = 8
    alpha: float = 8.0
    perspective_weight: float = 0.01  # the paper's lambda
    resolution: int = 512
    num_lines: int = 1000
    timestep_range: tuple = (0, 999)
    seed: int = 0
    log_every: int = 10
    losses: list = field(default_factory=list)  # filled while training: one entry per logged step

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch size must be at least 1.")
        if self.resolution % 64 or self.resolution < 64:
            raise ValueError(f"The resolution must be a positive multiple of 64, not {self.resolution}.")
        if self.rank < 1:
            raise ValueError("The LoRA rank must be at least 1.")


def lora_config(rank: int, alpha: float):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(TARGET_MODULES))


def add_perspective_lora(unet, rank: int = 8, alpha: float = 8.0):
    """Add fresh, trainable LoRA adapters to ``unet`` (the rest frozen); returns the trainable parameters."""
    unet.requires_grad_(False)
    unet.add_adapter(lora_config(rank, alpha), adapter_name=ADAPTER_NAME)
    return [p for p in unet.parameters() if p.requires_grad]


def save_perspective_lora(unet, folder, extra: dict | None = None) -> Path:
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME)
    save_file({k: v.detach().float().cpu().contiguous() for k, v in state.items()}, str(folder / WEIGHTS_FILE))
    config = unet.peft_config[ADAPTER_NAME]
    (folder / CONFIG_FILE).write_text(json.dumps({"r": config.r, "lora_alpha": config.lora_alpha,
                                                  "target_modules": sorted(config.target_modules),
                                                  "adapter_name": ADAPTER_NAME}, indent=1))
    if extra is not None:
        (folder / "training.json").write_text(json.dumps(extra, indent=1, default=str))
    return folder


def load_perspective_lora(unet, folder, scale: float = 1.0):
    """Load adapters saved by ``save_perspective_lora`` into ``unet`` (frozen, active, scaled by ``scale``).

    Raises FileNotFoundError for a folder without the adapter files, ValueError for adapters that do not fit
    ``unet`` (trained for another architecture) or unreadable files; ``unet`` is then left without adapters."""
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"'{folder}' holds no perspective LoRA ({WEIGHTS_FILE} and {CONFIG_FILE}); train "
                                "one with 'python -m engine finetune-perspective'.")
    unload_perspective_lora(unet)  # loading again replaces, e.g. in an engine that keeps the model warm
    try:
        _load_adapter(unet, folder)
    except BaseException:
        unload_perspective_lora(unet)  # never leave a half-loaded adapter on a model that stays warm
        raise
    unet.set_adapters([ADAPTER_NAME], weights=[scale])
    unet.requires_grad_(False)
    return unet


def _load_adapter(unet, folder: Path) -> None:
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        lora = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"], target_modules=config["target_modules"])
        state = load_file(str(folder / WEIGHTS_FILE))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, SafetensorError, OSError) as error:
        raise ValueError(f"The LoRA in '{folder}' cannot be read ({type(error).__name__}: {error}); train it again "
                         "with 'python -m engine finetune-perspective'.") from None
    unet.add_adapter(lora, adapter_name=ADAPTER_NAME)
    try:
        result = set_peft_model_state_dict(unet, state, adapter_name=ADAPTER_NAME)
    except RuntimeError as error:  # load_state_dict: weights shaped for another UNet
        if "size mismatch" not in str(error):
            raise
        raise ValueError(_mismatch(folder, "its weights have other shapes than this UNet's")) from None
    unexpected = list(getattr(result, "unexpected_keys", None) or [])
    missing = [key for key in getattr(result, "missing_keys", None) or [] if f".{ADAPTER_NAME}." in key]
    if unexpected or missing:
        example = (unexpected or missing)[0]
        raise ValueError(_mismatch(folder, f"{len(unexpected)} of its weights have no place in this UNet and "
                                           f"{len(missing)} of this UNet's adapter weights are not in it "
                                           f"(e.g. {example})"))


def _mismatch(folder: Path, what: str) -> str:
    trained_on = ""
    try:
        trained_on = f" It was trained on '{json.loads((folder / 'training.json').read_text())['model']}'."
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return (f"The LoRA in '{folder}' was trained for another model: {what}.{trained_on} Use it with the model it "
            "was trained on, or train one for this model with 'python -m engine finetune-perspective --model ...'.")


def adapter_fingerprint(folder) -> str:
    """A short hash of the adapter's weights and configuration: its identity in cache keys and reports."""
    import hashlib

    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        with open(Path(folder) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def unload_perspective_lora(unet) -> None:
    """Remove the perspective adapters from ``unet`` if it has them: back to the base model."""
    if ADAPTER_NAME in (getattr(unet, "peft_config", None) or {}):
        unet.delete_adapters(ADAPTER_NAME)


class Batches:
    """Training tensors of the samples on the models' device: images in [-1, 1], depth conditioning, caption
    embeddings, VPs; encoded once (the VAE and text encoder are frozen)."""

    def __init__(self, models, samples):
        import torch

        from ..diffusion.encoding import depth_condition, encode_prompt

        self.samples = samples
        size = samples[0].image.shape[:2]
        if any(s.image.shape[:2] != size for s in samples):
            raise ValueError("All training images must have one size; give --resolution to resize them.")
        latent_hw = (size[0] // 8, size[1] // 8)
        images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
        self.images = images.to(models.device, torch.float32)  # [0, 1], the perspective loss's references
        with torch.no_grad(), models.using(models.vae):
            pixels = (self.images * 2 - 1).to(models.dtype)
            self.latents = models.vae.encode(pixels).latent_dist.mean.float() * models.vae.config.scaling_factor
        self.depth = torch.cat([depth_condition(s.depth, latent_hw, models.device, models.dtype) for s in samples])
        self.embeddings = torch.cat([encode_prompt(models, s.caption) for s in samples])
        self.vps = [np.asarray(s.vps) for s in samples]

    def __len__(self):
        return len(self.samples)

    def vps_tensor(self, indices):
        """BxKx3 VPs of ``indices``, padded with NaN rows (skipped by the loss) to the largest K."""
        k = max(len(self.vps[i]) for i in indices)
        out = np.full((len(indices), k, 3), np.nan)
        for row, i in enumerate(indices):
            out[row, :len(self.vps[i])] = self.vps[i]
        return out


def combined_loss(models, batches, indices, noise, timesteps, perspective_weight: float, num_lines: int):
    """(total, noise MSE, perspective loss) of the UNet on samples ``indices`` with given noise and timesteps."""
    import torch
    import torch.nn.functional as F

    from ..diffusion.encoding import decode_latents
    from ..diffusion.unet_call import unet_input
    from .loss import perspective_loss

    scheduler = models.scheduler
    index = torch.as_tensor(indices, device=models.device)
    latents = batches.latents[index]
    noisy = scheduler.add_noise(latents, noise, timesteps)
    unet_in = unet_input(noisy, batches.depth[index], len(indices), models.dtype)
    prediction = models.unet(unet_in, timesteps, encoder_hidden_states=batches.embeddings[index]).sample.float()
    alphas = scheduler.alphas_cumprod.to(models.device)[timesteps].view(-1, 1, 1, 1)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
        x0 = alphas.sqrt() * noisy - (1 - alphas).sqrt() * prediction
    else:
        target = noise
        x0 = (noisy - (1 - alphas).sqrt() * prediction) / alphas.sqrt()
    mse = F.mse_loss(prediction, target)
    if perspective_weight == 0:
        return mse, mse, torch.zeros_like(mse)
    decoded = decode_latents(models, x0)
    perspective = perspective_loss(decoded, batches.images[index], batches.vps_tensor(indices), num_lines=num_lines)
    return mse + perspective_weight * perspective, mse, perspective


def finetune(models, samples, settings: FinetuneSettings, progress=None) -> dict:
    """Train perspective LoRA adapters on ``models.unet`` (in place). Returns a summary with the losses."""
    import torch

    if models.dtype != torch.float32:
        raise ValueError("Fine-tuning runs in float32 (LoRA weights and their gradients); load the model with "
                         "dtype fp32.")
    generator = torch.Generator().manual_seed(settings.seed)
    parameters = add_perspective_lora(models.unet, settings.rank, settings.alpha)
    models.unet.train()
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate)
    batches = Batches(models, samples)
    low, high = settings.timestep_range
    start = time.perf_counter()
    for step in range(settings.steps):
        indices = torch.randint(len(batches), (settings.batch_size,), generator=generator).tolist()
        noise = torch.randn(batches.latents[indices].shape, generator=generator).to(models.device)
        timesteps = torch.randint(low, high + 1, (settings.batch_size,), generator=generator).to(models.device)
        total, mse, perspective = combined_loss(models, batches, indices, noise, timesteps,
                                                settings.perspective_weight, settings.num_lines)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if step % settings.log_every == 0 or step == settings.steps - 1:
            entry = {"step": step, "total": total.item(), "mse": mse.item(), "perspective": perspective.item()}
            settings.losses.append(entry)
            if progress:
                progress(entry)
    models.unet.eval()
    models.unet.requires_grad_(False)
    return {"seconds": round(time.perf_counter() - start, 3), "samples": len(samples),
            "settings": {k: v for k, v in asdict(settings).items() if k != "losses"}, "losses": settings.losses}
