"""The perspective loss as an extra guidance term of the diffusion engine's guided sampler.

``PerspectiveGuidance`` follows the sampler's extension point (``engine.diffusion.sampler``): at the timesteps it is
active for (a range of scheduler timesteps, every ``every``-th step), it decodes the predicted clean latents through
the VAE (differentiably) and returns the perspective loss of that image, whose gradient reaches the latents through
the decoder. ``mode="no_reference"`` (the default for edits, whose result is not pixel-aligned with anything) asks
the edges to converge to the vanishing points; ``mode="reference"`` compares line profiles with a reference image
(the paper's loss), e.g. the original photo when only the background matters.

It keeps its own cost (evaluations, seconds in the forward and the backward of decoder + loss) for the edit
report: ``summary()``. ``from_params`` builds the term from an edit job's ``perspective`` parameter, and
``edit_figures`` gives the metric figures of the report of an edit whose job has that parameter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..geometry.vanishing import rescale_vanishing_points

MODES = ("no_reference", "reference")
scale_vps = rescale_vanishing_points  # the one home: engine.geometry.vanishing


@dataclass
class PerspectiveGuidance:
    """An extra guidance term: ``weight`` x perspective loss of the decoded x0 prediction.

    vps: rows (x, y[, w]) in pixels of an image of ``image_size`` (W, H); rescaled to the decoded size.
    reference: HxWx3 image (uint8 or float [0, 1], any size: resized) for ``mode="reference"``.
    t_range: inclusive range of scheduler timesteps (0..1000) where it applies; every: cadence in sampling steps.
    """

    vps: list
    image_size: tuple
    weight: float = 1.0
    mode: str = "no_reference"
    reference: np.ndarray | None = None
    t_range: tuple = (0, 1000)
    every: int = 1
    num_lines: int = 250
    name: str = "perspective"
    stats: dict = field(default_factory=lambda: {"evaluations": 0, "forward_seconds": 0.0,
                                                 "backward_seconds": 0.0, "losses": []})

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Unknown perspective guidance mode {self.mode!r}; use one of {', '.join(MODES)}.")
        if self.mode == "reference" and self.reference is None:
            raise ValueError("Perspective guidance with mode 'reference' needs a reference image.")
        if not self.vps:
            raise ValueError("Perspective guidance needs at least one vanishing point.")
        if int(self.every) < 1:
            raise ValueError("Perspective guidance cadence 'every' must be at least 1.")
        self.every = int(self.every)
        self._reference_cache = None

    def active(self, step_index: int, t: int) -> bool:
        low, high = self.t_range
        return low <= int(t) <= high and step_index % self.every == 0

    def _reference_tensor(self, like):
        import torch
        import torch.nn.functional as F

        height, width = like.shape[-2:]
        if self._reference_cache is None or self._reference_cache.shape[-2:] != (height, width):
            array = np.asarray(self.reference)
            array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
            tensor = torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1)[None]
            if tensor.shape[-2:] != (height, width):
                tensor = F.interpolate(tensor, size=(height, width), mode="area")
            self._reference_cache = tensor
        return self._reference_cache.to(device=like.device, dtype=like.dtype)

    def image_loss(self, image):
        """The loss of a 1x3xHxW [0, 1] image (differentiable)."""
        from .loss import perspective_loss
        from .no_reference import vp_consistency_loss

        height, width = image.shape[-2:]
        vps = scale_vps(self.vps, self.image_size, (width, height))
        if self.mode == "reference":
            return perspective_loss(image, self._reference_tensor(image), vps, num_lines=self.num_lines)
        return vp_consistency_loss(image, vps)

    def loss(self, x0_latents, decode):
        from ..device import synchronize

        device = x0_latents.device
        synchronize(device)
        start = time.perf_counter()
        image = decode(x0_latents)
        value = self.image_loss(image)
        synchronize(device)
        self.stats["forward_seconds"] += time.perf_counter() - start
        self.stats["evaluations"] += 1
        self.stats["losses"].append(float(value.detach()))
        if value.requires_grad and x0_latents.requires_grad:
            # Time the backward through this term: from the loss's gradient to the latents' gradient.
            marks = {}

            def started(grad):
                synchronize(device)
                marks["start"] = time.perf_counter()

            def finished(grad):
                synchronize(device)
                if "start" in marks:
                    self.stats["backward_seconds"] += time.perf_counter() - marks.pop("start")

            value.register_hook(started)
            x0_latents.register_hook(finished)
        return value

    def reset_stats(self) -> None:
        """Start counting afresh, e.g. for the next frame of an animation that reuses the term."""
        self.stats = {"evaluations": 0, "forward_seconds": 0.0, "backward_seconds": 0.0, "losses": []}

    def summary(self) -> dict:
        """Settings and cost for the edit report."""
        losses = self.stats["losses"]
        return {"mode": self.mode, "weight": self.weight, "t_range": list(self.t_range), "every": self.every,
                "num_lines": self.num_lines if self.mode == "reference" else None,
                "evaluations": self.stats["evaluations"],
                "forward_seconds": round(self.stats["forward_seconds"], 4),
                "backward_seconds": round(self.stats["backward_seconds"], 4),
                "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None}


def from_params(perspective: dict | None, reference=None):
    """The guidance term an edit job asks for, or None.

    ``perspective`` is the job's ``perspective`` parameter: ``{"vps": [[x, y, w], ...], "width": W, "height": H,
    "guidance": {"weight", "mode", "t_range", "every", "num_lines"}}`` (no ``guidance`` or weight 0: none).
    ``reference``: the image the ``reference`` mode compares with (the original photo).
    """
    if not perspective or not perspective.get("guidance"):
        return None
    options = dict(perspective["guidance"])
    if float(options.get("weight", 1.0)) == 0.0:
        return None
    unknown = sorted(set(options) - {"weight", "mode", "t_range", "every", "num_lines"})
    if unknown:
        raise ValueError(f"Unknown perspective guidance options: {', '.join(unknown)}.")
    return PerspectiveGuidance(vps=[list(v) for v in perspective["vps"]],
                               image_size=(int(perspective["width"]), int(perspective["height"])),
                               reference=reference if options.get("mode") == "reference" else None,
                               **{k: (tuple(v) if k == "t_range" else v) for k, v in options.items()})


def edit_figures(image, perspective: dict | None, reference=None, term: PerspectiveGuidance | None = None):
    """The ``perspective`` entry of an edit report: the metric figures of the edited ``image`` (HxWx3) for the
    job's VPs (rescaled to the image), the loss against ``reference`` when given, and the guidance term's cost."""
    if not perspective or not perspective.get("vps"):
        return None
    from .metric import perspective_report

    height, width = np.asarray(image).shape[:2]
    vps = scale_vps(perspective["vps"], (int(perspective["width"]), int(perspective["height"])), (width, height))
    if reference is not None and np.asarray(reference).shape[:2] != (height, width):
        reference = None  # the loss needs a pixel-aligned reference of the same size
    figures = perspective_report(np.asarray(image), vps, reference)
    if term is not None:
        figures["guidance"] = term.summary()
    return figures
