"""``sd2-depth-random``: the full-size SD2-depth architecture (the published configs of
stabilityai/stable-diffusion-2-depth: UNet 865M parameters, VAE, OpenCLIP ViT-H text encoder) with seeded random
weights. It costs exactly what the real model costs, so benchmarks run on machines without the weights; its images
are noise. The tokenizer is the tiny byte-level one (token ids are all that matter for cost).
"""

from __future__ import annotations

UNET = dict(
    sample_size=64, in_channels=5, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024, use_linear_projection=True, norm_num_groups=32,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, act_fn="silu", flip_sin_to_cos=True, freq_shift=0)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    norm_num_groups=32, sample_size=768, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu", scaling_factor=0.18215)
TEXT = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
            max_position_embeddings=77, hidden_act="gelu", projection_dim=512, layer_norm_eps=1e-5)
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


def build_unet(seed: int = 0):
    import torch
    from diffusers import UNet2DConditionModel

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return UNet2DConditionModel(**UNET).eval()
    finally:
        torch.random.set_rng_state(state)


def build_full_size_random(seed: int = 0) -> dict:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    from .tiny import tiny_clip_tokenizer

    tokenizer = tiny_clip_tokenizer()
    unet = build_unet(seed)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed + 1)
    try:
        vae = AutoencoderKL(**VAE).eval()
        text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT, bos_token_id=tokenizer.bos_token_id,
                                                    eos_token_id=tokenizer.eos_token_id,
                                                    pad_token_id=tokenizer.pad_token_id)).eval()
    finally:
        torch.random.set_rng_state(state)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": DDIMScheduler(**SCHEDULER)}
