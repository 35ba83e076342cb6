"""A foreground mask from a text prompt ("a chair"): CLIPSeg through transformers by default.

``mask(image, prompt)`` returns an HxW bool mask at the photo's resolution (probability above ``threshold``);
``probabilities`` the float map. An empty result is the caller's to report (the user should try another prompt or
paint the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import hub
from .registry import resolve


@dataclass
class Segmenter:
    name: str
    processor: object
    model: object
    device: object

    def probabilities(self, image, prompt: str):
        import numpy as np
        import torch
        from PIL import Image

        if not isinstance(image, Image.Image):
            image = Image.fromarray(np.asarray(image))
        image = image.convert("RGB")
        width, height = image.size
        inputs = self.processor(text=[prompt], images=[image], return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        logits = logits.reshape(1, 1, *logits.shape[-2:]).float()
        logits = torch.nn.functional.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)[0, 0].cpu().numpy().astype(np.float32)

    def mask(self, image, prompt: str, threshold: float = 0.4):
        return self.probabilities(image, prompt) > threshold


def load_segmenter(name_or_path: str | None = None, device=None) -> Segmenter:
    from transformers import AutoProcessor, CLIPSegForImageSegmentation

    from ..device import pick_device

    name, source = resolve(name_or_path, "segmentation")
    device = pick_device(None if device is None else str(device))
    if source == "tiny":
        from .tiny import build_tiny_segmentation

        processor, model = build_tiny_segmentation()
    else:
        what = "segmentation model"
        from .sources import ensure_local, find

        located = ensure_local(find(name_or_path, "segmentation", what, "config.json"), what)
        processor = hub.load(AutoProcessor, located, what, safetensors=False)
        model = hub.load(CLIPSegForImageSegmentation, located, what)
    model.to(device).eval()
    return Segmenter(name=name, processor=processor, model=model, device=device)
