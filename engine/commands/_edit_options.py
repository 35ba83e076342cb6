"""The perspective options of ``python -m engine edit``: vanishing points and guidance (the edit job's
``perspective`` parameter, see ``engine/perspective/edit_job.py``) and a fine-tuned LoRA (its ``lora`` parameter,
see ``engine/perspective/edit_lora.py``). Kept apart from the command's other options, which they do not touch."""

from __future__ import annotations


def add_arguments(parser) -> None:
    # Nothing imported here: the engine's parser is built even in a Python without numpy (to say what is missing).
    group = parser.add_argument_group("perspective (vanishing points, guidance, a fine-tuned LoRA)")
    group.add_argument("--vp", action="append", default=[], metavar="X,Y[,W]",
                       help="a vanishing point in pixels of the photo (repeatable; X,Y,0 is a direction at "
                       "infinity; write --vp=X,Y when X is negative): adds the report's perspective figures")
    group.add_argument("--vps", metavar="FILE.json",
                       help="vanishing points from a JSON file ({\"vps\": [[x, y, w], ...]}, in pixels of its "
                       "'width' x 'height' when it gives them, else of the photo), e.g. a dataset's vps.json")
    group.add_argument("--perspective-weight", type=float, metavar="W",
                       help="guide sampling towards the vanishing points with this weight (default 1.0 with "
                       "--perspective-mode; without either: no guidance, only the figures)")
    group.add_argument("--perspective-mode", metavar="MODE",
                       help="guidance loss: no_reference (edges towards the VPs, default) or reference (the paper's "
                       "loss against the photo)")
    group.add_argument("--lora", metavar="DIR", help="a perspective LoRA folder from finetune-perspective")
    group.add_argument("--lora-scale", type=float, metavar="S", help="strength of --lora (default 1.0)")


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
