"""The ``tiny`` presets: the real architectures (same classes, same block types) from small configs, with seeded
random weights. They run the whole pipeline in seconds on a CPU, for tests and plumbing checks; their images are
noise. Nothing here is ever used in place of a missing real model.
"""

from __future__ import annotations

TINY_SEED = 1234


def tiny_clip_tokenizer(model_max_length: int = 77):
    """A byte-level CLIP tokenizer with no merges: one token per character, the real ``CLIPTokenizer`` class."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())  # the 256 characters byte-level BPE maps bytes to
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def _seeded(seed: int):
    import torch

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    return generator_state


def build_tiny_diffusion(seed: int = TINY_SEED) -> dict:
    """Components of a tiny SD2-depth: UNet (5 input channels, cross-attention up_blocks[1..3] like SD2), VAE with
    an 8x downsampling, CLIP text encoder and tokenizer, DDIM scheduler with SD2's beta schedule."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    state = _seeded(seed)
    try:
        tokenizer = tiny_clip_tokenizer()
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77, projection_dim=32, hidden_act="gelu",
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id))
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=5, out_channels=4, layers_per_block=1,
            block_out_channels=(16, 32, 32, 32), norm_num_groups=8, cross_attention_dim=32,
            attention_head_dim=(2, 4, 4, 4), use_linear_projection=True,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=1,
            block_out_channels=(8, 16, 16, 16), norm_num_groups=8,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    finally:
        torch.random.set_rng_state(state)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    for module in (unet, vae, text_encoder):
        module.eval()
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def build_tiny_depth(seed: int = TINY_SEED):
    """(image processor, model): Depth Anything (DINOv2 backbone, DPT head) in metric mode, tiny."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    try:  # transformers 5 splits image processors by backend; the PIL one needs no torchvision
        from transformers import DPTImageProcessorPil as DPTImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import DPTImageProcessor

    state = _seeded(seed)
    try:
        backbone = Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                                patch_size=14, image_size=56, out_indices=[1, 2, 3, 4],
                                out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
        config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16,
                                     neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=8, head_hidden_size=8,
                                     depth_estimation_type="metric", max_depth=20)
        model = DepthAnythingForDepthEstimation(config).eval()
    finally:
        torch.random.set_rng_state(state)
    processor = DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                                  do_pad=False, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return processor, model


def build_tiny_zoedepth(seed: int = TINY_SEED):
    """(image processor, model): ZoeDepth (BEiT backbone, DPT neck, metric bins head), tiny; its processor pads
    the photo by reflection, as the real one does."""
    import torch
    from transformers import BeitConfig, ZoeDepthConfig, ZoeDepthForDepthEstimation

    try:
        from transformers import ZoeDepthImageProcessorPil as ZoeDepthImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import ZoeDepthImageProcessor

    state = _seeded(seed)
    try:
        backbone = BeitConfig(image_size=64, patch_size=16, num_hidden_layers=4, hidden_size=32, intermediate_size=64,
                              num_attention_heads=2, use_relative_position_bias=True, reshape_hidden_states=False,
                              out_features=["stage1", "stage2", "stage3", "stage4"])
        config = ZoeDepthConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                bottleneck_features=16, num_relative_features=8, bin_embedding_dim=16,
                                num_attractors=[4, 4, 2, 1],
                                bin_configurations=[{"n_bins": 8, "min_depth": 0.001, "max_depth": 10.0}])
        model = ZoeDepthForDepthEstimation(config).eval()
    finally:
        torch.random.set_rng_state(state)
    processor = ZoeDepthImageProcessor(size={"height": 64, "width": 64}, keep_aspect_ratio=True, ensure_multiple_of=16)
    return processor, model


def build_tiny_segmentation(seed: int = TINY_SEED):
    """(processor, model): CLIPSeg, tiny, with the byte-level tokenizer."""
    import torch
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        CLIPSegTextConfig,
        CLIPSegVisionConfig,
    )

    try:
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import CLIPImageProcessor

    tokenizer = tiny_clip_tokenizer()
    state = _seeded(seed)
    try:
        config = CLIPSegConfig(
            text_config=CLIPSegTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                          num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                          pad_token_id=tokenizer.pad_token_id),
            vision_config=CLIPSegVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                              num_attention_heads=2, image_size=32, patch_size=8),
            projection_dim=16, extract_layers=[0, 1, 2], reduce_dim=8, decoder_num_attention_heads=2,
            decoder_intermediate_size=16)
        model = CLIPSegForImageSegmentation(config).eval()
    finally:
        torch.random.set_rng_state(state)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                         do_center_crop=False)
    image_processor.size = {"height": 32, "width": 32}
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return processor, model


def build_tiny_inpainting(seed: int = TINY_SEED) -> dict:
    """A tiny SD inpainting model: the tiny diffusion components with a 9-channel UNet (latents, mask, masked
    image latents), as Stable Diffusion 2 inpainting."""
    import torch
    from diffusers import UNet2DConditionModel

    parts = build_tiny_diffusion(seed)
    config = dict(parts["unet"].config)
    config["in_channels"] = 9
    state = _seeded(seed + 1)
    try:
        parts["unet"] = UNet2DConditionModel.from_config(config).eval()
    finally:
        torch.random.set_rng_state(state)
    return parts
