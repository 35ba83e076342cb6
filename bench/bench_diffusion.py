"""Diffusion Handles cost: UNet evaluations per stage against the official method's, UNet timings of the real
SD2-depth architecture (random weights, so it costs what the real model costs), and on a GPU the whole edit.

Three parts, each printed next to its in-run baseline:
- ``counts``: the pipeline at the official step counts (50 DDIM steps, 38 guided timesteps x 3 gradient steps,
  null-text with 5 inner steps) with the tiny preset; UNet evaluations do not depend on the architecture, so these
  are the counts of the real model too. Baseline: the official implementation's accounting for the same settings
  (DDIM inversion N + null-text N + 3kN + CFG 2N = 950; reconstruction N + 2N = 150; edit 3 x 3 x 38 + 2N = 442),
  in batch-1 forward equivalents, a backward counting 2. Null-text's early stop depends on the weights; random
  weights never stop early, so its count here is the upper bound.
- ``unet``: one batch-1 forward, one batch-2 (CFG) forward and one forward+backward to the latents of the full-size
  SD2-depth UNet at ``--resolution``, on ``--device`` in its dtype; with the counts, the seconds an edit costs.
- ``full`` (default on CUDA): first edit (null-text inversion included), a further edit of the same photo (cache
  hit) and the DDIM-inversion variant, with ``sd2-depth-random`` on a photogen sample: seconds and peak memory per
  stage.

Peak memory on CUDA is given twice: ``peak_memory_allocated_bytes`` (``torch.cuda.max_memory_allocated``: what the
tensors held) and ``peak_memory_reserved_bytes`` (``torch.cuda.max_memory_reserved``: what the caching allocator
took from the driver, what other programs could not use). Elsewhere ``peak_memory_measure`` says what the one figure
is (the CPU's is the process's peak resident size).

    .venv/bin/python bench/bench_diffusion.py [--parts counts,unet,full] [--device cuda] [--resolution 512]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHOTOGEN = ROOT.parent / "shared" / "photogen"


def official_counts(n=50, inner=5, guided=38, opt=3) -> dict:
    """The official implementation's UNet work in batch-1 forward equivalents (backward = 2)."""
    return {"inversion": n + n + 3 * inner * n + 2 * n, "reconstruction": n + 2 * n,
            "edit": 3 * opt * guided + 2 * n}


def part_counts(sample: Path) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: thread hand-offs cost more than the maths
    try:
        return _count_rows(sample)
    finally:
        torch.set_num_threads(threads)


def _count_rows(sample: Path) -> dict:
    from engine.diffusion.cache import InversionCache
    from engine.diffusion.inputs import read_sample
    from engine.diffusion.pipeline import Editor
    from engine.diffusion.settings import EditSettings
    from engine.models import load_diffusion

    models = load_diffusion("tiny", device="cpu")
    request = read_sample(sample, "edit_001")
    rows = {}
    for inversion, settings in (("null-text", EditSettings(resolution=64)),
                                ("ddim", EditSettings(resolution=64, inversion="ddim")),
                                ("fast preset", EditSettings.fast(resolution=64))):
        editor = Editor(models, settings, InversionCache(tempfile.mkdtemp(prefix="dh-bench-")))
        first = editor.edit(request).report
        second = editor.edit(request).report
        rows[inversion] = {
            "inversion_and_reconstruction": first["stages"]["inversion"]["unet_evals"],
            "edit": second["stages"]["guided_sampling"]["unet_evals"],
            "first_edit_total": first["unet_evals"], "further_edit_total": second["unet_evals"],
            "second_edit_cache": second["cache"]["inversion"]}
    official = official_counts()
    rows["official"] = {"inversion_and_reconstruction": official["inversion"] + official["reconstruction"],
                        "edit": official["edit"],
                        "first_edit_total": official["inversion"] + official["reconstruction"] + official["edit"],
                        "further_edit_total": official["edit"]}  # keeping its inversion in memory
    return rows


def _sync(device):
    from engine.device import synchronize

    synchronize(device)


