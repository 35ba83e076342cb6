"""One warm engine that runs a batch's edit jobs in this process, one after another: the engine's own job runner
(``engine/process/job_runner.py``), so a job behaves as it does for Blender, with the engine's model cache keeping the
models loaded from one job to the next. The Ray actors of ``ray_runner`` each hold one.

``run(job)`` returns the job's outcome, plain JSON: ``id``, ``status`` (``done``/``failed``), ``seconds``,
``unet_evals``, ``cache`` (``{"hit": n, "miss": n}``: its frames' inversions from the cache or computed),
``images``, ``error`` (``{"code", "message"}`` when failed) and ``worker`` (host and process id).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time

log = logging.getLogger(__name__)


class EditWorker:
    def __init__(self, torch_threads: int | None = None):
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)

    def ping(self) -> str:
        return self.name

    def run_json(self, job_id: str, params_json: str) -> str:
        """``run`` with the params and the outcome as JSON text: what crosses Ray's process boundary is plain
        JSON, as everywhere else in the engine (Ray only moves the strings)."""
        return json.dumps(self.run(job_id, json.loads(params_json)))

    def run(self, job_id: str, params: dict) -> dict:
        from ..process.job_runner import run_job

        messages: list[dict] = []
        workdir = tempfile.mkdtemp(prefix=f"dhandles-batch-{job_id}-")
        started = time.perf_counter()
        try:
            run_job(job_id, "edit", params, messages.append, workdir=workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return outcome(job_id, messages, time.perf_counter() - started, self.name)


def outcome(job_id: str, messages: list[dict], seconds: float, worker: str) -> dict:
    """The outcome of a job from the protocol messages it produced."""
    final = messages[-1] if messages else {"type": "error", "code": "internal_error", "message": "no result"}
    entry = {"id": job_id, "seconds": round(seconds, 3), "worker": worker, "unet_evals": 0,
             "cache": {"hit": 0, "miss": 0}, "images": []}
    if final.get("type") != "result":
        entry.update(status="failed", error={"code": final.get("code"), "message": final.get("message")})
        return entry
    for frame in final.get("result", {}).get("frames", []):
        entry["unet_evals"] += int(frame.get("unet_evals") or 0)
        if frame.get("cache") in ("hit", "miss"):
            entry["cache"][frame["cache"]] += 1
        entry["images"].append(frame.get("image"))
    entry["status"] = "done"
    return entry
