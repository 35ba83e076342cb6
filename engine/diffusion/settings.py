"""All numbers of the method in one place, the official Diffusion Handles defaults first.

Sources: the paper (arXiv 2312.02190) and the official code's default configuration (adobe-research/
DiffusionHandles, ``diffhandles/config/default.yaml`` and its guided sampler), read for the numbers only:
- 50 DDIM steps, classifier-free guidance 7.5, seed 2773, SD2-depth at 512x512 (64x64 latents);
- null-text inversion: 5 inner Adam steps per timestep (the official ``invert_input_image``), learning rate
  1e-2 * (1 - i / 100), early stop when the loss is below 1e-5 + 2e-5 * i;
- activations of the outputs of ``up_blocks[1]``, ``[2]`` and ``[3]``, recorded from the conditional pass of
  the reconstruction;
- guidance during the first 38 of the 50 timesteps, 3 SGD steps (learning rate 0.1) on the latents per timestep;
  foreground (identity) weight 1.5 and background weight 1.25, each scaled by 30; per-layer weights that cycle
  with the timestep (``LAYER_CYCLE``) times per-iteration weights (``ITERATION_WEIGHTS``); identity is an L1 loss
  between activations at corresponding cells (patch size 1), background the L1 distance between the mean
  background activation before and after ("global_avg").
With these weights ``up_blocks[1]`` always gets weight 0, so by default its activations are neither recorded nor
computed during guidance; set ``layer_cycle`` to use it.

Two choices the official code makes implicitly are explicit here:
- the timesteps are the official schedule ("leading" spacing, offset 0: 980, 960, ..., 0 for 50 steps) whatever the
  model folder's scheduler config says (SD2-depth's says ``steps_offset`` 1, i.e. 981 ... 1): ``engine.diffusion.ddim``;
- ``pair_weighting``: the identity loss averages over the correspondence list, so a pair of grid cells counts as
  often as pixel correspondences land in it (``"multiplicity"``, official); ``"unique"`` counts each cell pair once.
``measure_losses`` (off by default) spends two extra UNet forwards to report the unweighted losses before and after
the first guided timestep's gradient steps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

# the timesteps every pass samples at (engine.diffusion.ddim.timesteps); part of the inversion's cache key
TIMESTEP_SCHEDULE = "leading, offset 0"
# per timestep index modulo 3: (identity weights, background weights) for up_blocks[1], [2], [3]
LAYER_CYCLE = (
    ((0.0, 0.0, 7.5), (0.0, 0.0, 1.5)),
    ((0.0, 5.0, 0.0), (0.0, 1.5, 0.0)),
    ((0.0, 5.0, 7.5), (0.0, 1.5, 1.5)),
)
# per gradient step within a timestep: (identity factor, background factor); the last applies to later steps
ITERATION_WEIGHTS = ((2.5, 1.25), (1.25, 2.5), (1.25, 1.25), (2.5, 2.5))

INVERSIONS = ("null-text", "ddim")
PAIR_WEIGHTINGS = ("multiplicity", "unique")
BACKGROUND_LOSSES = ("global_avg", "local")
# the official guidance runs on the first 38 of its 50 timesteps; other step counts keep that share
OFFICIAL_GUIDED_SHARE = (38, 50)


def guided_steps_for(num_steps: int) -> int:
    """How many of ``num_steps`` timesteps are guided: the official 38-of-50 share, rounded (25 -> 19)."""
    guided, total = OFFICIAL_GUIDED_SHARE
    return round(int(num_steps) * guided / total)


@dataclass
class EditSettings:
    # sampling
    num_steps: int = 50
    guidance_scale: float = 7.5
    seed: int = 2773
    resolution: int = 512  # working size of the longer image side, a multiple of 64
    # inversion: "null-text" (the paper) or "ddim" (DDIM inversion with the prompt as the null embedding, i.e.
    # negative-prompt inversion: no optimisation, CFG collapses to the conditional branch)
    inversion: str = "null-text"
    null_inner_steps: int = 5
    null_learning_rate: float = 1e-2
    null_early_stop: float = 1e-5
    # guidance
    layers: tuple = (1, 2, 3)  # indices into unet.up_blocks
    guided_steps: int = OFFICIAL_GUIDED_SHARE[0]  # of num_steps = OFFICIAL_GUIDED_SHARE[1]: guided_steps_for()
    opt_steps: int = 3
    opt_learning_rate: float = 0.1
    identity_weight: float = 1.5
    background_weight: float = 1.25
    weight_scale: float = 30.0
    layer_cycle: tuple = LAYER_CYCLE
    iteration_weights: tuple = ITERATION_WEIGHTS
    background_loss: str = "global_avg"  # or "local": per cell where neither the old nor the new object is
    pair_weighting: str = "multiplicity"  # official: each cell pair as often as correspondences land in it; "unique"
    # report: the unweighted losses before/after the first guided timestep's gradient steps (2 extra UNet forwards)
    measure_losses: bool = False
    # compositing into the full-resolution photo
    composite: bool = True
    composite_dilate: float = 0.02  # of the longer side: margin around the changed region
    composite_feather: float = 0.01  # of the longer side: soft edge width

    def __post_init__(self):
        if self.inversion not in INVERSIONS:
            raise ValueError(f"Unknown inversion {self.inversion!r}; use one of {', '.join(INVERSIONS)}.")
        if self.resolution % 64 or self.resolution < 64:
            raise ValueError(f"The working resolution must be a positive multiple of 64, not {self.resolution}.")
        if not 0 <= self.guided_steps <= self.num_steps:
            raise ValueError("guided_steps must be between 0 and num_steps.")
        if self.pair_weighting not in PAIR_WEIGHTINGS:
            raise ValueError(f"Unknown pair weighting {self.pair_weighting!r}; use one of "
                             f"{', '.join(PAIR_WEIGHTINGS)}.")
        if self.background_loss not in BACKGROUND_LOSSES:
            raise ValueError(f"Unknown background loss {self.background_loss!r}; use one of "
                             f"{', '.join(BACKGROUND_LOSSES)}.")
        if not isinstance(self.measure_losses, bool):
            raise ValueError(f"measure_losses must be true or false, not {self.measure_losses!r}.")
        self.layers = tuple(int(i) for i in self.layers)
        self.layer_cycle = tuple((tuple(map(float, a)), tuple(map(float, b))) for a, b in self.layer_cycle)
        self.iteration_weights = tuple(tuple(map(float, w)) for w in self.iteration_weights)
        for identity, background in self.layer_cycle:
            if len(identity) != len(self.layers) or len(background) != len(self.layers):
                raise ValueError("Each layer_cycle entry needs one identity and one background weight per layer.")

    def layer_weights(self, step_index: int, iteration: int) -> tuple[list[float], list[float]]:
        """(identity, background) weight per layer for a timestep index and a gradient step within it."""
        if step_index >= self.guided_steps:
            return [0.0] * len(self.layers), [0.0] * len(self.layers)
        identity, background = self.layer_cycle[step_index % len(self.layer_cycle)]
        fi, fb = self.iteration_weights[min(iteration, len(self.iteration_weights) - 1)]
        scale_i = self.identity_weight * self.weight_scale * fi
        scale_b = self.background_weight * self.weight_scale * fb
        return [w * scale_i for w in identity], [w * scale_b for w in background]

    def used_layers(self) -> tuple[int, ...]:
        """Layers that get a non-zero weight at some step: only these are recorded and computed."""
        used = set()
        for identity, background in self.layer_cycle:
            used.update(layer for layer, a, b in zip(self.layers, identity, background, strict=True) if a or b)
        return tuple(layer for layer in self.layers if layer in used)

    def inversion_key(self) -> dict:
        """The settings an inversion (and its recorded activations) depends on, and only those, so that a
        setting it ignores never forces a new inversion. Both methods: the steps and their schedule, the recorded
        layers and how many
        timesteps are recorded (the first ``guided_steps``; none without layers). Null-text also: its
        optimisation and the CFG scale its target step uses; DDIM inversion ignores both (the photo's resolution
        is in the key through the working image itself)."""
        layers = list(self.used_layers())
        key = {"inversion": self.inversion, "num_steps": self.num_steps, "recorded_layers": layers,
               "recorded_steps": self.guided_steps if layers else 0, "timesteps": TIMESTEP_SCHEDULE}
        if self.inversion == "null-text":
            key.update(guidance_scale=self.guidance_scale, null_inner_steps=self.null_inner_steps,
                       null_learning_rate=self.null_learning_rate, null_early_stop=self.null_early_stop)
        return key

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict | None) -> EditSettings:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown edit settings: {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
        return cls(**values)

    @classmethod
    def fast(cls, **overrides) -> EditSettings:
        """The speed preset (not the paper's numbers; its image quality is unverified here): DDIM
        (negative-prompt) inversion, 25 DDIM steps with guidance on the first 19 (the official 38/50 share) and 2
        gradient steps per guided timestep. About 50 UNet evaluations to invert and 140 per edit, against the
        official 1100 and 442."""
        return cls(**{"inversion": "ddim", "num_steps": 25, "guided_steps": guided_steps_for(25), "opt_steps": 2,
                      **overrides})


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
