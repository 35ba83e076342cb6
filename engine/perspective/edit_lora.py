"""What the diffusion jobs and ``python -m engine edit`` do with a perspective LoRA (from ``finetune-perspective``).

The jobs' optional parameter ``"lora": {"path": "<adapter folder>", "scale": <float, default 1.0>}``
(``--lora DIR --lora-scale S`` on the command line). The adapter is loaded onto the warm, cached model's UNet;
a job with another adapter, scale or file contents loads its own over it, and a job without one takes it off
again, so a warm model never edits with an adapter it was not asked for. The model's ``identity()``, which keys
the inversion cache and names the model in reports, then includes the adapter's fingerprint (a hash of
``adapter_model.safetensors`` and ``adapter_config.json``) and scale: inversions with and without it, or with
another one, are never mixed. Errors are ``LoraError`` (a ValueError) with a message that says what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .finetune import missing_adapter_files


class LoraError(ValueError):
    """A ``lora`` parameter that cannot be used: the message is for the user."""


@dataclass(frozen=True)
class LoraChoice:
    path: str  # the adapter folder, absolute
    scale: float
    fingerprint: str

    def identity(self) -> str:
        return f"lora-{self.fingerprint}x{self.scale:g}"

    def to_report(self) -> dict:
        return {"path": self.path, "scale": self.scale, "fingerprint": self.fingerprint}


def choice_from_param(value) -> LoraChoice | None:
    """The adapter a ``lora`` parameter asks for (None for none), its folder checked and fingerprinted."""
    from .finetune import adapter_fingerprint

    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("path"), str) or not value["path"]:
        raise LoraError("'lora' must be an object {\"path\": \"<adapter folder>\", \"scale\": 1.0}.")
    unknown = sorted(set(value) - {"path", "scale"})
    if unknown:
        raise LoraError(f"Unknown 'lora' options: {', '.join(unknown)}; it takes 'path' and 'scale'.")
    scale = value.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise LoraError(f"'lora.scale' must be a number (1.0: the adapter as trained), not {scale!r}.")
    folder = Path(value["path"]).expanduser()
    if not folder.is_dir():
        raise LoraError(f"The LoRA folder '{folder}' does not exist. Give the folder 'python -m engine "
                        "finetune-perspective --out' wrote, or leave the LoRA out.")
    missing = missing_adapter_files(folder)
    if missing:
        raise LoraError(f"'{folder}' is not a LoRA adapter folder: it lacks {' and '.join(missing)}. Give the folder "
                        "'python -m engine finetune-perspective --out' wrote.")
    return LoraChoice(str(folder.resolve()), float(scale), adapter_fingerprint(folder))


def apply(models, choice: LoraChoice | None) -> None:
    """Put ``models`` (a ``DiffusionModels``) in the adapter state ``choice`` asks for: load it (replacing any
    other) or, for None, take any adapter off. Nothing happens when it is already so."""
    from .finetune import load_perspective_lora, unload_perspective_lora

    if models.adapter == choice:
        return
    models.adapter = None  # until the new state is complete: a failed load leaves the base model
    if choice is None:
        unload_perspective_lora(models.unet)
        return
    try:
        load_perspective_lora(models.unet, choice.path, choice.scale)
    except (FileNotFoundError, ValueError) as error:
        raise LoraError(str(error)) from None
    models.adapter = choice


def report_entry(models) -> dict | None:
    """The report's ``lora`` entry: the adapter the edit ran with, or None."""
    return None if models.adapter is None else models.adapter.to_report()