def _time(fn, device, repeats):
    fn()  # warm-up (kernels, allocator)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def part_unet(device, dtype, resolution, repeats) -> dict:
    import torch

    from engine.device import reset_peak_memory
    from engine.models.full_size_random import build_unet

    unet = build_unet().to(device=device).requires_grad_(False)
    if dtype != torch.float32:
        unet.to(dtype=dtype)
    if device.type == "cuda":
        unet.to(memory_format=torch.channels_last)
    side = resolution // 8
    x1 = torch.randn(1, 5, side, side, device=device, dtype=dtype)
    x2 = torch.randn(2, 5, side, side, device=device, dtype=dtype)
    text1 = torch.randn(1, 77, 1024, device=device, dtype=dtype)
    text2 = torch.randn(2, 77, 1024, device=device, dtype=dtype)
    t = torch.tensor(500, device=device)

    def forward1():
        with torch.no_grad():
            unet(x1, t, encoder_hidden_states=text1)

    def forward2():
        with torch.no_grad():
            unet(x2, t, encoder_hidden_states=text2)

    def forward_backward():
        z = x1.detach().requires_grad_(True)
        out = unet(z, t, encoder_hidden_states=text1).sample
        torch.autograd.grad(out.float().pow(2).mean(), [z])

    reset_peak_memory(device)
    result = {"parameters": sum(p.numel() for p in unet.parameters()),
              "forward_batch1_s": _time(forward1, device, repeats),
              "forward_batch2_s": _time(forward2, device, repeats),
              "forward_backward_batch1_s": _time(forward_backward, device, repeats)}
    result.update(_peak_memory(device))
    return result


def _peak_memory(device) -> dict:
    """Both CUDA peaks (allocated by tensors, reserved by the allocator), or the device's one figure, named."""
    from engine.device import peak_memory_bytes, peak_memory_measure, peak_memory_reserved_bytes

    return {"peak_memory_allocated_bytes": peak_memory_bytes(device),
            "peak_memory_reserved_bytes": peak_memory_reserved_bytes(device),
            "peak_memory_measure": peak_memory_measure(device)}


def part_full(device, dtype, resolution, sample: Path, steps: int = 50) -> dict:
    from dataclasses import replace

    import numpy as np

    from engine.diffusion.cache import InversionCache
    from engine.diffusion.inputs import read_sample
    from engine.diffusion.pipeline import Editor
    from engine.diffusion.settings import EditSettings, guided_steps_for
    from engine.models import load_diffusion

    models = load_diffusion("sd2-depth-random", device=str(device), dtype=dtype)
    request = read_sample(sample, "edit_001")
    out = {}
    common = {"resolution": resolution}
    if steps != 50:  # a shorter smoke run, guidance on the official 38/50 share of the steps
        common.update(num_steps=steps, guided_steps=guided_steps_for(steps))
    for label, settings in (("official (null-text)", EditSettings(**common)),
                            ("ddim inversion", EditSettings(**common, inversion="ddim")),
                            ("fast preset", EditSettings.fast(**common))):
        editor = Editor(models, settings, InversionCache(tempfile.mkdtemp(prefix="dh-bench-")))
        first = editor.edit(request).report
        editor._last = None  # a further edit reads the inversion from disk, as after an engine restart
        second = editor.edit(replace(request, transform=np.eye(4))).report
        out[label] = {"first_edit": _summary(first), "further_edit": _summary(second)}
    return out


def _peak_text(row: dict) -> str:
    """'peak 1.23 GiB (measure)', with the reserved peak where there is one (CUDA)."""
    text = f"peak {(row['peak_memory_allocated_bytes'] or 0) / 2**30:.2f} GiB ({row['peak_memory_measure']})"
    if row.get("peak_memory_reserved_bytes") is not None:
        text += f", reserved {row['peak_memory_reserved_bytes'] / 2**30:.2f} GiB (torch.cuda.max_memory_reserved)"
    return text


