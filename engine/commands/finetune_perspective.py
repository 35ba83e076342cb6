"""``python -m engine finetune-perspective``: train perspective LoRA adapters of the depth-conditioned UNet.

    python -m engine finetune-perspective --data DATASET --out ADAPTERS [--model sd2-depth] [--steps 1000]

DATASET holds one folder per sample (image.png, depth.npy or depth.exr, caption.txt, vps.json), as Blender's
"Make Perspective Dataset" writes. The objective is noise MSE + lambda x the perspective loss of the decoded
clean-image prediction (lambda 0.01 as in the paper). Writes ADAPTERS/adapter_model.safetensors,
adapter_config.json and training.json, and prints one JSON summary (first and last losses).
"""

from __future__ import annotations

import json
import logging
import sys

log = logging.getLogger(__name__)

NAME = "finetune-perspective"
HELP = "Fine-tune LoRA adapters of the depth UNet with noise MSE + lambda x perspective loss on a VP dataset."


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder (one sub-folder per sample)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the adapters to")
    parser.add_argument("--model", default=None, help="diffusion model: sd2-depth (default), tiny, hub id or folder")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    parser.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    parser.add_argument("--lambda", dest="perspective_weight", type=float, default=0.01,
                        help="weight of the perspective loss (default 0.01, the paper's)")
    parser.add_argument("--resolution", type=int, default=512, help="training image size, square (default 512)")
    parser.add_argument("--num-lines", type=int, default=1000, help="lines swept per vanishing point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")


def run(args) -> int:
    from pathlib import Path

    from ..models import ModelMissingError

    out = Path(args.out)
    existing = next(p for p in (out, *out.parents) if p.exists())  # checked now, not after hours of training
    if not existing.is_dir():
        log.error("error: --out '%s': '%s' is a file, not a folder; give the path of a new folder for the "
                  "adapters (the file is left as it is).", out, existing)
        return 1
    if out.exists() and any(out.iterdir()):
        log.error("error: '%s' exists and is not empty; choose a new folder (adapters are never overwritten).", out)
        return 1
    try:
        from ..models import load_diffusion
        from ..perspective.dataset import read_dataset
        from ..perspective.finetune import FinetuneSettings, finetune, save_perspective_lora

        settings = FinetuneSettings(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                                    rank=args.rank, alpha=args.alpha or float(args.rank),
                                    perspective_weight=args.perspective_weight, resolution=args.resolution,
                                    num_lines=args.num_lines, seed=args.seed, log_every=args.log_every)
        samples = read_dataset(args.data, settings.resolution)
        import torch

        models = load_diffusion(args.model, device=args.device, dtype=torch.float32)
    except (ModelMissingError, ValueError, FileNotFoundError, KeyError) as error:
        log.error("error: %s", error)
        return 1
    summary = finetune(models, samples, settings, progress=_progress)
    summary["model"] = models.identity()
    save_perspective_lora(models.unet, out, summary)
    losses = summary["losses"]
    sys.stdout.write(json.dumps({"out": str(out), "steps": settings.steps, "samples": len(samples),
                                 "seconds": summary["seconds"], "first": losses[0], "last": losses[-1]}) + "\n")
    return 0


def _progress(entry: dict) -> None:
    log.info("  step %s: total %.5f (mse %.5f, perspective %.4f)", entry["step"], entry["total"], entry["mse"],
             entry["perspective"])
