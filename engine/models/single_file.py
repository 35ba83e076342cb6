"""SD2-depth from one single-file checkpoint (``512-depth-ema.safetensors``, as Automatic1111 and ComfyUI users have
it), with diffusers' single-file loading and the model's own configs, so nothing is fetched to read it.

The configs of the UNet, VAE, text encoder and scheduler are built here from ``engine.models.full_size_random`` (the
SD2-depth architecture, written once) into a folder in the diffusers layout; only the tokenizer's vocabulary
(1.5 MB) is not in a checkpoint: it is read from the Hugging Face cache of any of the preset's hub ids, or fetched
once from the first that has it when downloads are allowed. ``.ckpt`` files are refused before this module
(``engine.models.sources``): they are pickles.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import ModelMissingError

WHAT = "depth-conditioned diffusion model"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


def load_unet(path, config_folder, dtype=None):
    """The UNet of the checkpoint at ``path`` (original layout), configured from ``config_folder/unet``."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_single_file(str(path), config=str(config_folder), subfolder="unet",
                                                 local_files_only=True, torch_dtype=dtype)


def load_single_file(path, name_or_path=None, dtype=None, config_folder=None) -> dict:
    """The bundle's parts from the checkpoint at ``path``; ``config_folder`` (diffusers layout, with a tokenizer)
    defaults to SD2-depth's, built locally."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from diffusers.loaders.single_file_utils import (
        create_diffusers_clip_model_from_ldm,
        load_single_file_checkpoint,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(config_folder) if config_folder else sd2_depth_configs()
    try:
        unet = load_unet(path, folder, dtype)
        vae = AutoencoderKL.from_single_file(str(path), config=str(folder), subfolder="vae", local_files_only=True,
                                             torch_dtype=dtype)
        checkpoint = load_single_file_checkpoint(str(path), local_files_only=True)
        text_encoder = create_diffusers_clip_model_from_ldm(CLIPTextModel, checkpoint, subfolder="text_encoder",
                                                            config=str(folder), torch_dtype=dtype,
                                                            local_files_only=True)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ModelMissingError(str(path), WHAT, "it is not an SD2-depth checkpoint (its weights do not fit the "
                                "model: wrong model, or a pruned/partial file)", detail=str(error)) from error
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder,
            "tokenizer": CLIPTokenizer.from_pretrained(str(folder), subfolder="tokenizer"),
            "scheduler": DDIMScheduler.from_pretrained(str(folder), subfolder="scheduler")}


def sd2_depth_configs() -> Path:
    """A folder with SD2-depth's component configs and tokenizer (built once, then reused)."""
    from .full_size_random import SCHEDULER, TEXT, UNET, VAE

    folder = Path(os.environ.get("DHANDLES_CONFIG_DIR") or Path(tempfile.gettempdir()) / "dhandles-configs")
    folder = folder / "sd2-depth"
    configs = {"unet/config.json": {"_class_name": "UNet2DConditionModel", **UNET},
               "vae/config.json": {"_class_name": "AutoencoderKL", **VAE},
               "text_encoder/config.json": {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
                                            **TEXT},
               "scheduler/scheduler_config.json": {"_class_name": "DDIMScheduler", **SCHEDULER}}
    for name, config in configs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(config, indent=1))
    _tokenizer(folder / "tokenizer")
    return folder


def _tokenizer(target: Path) -> None:
    """Copy SD2's tokenizer files into ``target`` from the HF cache (or the hub, once) under the preset's ids."""
    import shutil

    from huggingface_hub import hf_hub_download

    from . import hub
    from .registry import PRESETS

    if all((target / name).is_file() for name in TOKENIZER_FILES):
        return
    tried = []
    for repo_id in PRESETS["sd2-depth"].ids:
        try:
            files = [hf_hub_download(repo_id, f"tokenizer/{name}", local_files_only=hub.offline_reason() is not None)
                     for name in TOKENIZER_FILES]
        except Exception as error:  # noqa: BLE001 - any hub/cache failure: try the next id
            tried.append(f"{repo_id}: {type(error).__name__}")
            continue
        target.mkdir(parents=True, exist_ok=True)
        for name, file in zip(TOKENIZER_FILES, files, strict=True):
            shutil.copyfile(file, target / name)
        return
    raise ModelMissingError("sd2-depth tokenizer", WHAT, "a single-file checkpoint holds no tokenizer, and SD2's "
                            f"(1.5 MB) is neither in the Hugging Face cache nor downloadable now ({'; '.join(tried)})",
                            hint="Allow downloads once (Blender: Preferences > System > Network > Allow Online "
                            "Access), or use the model as a diffusers folder.")
