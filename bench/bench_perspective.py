"""Perspective metric and losses on Blender-rendered box rooms: the rooms' exact VPs vs perturbed ones (the in-run
baseline), plus the cost of the losses at 512x512.

For --rooms box rooms rendered with Workbench (perspective/perspective_dataset.py) at --size, with their exact world-
axis VPs and with the VPs moved by 2%, 5% and 10% of the image diagonal (directions at infinity turned 10 degrees):
the LSD inlier shares at 1/2/5 degrees, the median error, and the no-reference loss. Then the time of the reference
loss (1000 lines per VP, 3 VPs) and of the no-reference loss, forward + backward, on a 1x3xSxS image.

    .venv/bin/python bench/bench_perspective.py [--rooms 8] [--size 512] [--out bench/results/perspective_cpu2.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dhandles-bench-blender-"))

import json  # noqa: E402

import numpy as np  # noqa: E402


def render_rooms(count: int, size: int, folder: str) -> list[str]:
    import importlib

    from conftest import addon_import_dir  # the add-on importable as a package, as the tests do

    sys.path.insert(0, str(addon_import_dir()))
    module = importlib.import_module("diffusion_handles.perspective.perspective_dataset")
    return module.make_perspective_dataset(folder, count=count, width=size, height=size, seed=11)


def agreement_lines(samples, size: int) -> list:
    """The table of VP agreement and no-reference loss over the rendered rooms, for exact and moved VPs."""
    import cv2
    import torch
    from perspective_drawing import perturb_vps

    from engine.perspective.metric import vp_agreement
    from engine.perspective.no_reference import vp_consistency_loss

    lines = []
    variants = {"exact VPs": 0.0, "moved 2% of diagonal": 0.02, "moved 5%": 0.05, "moved 10%": 0.10}
    table = {name: [] for name in variants}
    for n, sample in enumerate(samples):
        image = cv2.imread(f"{sample}/image.png")[..., ::-1].astype(np.float32) / 255.0
        vps = np.array(json.loads(Path(f"{sample}/vps.json").read_text())["vps"])
        batch = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        for name, fraction in variants.items():
            used = vps if fraction == 0 else perturb_vps(vps, size, size, fraction, seed=n)
            figures = vp_agreement(image, used)
            figures["no_reference_loss"] = float(vp_consistency_loss(batch, used))
            table[name].append(figures)
    lines.append(f"{'mean over rooms':24s} {'in 1deg':>8s} {'in 2deg':>8s} {'in 5deg':>8s} {'median':>8s} "
                 f"{'no-ref loss':>12s}")
    for name, rows in table.items():
        mean = {key: statistics.fmean(r[key] for r in rows) for key in (
            "inlier_share_1deg", "inlier_share_2deg", "inlier_share_5deg", "median_error_deg", "no_reference_loss")}
        lines.append(f"{name:24s} {mean['inlier_share_1deg']:8.3f} {mean['inlier_share_2deg']:8.3f} "
                     f"{mean['inlier_share_5deg']:8.3f} {mean['median_error_deg']:7.2f}d "
                     f"{mean['no_reference_loss']:12.4f}")
    segments = statistics.median(r["segments"] for r in table["exact VPs"])
    lines.append(f"segments per room (LSD, >= 10 px): median {segments}")
    return lines


def timing_line(size: int, repeats: int) -> str:
    """Forward+backward time of the reference and no-reference losses (and pixel MSE for scale)."""
    import torch

    from engine.perspective.loss import perspective_loss
    from engine.perspective.no_reference import vp_consistency_loss

    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    reference = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    vps = [(-900.0, 250.0), (1400.0, 260.0), (0.0, 1.0, 0.0)]

    def timed(loss_fn):
        best = float("inf")
        for _ in range(repeats):
            x = image.clone().requires_grad_(True)
            t0 = time.perf_counter()
            loss_fn(x).backward()
            best = min(best, time.perf_counter() - t0)
        return best

    mse = timed(lambda x: (x - reference).square().mean())
    reference_loss = timed(lambda x: perspective_loss(x, reference, vps))
    no_reference = timed(lambda x: vp_consistency_loss(x, vps))
    return (f"forward+backward on 1x3x{size}x{size}, best of {repeats}: reference loss "
            f"(3 VPs x 1000 lines) {reference_loss * 1000:.0f} ms, no-reference loss {no_reference * 1000:.0f} ms "
            f"(pixel MSE, for scale: {mse * 1000:.1f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the lines printed to this file")
    args = parser.parse_args()

    import torch

    lines = [f"# bench/bench_perspective.py --rooms {args.rooms} --size {args.size}, "
             f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}",
             f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"torch {torch.__version__}, device cpu, load average {os.getloadavg()[0]:.1f} at start (the 2 cores "
             "are shared with other jobs: timings are upper bounds)"]
    folder = tempfile.mkdtemp(prefix="dhandles-bench-rooms-")
    start = time.perf_counter()
    samples = render_rooms(args.rooms, args.size, folder)
    lines.append(f"rendered {len(samples)} rooms at {args.size}x{args.size} with Workbench in "
                 f"{time.perf_counter() - start:.1f} s")
    lines += agreement_lines(samples, args.size)
    lines.append(timing_line(args.size, args.repeats))
    print("\n".join(lines))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
