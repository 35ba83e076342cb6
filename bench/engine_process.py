"""How fast the engine process answers: start, job round trip, cancel, crash detection and restart.

Baseline measured in the same run: a fresh one-shot process per job (``python -m engine job ping``), which is
what the engine would cost without the long-lived server. Uses the ``ping`` job (no model), so it measures the
process and protocol overhead only; model load and diffusion time come on top and are what the warm server saves
again and again.

    .venv/bin/python bench/engine_process.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.process.client import EngineClient  # noqa: E402


def median_ms(values) -> str:
    values = sorted(values)
    return f"median {statistics.median(values) * 1e3:7.1f} ms  (min {values[0] * 1e3:.1f}, max {values[-1] * 1e3:.1f})"


def wait_end(client, job, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in client.poll():
            if message.get("job") == job and message["type"] in ("result", "error"):
                return message
        time.sleep(0.001)
    raise TimeoutError(job)


def wait_progress(client, job) -> None:
    while True:
        for message in client.poll():
            if message.get("job") == job and message["type"] == "progress":
                return
        time.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    python = sys.executable
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    one_shot = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([python, "-m", "engine", "job", "ping"], cwd=ROOT, check=True, capture_output=True)
        one_shot.append(time.perf_counter() - started)
    print(f"baseline, one-shot process per ping job : {median_ms(one_shot)}")

    starts, round_trips, cancels, crash_detect, restarts = [], [], [], [], []
    for _ in range(args.repeats):
        client = EngineClient(python=python, cwd=ROOT)
        started = time.perf_counter()
        client.start()
        starts.append(time.perf_counter() - started)
        client.release()

    client = EngineClient(python=python, cwd=ROOT)
    client.run("ping", {})
    for _ in range(args.repeats):
        started = time.perf_counter()
        client.run("ping", {}, interval=0.001)
        round_trips.append(time.perf_counter() - started)
    for _ in range(args.repeats):
        job = client.submit("ping", {"steps": 100_000, "sleep": 0.05})
        wait_progress(client, job)
        asked = time.perf_counter()
        client.cancel(job)
        assert wait_end(client, job)["code"] == "cancelled"
        cancels.append(time.perf_counter() - asked)
    for _ in range(max(3, args.repeats // 4)):
        job = client.submit("ping", {"steps": 100_000, "sleep": 0.05})
        wait_progress(client, job)
        killed = time.perf_counter()
        os.kill(client.pid, signal.SIGKILL)
        assert wait_end(client, job)["code"] == "engine_crashed"
        crash_detect.append(time.perf_counter() - killed)
        started = time.perf_counter()
        client.run("ping", {}, interval=0.001)
        restarts.append(time.perf_counter() - started)
    client.release()

    print(f"warm server, start to hello             : {median_ms(starts)}")
    print(f"warm server, ping job round trip        : {median_ms(round_trips)}")
    print(f"cancel to 'cancelled' (50 ms steps)     : {median_ms(cancels)}")
    print(f"kill -9 to 'engine_crashed' reported    : {median_ms(crash_detect)}")
    print(f"restart + first job after a crash       : {median_ms(restarts)}")
    ratio = statistics.median(one_shot) / statistics.median(round_trips)
    print(f"one-shot / warm round trip              : {ratio:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
