"""What keeping the engine warm saves on a real edit job: a fresh one-shot process per edit (imports torch and
diffusers, builds the model, reads the cached inversion) against a second edit in the long-lived server (models
and imports already there). Tiny preset (random weights) at a 64-pixel working size, so the figures are the
fixed costs the warm server removes, not diffusion time; the photo's inversion is cached in both cases.

    .venv/bin/python bench/engine_warm_models.py [--repeats 3] [--sample ../shared/photogen/car]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.process.client import EngineClient  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", default=str(ROOT.parent / "shared" / "photogen" / "car"))
    args = parser.parse_args()
    sample = Path(args.sample).resolve()  # job parameters take absolute paths only
    work = Path(tempfile.mkdtemp(prefix="dhandles-bench-"))
    params = {"photo": str(sample / "input.png"), "depth": str(sample / "depth.exr"), "mask": str(sample / "mask.png"),
              "fov": 55.0, "transform": [[1, 0, 0, 0.05], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
              "output": str(work / "edit.png"), "prompt": (sample / "prompt.txt").read_text().strip(),
              "model": "tiny", "cache_dir": str(work / "cache"),
              "settings": {"num_steps": 2, "guided_steps": 2, "inversion": "ddim", "resolution": 64}}
    (work / "params.json").write_text(json.dumps(params))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    client = EngineClient(python=sys.executable, cwd=ROOT, env=env)
    started = time.perf_counter()
    client.run("edit", params)  # first edit: imports, model build, inversion into the cache
    first = time.perf_counter() - started
    warm = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        client.run("edit", params)
        warm.append(time.perf_counter() - started)
    client.release()

    cold = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engine", "job", "edit", "--params", str(work / "params.json")],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        cold.append(time.perf_counter() - started)

    print(f"first edit in a new server (cold, inversion computed) : {first:6.2f} s")
    print(f"baseline, one-shot process per edit (inversion cached) : median {statistics.median(cold):6.2f} s "
          f"(min {min(cold):.2f}, max {max(cold):.2f})")
    print(f"warm server, next edit (inversion cached)               : median {statistics.median(warm):6.2f} s "
          f"(min {min(warm):.2f}, max {max(warm):.2f})")
    saved = statistics.median(cold) - statistics.median(warm)
    print(f"saved per edit by the warm server                       : {saved:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
