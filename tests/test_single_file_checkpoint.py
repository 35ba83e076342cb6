"""A single-file checkpoint in the original Stable Diffusion layout (``model.diffusion_model.*``), written here from
the tiny model's UNet, loads through engine/models/single_file.py and gives the same UNet outputs as the folder;
``.ckpt`` files are refused with a message on converting them."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.models import ModelMissingError, load_diffusion
from engine.models.single_file import load_unet

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


def write_original_checkpoint(unet, path) -> None:
    from safetensors.torch import save_file

    config = unet.config
    ups = {i for i, kind in enumerate(config.up_block_types) if kind.startswith("CrossAttn")}
    state = {f"model.diffusion_model.{original_unet_key(k, config.layers_per_block, ups)}": v.contiguous()
             for k, v in unet.state_dict().items()}
    save_file(state, str(path))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    load_diffusion("tiny", device="cpu").save(folder)
    return folder


def test_single_file_unet_matches_the_folder(tiny_folder, tmp_path):
    folder_model = load_diffusion(str(tiny_folder), device="cpu", dtype=torch.float32)
    write_original_checkpoint(folder_model.unet, tmp_path / "512-depth-ema.safetensors")
    unet = load_unet(tmp_path / "512-depth-ema.safetensors", tiny_folder, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 5, 8, 8, generator=generator)
    context = torch.randn(1, 7, 32, generator=generator)
    with torch.no_grad():
        expected = folder_model.unet(sample, 10, encoder_hidden_states=context).sample
        got = unet(sample, 10, encoder_hidden_states=context).sample
    assert torch.allclose(expected, got, atol=1e-6), (expected - got).abs().max()


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
