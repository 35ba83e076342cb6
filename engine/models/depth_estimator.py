"""Monocular depth for photos that come without a depth file: a transformers ``AutoModelForDepthEstimation``
(Depth Anything V2 metric by default, ZoeDepth as in the official code, or ``tiny-depth`` for tests).

``estimate(image)`` returns HxW float32 metric z-depth in metres at the photo's own resolution. Relative-depth
models (which predict disparity) are refused: the geometry needs metres to move objects by real distances.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import hub
from .registry import resolve


@dataclass
class DepthEstimator:
    name: str
    processor: object
    model: object
    device: object

    def estimate(self, image):
        """Metric depth (HxW float32, metres) of ``image`` (PIL image or HxWx3 uint8 array)."""
        import numpy as np
        import torch
        from PIL import Image

        if not isinstance(image, Image.Image):
            image = Image.fromarray(np.asarray(image)).convert("RGB")
        width, height = image.size
        inputs = self.processor(images=image.convert("RGB"), return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            predicted = self.model(**inputs).predicted_depth
        predicted = predicted.reshape(1, 1, *predicted.shape[-2:]).float()
        depth = torch.nn.functional.interpolate(predicted, size=(height, width), mode="bicubic",
                                                align_corners=False)[0, 0]
        depth = depth.clamp_min(1e-3).cpu().numpy().astype(np.float32)
        return depth


def load_depth_estimator(name_or_path: str | None = None, device=None) -> DepthEstimator:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    from ..device import pick_device

    name, source = resolve(name_or_path, "depth")
    device = pick_device(None if device is None else str(device))
    if source == "tiny":
        from .tiny import build_tiny_depth

        processor, model = build_tiny_depth()
    else:
        what = "depth estimator"
        processor = hub.load(AutoImageProcessor, source, what, safetensors=False)
        model = hub.load(AutoModelForDepthEstimation, source, what)
        kind = getattr(model.config, "depth_estimation_type", None)
        if kind == "relative":
            raise ValueError(f"'{name}' predicts relative depth (disparity), not metres. Use a metric model such as "
                             "'depth-anything-metric-indoor', 'depth-anything-metric-outdoor' or 'zoedepth'.")
    model.to(device).eval()  # depth runs once per photo: fp32 keeps it simple and exact
    return DepthEstimator(name=name, processor=processor, model=model, device=device)