def _summary(report: dict) -> dict:
    return {"seconds": report["seconds"], "peak_memory_allocated_bytes": report["peak_memory_bytes"],
            "peak_memory_reserved_bytes": report.get("peak_memory_reserved_bytes"),
            "peak_memory_measure": report.get("peak_memory_measure"), "unet_evals": report["unet_evals"],
            "cache": report["cache"]["inversion"],
            "stages": {k: {"seconds": v["seconds"], "unet_evals": v["unet_evals"]}
                       for k, v in report["stages"].items()}}


def run_counts(results: dict, sample: Path) -> None:
    """The UNet evaluations each part of an edit costs, printed and kept in ``results``."""
    if not sample.is_dir():
        print(f"skipping counts: sample {sample} not found")
        return
    results["counts"] = counts = part_counts(sample)
    print("UNet evaluations (batch-1 forward equivalents, backward = 2), 50 steps:")
    print(f"  {'':24s} {'invert+reconstruct':>19s} {'each edit':>10s} {'first edit':>11s} "
          f"{'further edit':>13s}")
    for name, row in counts.items():
        print(f"  {name:24s} {row['inversion_and_reconstruction']:>19d} {row['edit']:>10d} "
              f"{row['first_edit_total']:>11d} {row['further_edit_total']:>13d}")


def run_unet(results: dict, device, dtype, args) -> None:
    """The UNet's timings (and, with the counts, the estimated seconds of each edit), printed and kept."""
    from engine.device import dtype_name

    unet = results["unet"] = part_unet(device, dtype, args.resolution, args.repeats)
    print(f"SD2-depth UNet ({unet['parameters'] / 1e6:.0f}M parameters, random weights) at {args.resolution}, "
          f"{device} {dtype_name(dtype)}: forward {unet['forward_batch1_s']:.3f} s, CFG batch-2 forward "
          f"{unet['forward_batch2_s']:.3f} s, forward+backward {unet['forward_backward_batch1_s']:.3f} s; "
          f"{_peak_text(unet)}")
    if "counts" not in results:
        return
    per_eval = unet["forward_batch1_s"]
    estimate = {name: {"first_edit_s": row["first_edit_total"] * per_eval,
                       "further_edit_s": row["further_edit_total"] * per_eval}
                for name, row in results["counts"].items()}
    results["estimated_seconds"] = estimate
    print("  estimated UNet seconds (evals x batch-1 forward time):")
    for name, row in estimate.items():
        print(f"    {name:24s} first edit {row['first_edit_s']:9.1f} s   further edit "
              f"{row['further_edit_s']:9.1f} s")


def run_full(results: dict, device, dtype, args, sample: Path) -> None:
    """Whole edits (first and further) of the sample, printed and kept."""
    if not sample.is_dir():
        print(f"skipping full: sample {sample} not found")
        return
    full = results["full"] = part_full(device, dtype, args.resolution, sample, args.steps)
    for label, row in full.items():
        for which in ("first_edit", "further_edit"):
            r = row[which]
            stages = ", ".join(f"{k} {v['seconds']:.2f}s" for k, v in r["stages"].items())
            print(f"  {label:22s} {which:12s} {r['seconds']:7.2f} s, {_peak_text(r)}, cache {r['cache']}: "
                  f"{stages}")


def main(argv=None) -> int:
    import torch

    from engine.device import dtype_name, pick_device, pick_dtype

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=None, help="comma-separated: counts, unet, full (default: counts,unet "
                        "on the CPU, all three on a GPU)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps of the full edits (default 50)")
    parser.add_argument("--sample", default=str(PHOTOGEN / "chair"))
    parser.add_argument("--out", default=None, help="JSON file for the results (default: print only)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = pick_device(args.device)
    dtype = pick_dtype(device, args.dtype)
    parts = (args.parts or ("counts,unet,full" if device.type == "cuda" else "counts,unet")).split(",")
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
               "device": str(device), "dtype": dtype_name(dtype), "resolution": args.resolution}
    sample = Path(args.sample)
    if "counts" in parts:
        run_counts(results, sample)
    if "unet" in parts:
        run_unet(results, device, dtype, args)
    if "full" in parts:
        run_full(results, device, dtype, args, sample)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
