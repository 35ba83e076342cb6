"""A single-file checkpoint in the original Stable Diffusion layout (``model.diffusion_model.*``), written here from
the tiny model's UNet, loads through engine/models/single_file.py and gives the same UNet outputs as the folder;
``.ckpt`` files are refused with a message on converting them."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.models import ModelMissingError, load_diffusion  # noqa: E402
from engine.models.single_file import load_unet  # noqa: E402

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
       "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def original_unet_key(key: str, per_block: int, attention_ups: set[int]) -> str:
    """The original (LDM) name of a diffusers UNet parameter, for a UNet with ``per_block`` layers per block."""
    for new, old in TOP.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    block = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*)", key)
    mid = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if mid:
        part, index, rest = mid.group(1), int(mid.group(2)), mid.group(3)
        return f"middle_block.{1 if part == 'attentions' else 2 * index}.{_resnet(rest) if part == 'resnets' else rest}"
    side, i, part, j, rest = block.group(1), int(block.group(2)), block.group(3), int(block.group(4)), block.group(5)
    if side == "down":
        if part == "downsamplers":
            return f"input_blocks.{(i + 1) * (per_block + 1)}.0.op.{rest.split('.', 1)[1]}"
        index = 1 + i * (per_block + 1) + j
        return f"input_blocks.{index}.{0 if part == 'resnets' else 1}.{_resnet(rest) if part == 'resnets' else rest}"
    if part == "upsamplers":
        return f"output_blocks.{i * (per_block + 1) + per_block}.{2 if i in attention_ups else 1}.{rest}"
    index = i * (per_block + 1) + j
    return f"output_blocks.{index}.{0 if part == 'resnets' else 1}.{_resnet(rest) if part == 'resnets' else rest}"


def _resnet(rest: str) -> str:
    name, _, tail = rest.partition(".")
    return f"{RESNET[name]}.{tail}"


VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def original_vae_key(key: str, up_blocks: int) -> str:
    """The original name of a diffusers VAE parameter (the decoder's up blocks are numbered from the bottom)."""
    key = key.replace("conv_norm_out", "norm_out")
    for new, old in VAE_ATTENTION.items():
        key = re.sub(rf"(mid_block\.attentions\.0\.){re.escape(new)}\.", rf"\g<1>{old}.", key)
    key = key.replace("mid_block.attentions.0.", "mid.attn_1.")
    key = re.sub(r"mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m.group(1)) + 1}.", key)
    key = re.sub(r"down_blocks\.(\d+)\.resnets\.", r"down.\1.block.", key)
    key = re.sub(r"down_blocks\.(\d+)\.downsamplers\.0\.", r"down.\1.downsample.", key)
    key = re.sub(r"up_blocks\.(\d+)\.resnets\.", lambda m: f"up.{up_blocks - 1 - int(m.group(1))}.block.", key)
    key = re.sub(r"up_blocks\.(\d+)\.upsamplers\.0\.",
                 lambda m: f"up.{up_blocks - 1 - int(m.group(1))}.upsample.", key)
    return key.replace("conv_shortcut", "nin_shortcut")


CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
              "self_attn.out_proj": "attn.out_proj"}


def original_text_state(text_encoder) -> dict:
    """The text encoder in OpenCLIP's layout, as SD2 checkpoints hold it (q, k, v in one in_proj)."""
    state = {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()}
    out = {"token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
           "positional_embedding": state.pop("embeddings.position_embedding.weight"),
           "ln_final.weight": state.pop("final_layer_norm.weight"), "ln_final.bias": state.pop("final_layer_norm.bias")}
    for index in range(text_encoder.config.num_hidden_layers):
        layer = f"encoder.layers.{index}."
        block = f"transformer.resblocks.{index}."
        for part in ("weight", "bias"):
            out[f"{block}attn.in_proj_{part}"] = torch.cat(
                [state.pop(f"{layer}self_attn.{q}_proj.{part}") for q in ("q", "k", "v")])
        for new, old in CLIP_LAYER.items():
            for part in ("weight", "bias"):
                out[f"{block}{old}.{part}"] = state.pop(f"{layer}{new}.{part}")
    assert not [k for k in state if not k.endswith("position_ids")], state.keys()  # every weight was placed
    return out


def write_original_checkpoint(models, path) -> None:
    """The tiny bundle as one file in the original SD2 layout (UNet, VAE, OpenCLIP text encoder)."""
    from safetensors.torch import save_file

    config = models.unet.config
    ups = {i for i, kind in enumerate(config.up_block_types) if kind.startswith("CrossAttn")}
    state = {f"model.diffusion_model.{original_unet_key(k, config.layers_per_block, ups)}": v
             for k, v in models.unet.state_dict().items()}
    up_blocks = len(models.vae.config.up_block_types)
    state.update({f"first_stage_model.{original_vae_key(k, up_blocks)}": v for k, v in models.vae.state_dict().items()})
    state.update({f"cond_stage_model.model.{k}": v for k, v in original_text_state(models.text_encoder).items()})
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    load_diffusion("tiny", device="cpu").save(folder)
    return folder


def test_single_file_unet_matches_the_folder(tiny_folder, tmp_path):
    folder_model = load_diffusion(str(tiny_folder), device="cpu", dtype=torch.float32)
    write_original_checkpoint(folder_model, tmp_path / "512-depth-ema.safetensors")
    unet = load_unet(tmp_path / "512-depth-ema.safetensors", tiny_folder, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 5, 8, 8, generator=generator)
    context = torch.randn(1, 7, 32, generator=generator)
    with torch.no_grad():
        expected = folder_model.unet(sample, 10, encoder_hidden_states=context).sample
        got = unet(sample, 10, encoder_hidden_states=context).sample
    assert torch.allclose(expected, got, atol=1e-6), (expected - got).abs().max()


def test_the_whole_bundle_loads_from_the_single_file(tiny_folder, tmp_path):
    from engine.models.single_file import load_single_file

    folder_model = load_diffusion(str(tiny_folder), device="cpu", dtype=torch.float32)
    write_original_checkpoint(folder_model, tmp_path / "model.safetensors")
    parts = load_single_file(tmp_path / "model.safetensors", dtype=torch.float32, config_folder=tiny_folder)
    tokens = parts["tokenizer"](["a red chair"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(parts["text_encoder"](tokens)[0], folder_model.text_encoder(tokens)[0], atol=1e-6)
        assert torch.allclose(parts["vae"].decode(latents).sample, folder_model.vae.decode(latents).sample, atol=1e-6)
    assert parts["scheduler"].config.num_train_timesteps == 1000


def test_ckpt_is_refused_with_how_to_convert(tmp_path):
    ckpt = tmp_path / "512-depth-ema.ckpt"
    ckpt.write_bytes(b"not read")
    with pytest.raises(ModelMissingError) as error:
        load_diffusion(str(ckpt), device="cpu")
    assert ".safetensors" in str(error.value) and "pickle" in str(error.value)


def test_a_single_file_in_the_models_folder_is_found(tmp_path, monkeypatch):
    from engine.models.sources import find

    (tmp_path / "512-depth-ema.safetensors").write_bytes(b"")
    monkeypatch.setenv("DHANDLES_MODELS_DIR", str(tmp_path))
    located = find("sd2-depth", "diffusion", "diffusion model", "unet/config.json", ask_hub=False)
    assert located.kind == "single_file" and located.where == str(tmp_path / "512-depth-ema.safetensors")
