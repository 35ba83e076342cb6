"""Monocular depth for photos that come without a depth file: a transformers ``AutoModelForDepthEstimation``
(Depth Anything V2 metric by default, ZoeDepth as in the official code, or ``tiny-depth`` for tests).

``estimate(image)`` returns HxW float32 metric z-depth in metres at the photo's own resolution. Relative-depth
models (which predict disparity) are refused: the geometry needs metres to move objects by real distances.

The prediction is brought back to the photo with the processor's own ``post_process_depth_estimation``: Depth
Anything's (DPT) resizes to the photo; ZoeDepth's first removes the reflect padding its processor added around the
photo (resizing the padded prediction straight to the photo would shrink and shift the depth against the pixels).
transformers 5.23's ZoeDepth post-processing needs torchvision, which the engine does not depend on; without it
``remove_zoedepth_padding`` does the same with torch.
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
            outputs = self.model(**inputs)
            depth = post_process(self.processor, outputs, height, width)
        return depth.float().clamp_min(1e-3).cpu().numpy().astype(np.float32)


def post_process(processor, outputs, height: int, width: int):
    """The HxW depth tensor of the photo from the model's ``outputs``, by the processor's post-processing."""
    import inspect

    post = processor.post_process_depth_estimation
    if "source_sizes" in inspect.signature(post).parameters:  # ZoeDepth: the input was padded
        from transformers.utils import is_torchvision_available

        if not is_torchvision_available():
            return remove_zoedepth_padding(outputs.predicted_depth, height, width, processor.do_pad)
        return post(outputs, source_sizes=[(height, width)])[0]["predicted_depth"]
    return post(outputs, target_sizes=[(height, width)])[0]["predicted_depth"]


def remove_zoedepth_padding(predicted, height: int, width: int, padded: bool = True):
    """transformers' ZoeDepth post-processing without torchvision: the prediction covers the photo plus the
    processor's reflect padding of int(sqrt(side / 2) * 3) pixels on each side; resize it (bicubic) to that padded
    size and cut the padding off."""
    import math

    import torch

    pad_h = int(math.sqrt(height / 2) * 3) if padded else 0
    pad_w = int(math.sqrt(width / 2) * 3) if padded else 0
    predicted = predicted.reshape(1, 1, *predicted.shape[-2:]).float()
    depth = torch.nn.functional.interpolate(predicted, size=(height + 2 * pad_h, width + 2 * pad_w), mode="bicubic",
                                            align_corners=False)[0, 0]
    return depth[pad_h:pad_h + height, pad_w:pad_w + width]


def load_depth_estimator(name_or_path: str | None = None, device=None) -> DepthEstimator:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    from ..device import pick_device

    name, source = resolve(name_or_path, "depth")
    device = pick_device(None if device is None else str(device))
    if source in ("tiny", "tiny-zoedepth"):
        from .tiny import build_tiny_depth, build_tiny_zoedepth

        processor, model = (build_tiny_depth if source == "tiny" else build_tiny_zoedepth)()
    else:
        what = "depth estimator"
        from .sources import ensure_local, find

        located = ensure_local(find(name_or_path, "depth", what, "config.json"), what)
        processor = hub.load(AutoImageProcessor, located, what, safetensors=False)
        model = hub.load(AutoModelForDepthEstimation, located, what)
        kind = getattr(model.config, "depth_estimation_type", None)
        if kind == "relative":
            raise ValueError(f"'{name}' predicts relative depth (disparity), not metres. Use a metric model such as "
                             "'depth-anything-metric-indoor', 'depth-anything-metric-outdoor' or 'zoedepth'.")
    model.to(device).eval()  # depth runs once per photo: fp32 keeps it simple and exact
    return DepthEstimator(name=name, processor=processor, model=model, device=device)
