"""``python -m engine geometry``: run the geometry of official test-set edits (one sample folder).

For each edit it writes OUT/<edit>.npz (depth, disparity, target_mask, correspondences) and prints one JSON line
with at least the edit, its in-process time in ms (no file I/O) and the visible fraction. An edit that fails (a
malformed transforms.json entry, an object moved out of view, behind the camera, too far away to cover a pixel)
is reported on its own line ("ok": false, "error"; the message also on stderr, exit status 1) while the other
edits still run, and an OUT/<edit>.npz left by an earlier run is removed so that it cannot pass for this one's.
An unreadable sample or an unknown edit exits with status 2.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from ._single_option import Once

log = logging.getLogger(__name__)

NAME = "geometry"
HELP = "Lift a sample's object through its depth, apply its 3D edits and write edited depth + correspondences."


def add_arguments(parser) -> None:
    parser.add_argument("--sample", action=Once, required=True, type=Path,
                        help="sample folder: input.png, mask.png, depth.exr, optional bg_depth.exr, transforms.json")
    parser.add_argument("--edit", action=Once, default="all", help="edit name from transforms.json, or 'all' (default)")
    parser.add_argument("--out-dir", action=Once, required=True, type=Path,
                        help="folder for <edit>.npz (created if missing)")
    parser.add_argument("--fov", action=Once, type=float, default=55.0, help="field of view in degrees (default 55)")
    parser.add_argument("--camera", action=Once, choices=("official", "blender"), default="official",
                        help="official: fov spans the outer pixel centres (the photogen convention, default); "
                             "blender: fov spans the outer pixel edges")
    parser.add_argument("--device", action=Once, default="auto",
                        help="auto (default: CUDA or MPS when present, else the CPU), "
                        "cpu, cuda or mps")
    parser.add_argument("--threads", action=Once, type=int, default=1,
                        help="torch CPU threads (default 1: the geometry is many medium-sized tensor ops, and extra "
                             "threads spin-wait badly when other work shares the cores; 0 = torch's choice)")
    parser.add_argument("--discontinuity", action=Once, type=float, default=0.1,
                        help="relative depth jump that splits the object's surface (default 0.1)")
    parser.add_argument("--max-stretch", action=Once, type=float, default=None,
                        help="silhouette ramps the edit stretches more than this are not drawn (default "
                             "12; 0 = always drawn)")


def run(args) -> int:
    from ..errors import EngineError
    from ..geometry import Camera, GeometryError
    from ..geometry.io import read_sample
    from ..geometry.reprojection import DEFAULT_MAX_STRETCH

    try:
        sample = read_sample(args.sample)
    except (GeometryError, EngineError) as e:
        log.error("error: %s", e)
        return 2
    names = list(sample.transforms) if args.edit == "all" else [args.edit]
    unknown = [n for n in names if n not in sample.transforms]
    if unknown:
        log.error("error: no edit %r in %s; it has: %s", unknown[0], args.sample / "transforms.json",
                  ", ".join(sample.transforms) or "none")
        return 2
    import torch

    from ..geometry.arrays import keep_freed_memory

    keep_freed_memory()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    if device is None:
        log.error("error: device %r is not available here; use --device auto or cpu", args.device)
        return 2
    H, W = sample.shape
    camera = (Camera.official if args.camera == "official" else Camera.from_fov)(W, H, fov_deg=args.fov)
    stretch = DEFAULT_MAX_STRETCH if args.max_stretch is None else (args.max_stretch or None)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    _warm_up(camera, device)
    failed = sum(not _run_edit(args, sample, name, camera, device, stretch) for name in names)
    return 1 if failed else 0


def _run_edit(args, sample, name: str, camera, device, stretch) -> bool:
    """One edit of the sample: its .npz written and its JSON line on stdout; False when it failed (its line says
    why, and a stale .npz of an earlier run is removed)."""
    from ..geometry import GeometryError
    from ..geometry.io import edit_parameters, write_edit_npz
    from ..geometry.official_edit import run_official_edit

    out = args.out_dir / f"{name}.npz"
    t0 = time.perf_counter()
    try:
        edit = edit_parameters(args.sample / "transforms.json", name, sample.transforms[name])
        r = run_official_edit(sample.depth, sample.mask, sample.bg_depth, edit, camera, device=device,
                              discontinuity=args.discontinuity, max_stretch=stretch,
                              name=f"the object in {args.sample / 'mask.png'}")
    except GeometryError as e:
        line = {"edit": name, "ok": False, "ms": round((time.perf_counter() - t0) * 1000, 2),
                "visible_fraction": 0.0, "error": str(e)}
        message = f"error: {args.sample.name}/{name}: {e}"
        if out.exists():
            out.unlink()
            line["removed"] = str(out)
            message += f" (removed {out} from an earlier run)"
        _write_line(line)
        log.error(message)
        return False
    write_edit_npz(out, r.depth, r.disparity, r.target_mask, r.correspondences)
    _write_line({"edit": name, "ok": True, "ms": round(r.ms, 2), "fill_ms": round(r.fill_ms, 2),
                 "reproject_ms": round(r.reproject_ms, 2), "visible_fraction": round(r.visible_fraction, 4),
                 "target_pixels": int(r.target_mask.sum()), "correspondences": int(len(r.correspondences)),
                 "device": str(device), "out": str(out)})
    return True

def _write_line(line: dict) -> None:
    """One JSON result line on stdout, flushed so a reader sees each edit as it ends."""
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


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
