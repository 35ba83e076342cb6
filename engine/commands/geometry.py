"""``python -m engine geometry``: run the geometry of official test-set edits (one sample folder).

For each edit it writes OUT/<edit>.npz (depth, disparity, target_mask, correspondences) and prints one JSON line
with the edit, its in-process geometry time in ms (no file I/O) and the visible fraction. An edit that leaves
the object out of view or behind the camera is reported (JSON line with "error", message on stderr, exit status 1)
while the other edits still run; an unreadable sample or an unknown edit exits with status 2.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

NAME = "geometry"
HELP = "Lift a sample's object through its depth, apply its 3D edits and write edited depth + correspondences."


def add_arguments(parser) -> None:
    parser.add_argument("--sample", required=True, type=Path,
                        help="sample folder: input.png, mask.png, depth.exr, optional bg_depth.exr, transforms.json")
    parser.add_argument("--edit", default="all", help="edit name from transforms.json, or 'all' (default)")
    parser.add_argument("--out-dir", required=True, type=Path, help="folder for <edit>.npz (created if missing)")
    parser.add_argument("--fov", type=float, default=55.0, help="field of view in degrees (default 55)")
    parser.add_argument("--camera", choices=("official", "blender"), default="official",
                        help="official: fov spans the outer pixel centres (the photogen convention, default); "
                             "blender: fov spans the outer pixel edges")
    parser.add_argument("--device", default="auto", help="auto (default: CUDA or MPS when present, else the CPU), "
                        "cpu, cuda or mps")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the geometry is many medium-sized tensor ops, and extra "
                             "threads spin-wait badly when other work shares the cores; 0 = torch's choice)")
    parser.add_argument("--discontinuity", type=float, default=0.1,
                        help="relative depth jump that splits the object's surface (default 0.1)")


def run(args) -> int:
    from ..geometry import Camera, GeometryError
    from ..geometry.io import read_sample, write_edit_npz
    from ..geometry.official_edit import run_official_edit

    try:
        sample = read_sample(args.sample)
    except GeometryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = list(sample.transforms) if args.edit == "all" else [args.edit]
    unknown = [n for n in names if n not in sample.transforms]
    if unknown:
        print(f"error: no edit {unknown[0]!r} in {args.sample / 'transforms.json'}; it has: "
              f"{', '.join(sample.transforms) or 'none'}", file=sys.stderr)
        return 2
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    if device is None:
        print(f"error: device {args.device!r} is not available here; use --device auto or cpu", file=sys.stderr)
        return 2
    H, W = sample.shape
    camera = (Camera.official if args.camera == "official" else Camera.from_fov)(W, H, fov_deg=args.fov)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    _warm_up(camera, device)
    failed = 0
    for name in names:
        try:
            r = run_official_edit(sample.depth, sample.mask, sample.bg_depth, sample.transforms[name], camera,
                                  device=device, discontinuity=args.discontinuity)
        except GeometryError as e:
            failed += 1
            print(json.dumps({"edit": name, "ok": False, "error": str(e), "visible_fraction": 0.0}), flush=True)
            print(f"error: {args.sample.name}/{name}: {e}", file=sys.stderr)
            continue
        out = args.out_dir / f"{name}.npz"
        write_edit_npz(out, r.depth, r.disparity, r.target_mask, r.correspondences)
        print(json.dumps({"edit": name, "ok": True, "ms": round(r.ms, 2), "fill_ms": round(r.fill_ms, 2),
                          "reproject_ms": round(r.reproject_ms, 2),
                          "visible_fraction": round(r.visible_fraction, 4),
                          "target_pixels": int(r.target_mask.sum()), "correspondences": int(len(r.correspondences)),
                          "device": str(device), "out": str(out)}), flush=True)
    return 1 if failed else 0


def _warm_up(camera, device) -> None:
    """One tiny edit first, so the first real edit's time excludes torch's one-time start-up."""
    import numpy as np

    from ..geometry import Camera, reproject

    cam = Camera.from_focal(16, 16, camera.fx * 16 / camera.width)
    depth = np.full((16, 16), 2.0, np.float32)
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    reproject(depth, mask, np.eye(4), cam, bg_depth=depth + 1, device=device)


def _device(name: str):
    import torch

    if name == "auto":
        from ..geometry.arrays import pick_device

        return pick_device()
    try:
        dev = torch.device(name)
    except RuntimeError:
        return None
    if dev.type == "cuda" and not torch.cuda.is_available():
        return None
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return None
    return dev
