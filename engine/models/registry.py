"""Named model presets, so users and tests say ``sd2-depth`` or ``tiny`` instead of hub ids.

A preset is either a real model, with the hub ids it is published under (a maintained mirror first, the original
id after: Stability AI withdrew the SD2 repositories in November 2025) and the single-file checkpoint names it is
shared as, or ``tiny``: the same architectures built from small configs with seeded random weights, for tests and
plumbing checks only. ``tiny`` is never used unless asked for by name; a missing real model is an error, not a
fallback. ``engine.models.sources`` tries a preset's sources in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # "diffusion", "depth", "segmentation", "inpainting"
    source: str  # the first hub id, or "tiny"
    description: str
    hub_ids: tuple[str, ...] = ()  # every id it is published under, in the order tried; empty: (source,)
    single_files: tuple[str, ...] = ()  # single-file checkpoint names looked for in DHANDLES_MODELS_DIR

    @property
    def ids(self) -> tuple[str, ...]:
        return self.hub_ids or (self.source,)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("sd2-depth", "diffusion", "sd2-community/stable-diffusion-2-depth",
           "Stable Diffusion 2 depth-conditioned (UNet with 5 input channels), the model of Diffusion Handles",
           hub_ids=("sd2-community/stable-diffusion-2-depth", "stabilityai/stable-diffusion-2-depth"),
           single_files=("512-depth-ema.safetensors",)),
    Preset("tiny", "diffusion", "tiny", "SD2-depth architecture from small configs, seeded random weights (tests)"),
    Preset("sd2-depth-random", "diffusion", "random",
           "full-size SD2-depth architecture with seeded random weights: the real cost, noise images (benchmarks)"),
    Preset("depth-anything-metric-indoor", "depth", "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
           "Depth Anything V2 small, metric depth in metres, indoor scenes"),
    Preset("depth-anything-metric-outdoor", "depth", "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf",
           "Depth Anything V2 small, metric depth in metres, outdoor scenes"),
    Preset("zoedepth", "depth", "Intel/zoedepth-nyu-kitti", "ZoeDepth (the official Diffusion Handles estimator)"),
    Preset("tiny-depth", "depth", "tiny", "Depth Anything architecture, small config, seeded random weights (tests)"),
    Preset("tiny-zoedepth", "depth", "tiny-zoedepth", "ZoeDepth architecture, small config, random weights (tests)"),
    Preset("clipseg", "segmentation", "CIDAS/clipseg-rd64-refined", "CLIPSeg: a foreground mask from a text prompt"),
    Preset("tiny-segmentation", "segmentation", "tiny", "CLIPSeg architecture, small config, random weights"),
    Preset("sd2-inpainting", "inpainting", "sd2-community/stable-diffusion-2-inpainting",
           "Stable Diffusion 2 inpainting, for completing the background behind a moved object",
           hub_ids=("sd2-community/stable-diffusion-2-inpainting", "stabilityai/stable-diffusion-2-inpainting")),
    Preset("tiny-inpainting", "inpainting", "tiny", "SD inpainting architecture, small config, random weights"),
]}

DEFAULTS = {"diffusion": "sd2-depth", "depth": "depth-anything-metric-indoor", "segmentation": "clipseg",
            "inpainting": "sd2-inpainting"}


def resolve(name_or_path: str | None, kind: str) -> tuple[str, str]:
    """(display name, source) for a preset name, a hub id or a local folder; ``None`` gives the kind's default."""
    name = name_or_path or DEFAULTS[kind]
    preset = PRESETS.get(name)
    if preset is not None:
        if preset.kind != kind:
            raise ValueError(f"'{name}' is a {preset.kind} model, not a {kind} model. "
                             f"{kind.capitalize()} presets: {', '.join(names(kind))}.")
        return preset.name, preset.source
    return name, name


def names(kind: str) -> list[str]:
    return [p.name for p in PRESETS.values() if p.kind == kind]


def preset_for(name_or_path: str | None, kind: str) -> Preset | None:
    """The preset ``name_or_path`` names, or whose hub ids include it (so the withdrawn original id still finds
    its mirror); None for another hub id or a folder."""
    name, _ = resolve(name_or_path, kind)
    if name in PRESETS:
        return PRESETS[name]
    return next((p for p in PRESETS.values() if p.kind == kind and name in p.ids), None)
