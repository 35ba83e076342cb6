"""Batch throughput: the same manifest on one in-process engine and on a Ray cluster with 1, 2, ... actors, in the
same run (``python -m engine batch``'s runners, ``engine/batch``).

The manifest: ``--edits`` official edits of each of ``--photos`` photogen samples (a photo's edits share one
inversion), with ``--model`` (default ``tiny``) at ``--resolution``/``--steps``. Each run starts cold (fresh output
and inversion-cache folders; the Ray runs start their actors, which load the model), as a user's batch does.
Printed per run: wall seconds, edits per minute, the mean seconds of a photo's first edit (inversion included) and
of its further edits as the workers measured them (the first includes loading the model), and the overhead per
job: wall seconds minus the busiest worker's own job seconds, per job: for Ray, starting the actors' processes,
scheduling and transfers.

    .venv/bin/python bench/bench_batch.py [--actors 1,2] [--photos 4 --edits 3] [--ray auto|ADDRESS]
        [--model tiny --resolution 64 --steps 4] [--threads 1] [--out FIGURES.json]
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
SAMPLES = ("chair", "car", "guitar", "shoe", "plane", "potted_plant", "chair_2", "car_3")


def write_manifest(folder: Path, photos: int, edits: int) -> Path:
    from engine.batch.manifest import sample_edits

    lines = []
    for sample in SAMPLES[:photos]:
        for name, params in list(sample_edits(PHOTOGEN / sample, "all").items())[:edits]:
            for key in ("photo", "mask", "depth", "bg_depth"):
                if key in params:
                    params[key] = str(PHOTOGEN / sample / params[key])
            lines.append({"id": f"{sample}-{name}", "name": "edit", "params": params})
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def one_run(manifest: Path, folder: Path, args, ray_address=None, actors=None) -> dict:
    from engine.batch.job_params import JobDefaults
    from engine.batch.manifest import read_jobs
    from engine.batch.run import run_batch

    settings = {"resolution": args.resolution, "num_steps": args.steps,
                "guided_steps": max(1, round(args.steps * 38 / 50)), "opt_steps": 1, "null_inner_steps": 1}
    defaults = JobDefaults(model=args.model, device=args.device, settings=settings,
                           cache_dir=str(folder / "inversion-cache"))
    jobs = read_jobs(manifest, folder, defaults)
    started = time.perf_counter()
    summary = run_batch(jobs, folder, ray_address=ray_address, workers=actors)
    wall = time.perf_counter() - started
    done = [job for job in summary["jobs"] if job["status"] == "done"]
    first = [job["seconds"] for job in done if job["cache"]["miss"]]
    further = [job["seconds"] for job in done if not job["cache"]["miss"]]
    per_worker: dict = {}
    for job in done:
        per_worker[job["worker"]] = per_worker.get(job["worker"], 0.0) + job["seconds"]
    busy = max(per_worker.values(), default=0.0)  # the busiest worker's own seconds; the rest of the wall is overhead
    return {"runner": summary["runner"], "workers": summary["workers"], "jobs": len(jobs), "done": len(done),
            "wall_seconds": round(wall, 2), "edits_per_minute": round(60 * len(done) / wall, 2),
            "first_edit_seconds": round(sum(first) / max(1, len(first)), 3),
            "further_edit_seconds": round(sum(further) / max(1, len(further)), 3),
            "overhead_per_job_seconds": round((wall - busy) / max(1, len(done)), 3),
            "inversions": summary["inversions"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", default="1,2", help="Ray actor counts to run, comma-separated")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--edits", type=int, default=3, help="edits per photo (at most the sample's)")
    parser.add_argument("--ray", default="auto", help="cluster address; auto: a local one with the CPUs here")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the local engine (default 1: as each CPU actor has, so the "
                        "one-engine row and the one-actor row do the same work on the same cores)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    import ray
    import torch

    from engine.batch.ray_runner import connect

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        manifest = write_manifest(tmp, args.photos, args.edits)
        rows.append(one_run(manifest, tmp / "local", args))
        started = time.perf_counter()
        connect(args.ray)
        ray_start = round(time.perf_counter() - started, 2)
        for count in [int(text) for text in args.actors.split(",")]:
            rows.append(one_run(manifest, tmp / f"ray{count}", args, ray_address=args.ray, actors=count))
        ray.shutdown()
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()},
              "settings": vars(args) | {"out": str(args.out)}, "ray_start_seconds": ray_start, "runs": rows}
    print(f"{'runner':8} {'workers':>7} {'wall s':>8} {'edits/min':>9} {'first s':>8} {'further s':>9} "
          f"{'overhead s/job':>14}")
    for row in rows:
        print(f"{row['runner']:8} {row['workers']:>7} {row['wall_seconds']:>8} {row['edits_per_minute']:>9} "
              f"{row['first_edit_seconds']:>8} {row['further_edit_seconds']:>9} {row['overhead_per_job_seconds']:>14}")
    print(f"Ray start-up (not in the rows): {ray_start} s")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
