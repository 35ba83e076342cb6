"""Background completion: the photo with a hole (where an object was) filled by a diffusers inpainting model
(Stable Diffusion 2 inpainting by default, ``tiny-inpainting`` for tests). Optional: the edit itself needs only
depth, and classical inpainting serves previews without any model.

``complete(image, hole, prompt)`` works in the edit's working frame (longer side ``resolution``, the aspect kept,
edge-padded to multiples of 64; the padding is part of the hole so the model continues the photo there) and
pastes only the hole back into the full-resolution photo, so the rest keeps its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import hub
from .registry import resolve


@dataclass
class Inpainter:
    name: str
    pipeline: object
    device: object

    def complete(self, image, hole, prompt: str = "", steps: int = 30, resolution: int = 512, seed: int = 0):
        """HxWx3 uint8 ``image`` with the pixels of ``hole`` (HxW bool) completed."""
        import numpy as np
        import torch
        from PIL import Image

        from ..diffusion.composite import resize, working_layout

        image = np.asarray(image)
        hole = np.asarray(hole, bool)
        height, width = image.shape[:2]
        layout = working_layout(width, height, resolution)
        small = layout.pad(resize(image, layout.content, "image"))
        small_hole = layout.pad(resize(hole.astype(np.float32), layout.content, "soft") > 0, fill=True)
        generator = torch.Generator("cpu").manual_seed(seed)
        with torch.inference_mode():
            out = self.pipeline(prompt=prompt, image=Image.fromarray(small),
                                mask_image=Image.fromarray(small_hole.astype(np.uint8) * 255),
                                height=layout.padded[1], width=layout.padded[0], num_inference_steps=steps,
                                generator=generator, output_type="np").images[0]
        out = layout.crop((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
        filled = resize(out, (width, height), "image")
        result = image.copy()
        result[hole] = filled[hole]
        return result


def load_inpainter(name_or_path: str | None = None, device=None, dtype=None) -> Inpainter:
    import torch
    from diffusers import StableDiffusionInpaintPipeline

    from ..device import pick_device, pick_dtype

    name, source = resolve(name_or_path, "inpainting")
    device = pick_device(None if device is None else str(device))
    dtype = dtype if dtype is not None else pick_dtype(device)
    if source == "tiny":
        from .tiny import build_tiny_inpainting

        pipeline = StableDiffusionInpaintPipeline(**build_tiny_inpainting(), safety_checker=None,
                                                  feature_extractor=None, requires_safety_checker=False)
    else:
        from .sources import ensure_local, find

        what = "inpainting model"
        located = ensure_local(find(name_or_path, "inpainting", what, "model_index.json"), what)
        pipeline = hub.load(StableDiffusionInpaintPipeline, located, what, dtype=dtype,
                            safety_checker=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(device)
    if source == "tiny" and dtype != torch.float32:
        pipeline.to(dtype=dtype)
    return Inpainter(name=name, pipeline=pipeline, device=device)
