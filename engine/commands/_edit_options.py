"""The perspective options of ``python -m engine edit``: vanishing points and guidance (the edit job's
``perspective`` parameter, see ``engine/perspective/edit_job.py``) and a fine-tuned LoRA (its ``lora`` parameter,
see ``engine/perspective/edit_lora.py``). Kept apart from the command's other options, which they do not touch.
Also the options that set the model and settings of an edit (``--model``, ``--steps``, ``--resolution``,
``--inversion``, ``--set``, ``--device``, ``--dtype``), shared by ``edit`` and ``batch`` (there: every job's
defaults)."""

from __future__ import annotations

import json

from ._single_option import Once


def add_model_arguments(parser) -> None:
    parser.add_argument("--model", action=Once, help="diffusion model: sd2-depth (default), tiny, hub id or folder")
    parser.add_argument("--inversion", action=Once, choices=["null-text", "ddim"],
                        help="inversion method (default null-text)")
    parser.add_argument("--steps", action=Once, type=int, help="DDIM steps (default 50)")
    parser.add_argument("--resolution", action=Once, type=int, help="working size of the longer side (default 512)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an edit setting (JSON value), repeatable")
    parser.add_argument("--device", action=Once, default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", action=Once, default=None, choices=["fp32", "fp16", "bf16"])


def job_defaults(args):
    """The batch's ``JobDefaults`` from these options (and ``--cache-dir``/``--no-cache`` where the command has
    them): what every job gets unless it says otherwise."""
    import os

    from ..batch.job_params import JobDefaults

    cache_dir = getattr(args, "cache_dir", None)
    return JobDefaults(model=args.model, device=args.device, dtype=args.dtype, settings=settings_values(args),
                       cache_dir=os.path.abspath(cache_dir) if cache_dir else None,
                       use_cache=False if getattr(args, "no_cache", False) else None)


def settings_values(args) -> dict:
    """The ``EditSettings`` overrides the options give (``--set``, then ``--inversion``, ``--steps``,
    ``--resolution``); ``--steps`` alone keeps the official 38/50 proportion of guided steps."""
    values = {}
    for item in args.set:
        key, _, text = item.partition("=")
        try:
            values[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            values[key.strip()] = text
    for key, value in (("inversion", args.inversion), ("num_steps", args.steps), ("resolution", args.resolution)):
        if value is not None:
            values[key] = value
    if "num_steps" in values and "guided_steps" not in values:
        from ..diffusion.settings import guided_steps_for

        values["guided_steps"] = guided_steps_for(values["num_steps"])
    return values


def add_arguments(parser) -> None:
    # Nothing imported here: the engine's parser is built even in a Python without numpy (to say what is missing).
    group = parser.add_argument_group("perspective (vanishing points, guidance, a fine-tuned LoRA)")
    group.add_argument("--vp", action="append", default=[], metavar="X,Y[,W]",
                       help="a vanishing point in pixels of the photo (repeatable; X,Y,0 is a direction at "
                       "infinity; write --vp=X,Y when X is negative): adds the report's perspective figures")
    group.add_argument("--vps", action=Once, metavar="FILE.json",
                       help="vanishing points from a JSON file ({\"vps\": [[x, y, w], ...]}, in pixels of its "
                       "'width' x 'height' when it gives them, else of the photo), e.g. a dataset's vps.json")
    group.add_argument("--perspective-weight", action=Once, type=float, metavar="W",
                       help="guide sampling towards the vanishing points with this weight (default 1.0 with "
                       "--perspective-mode; without either: no guidance, only the figures)")
    group.add_argument("--perspective-mode", action=Once, metavar="MODE",
                       help="guidance loss: no_reference (edges towards the VPs, default) or reference (the paper's "
                       "loss against the photo)")
    group.add_argument("--lora", action=Once, metavar="DIR", help="a perspective LoRA folder from finetune-perspective")
    group.add_argument("--lora-scale", action=Once, type=float, metavar="S", help="strength of --lora (default 1.0)")


def from_args(args, width: int, height: int):
    """(the ``perspective`` parameter or None, the ``LoraChoice`` or None) for a W x H photo, checked as the edit
    job checks them (``engine.params.Perspective`` and ``Lora``); ValueError or ``BadParams`` names what is wrong
    (before any model is loaded)."""
    from pathlib import Path

    from ..params import Lora, Perspective
    from ..perspective.edit_job import build_params
    from ..perspective.edit_lora import choice_from_param
    from ..perspective.vanishing import parse_vp

    perspective = build_params(width, height, [parse_vp(text) for text in args.vp], args.vps,
                               args.perspective_weight, args.perspective_mode)
    if perspective is not None:
        perspective = Perspective.from_json(perspective, "perspective").to_json()
    if args.lora_scale is not None and not args.lora:
        raise ValueError("--lora-scale needs --lora DIR (the adapter folder).")
    lora = None
    if args.lora:
        param = Lora(path=str(Path(args.lora).expanduser().absolute()),
                     scale=1.0 if args.lora_scale is None else args.lora_scale)
        lora = choice_from_param(param.to_json())
    return perspective, lora
