"""A whole batch: skip what is done, run the rest (locally or on Ray), then log and write the summary."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from . import progress as batch_progress
from .resume import (
    SUMMARY_NAME,
    failed_before,
    job_done,
    params_digest,
    previous_failures,
)

log = logging.getLogger("engine.batch")


def run_batch(jobs, out_dir, ray_address: str | None = None, retry_failed: bool = False, max_retries: int = 2,
              workers: int | None = None, on_dispatch=None) -> dict:
    """Run ``jobs`` (``BatchJob``s) writing under ``out_dir``; returns the summary (also in ``out_dir``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = previous_failures(out_dir)
    entries, todo, digests = {}, [], {}  # digests: each input file hashed once for all the resume checks
    for job in jobs:
        entry = _skip_entry(job, failures, retry_failed, digests)
        if entry is None:
            todo.append(job)
        else:
            entries[job.id] = entry
    log.info("batch of %d jobs: %d to run, %d skipped (done, or failed before: --retry-failed runs those)",
             len(jobs), len(todo), len(entries))
    started = time.perf_counter()
    progress = batch_progress.BatchProgress(len(todo), len(entries))
    outcomes, count, restarts = _run(todo, progress, ray_address, max_retries, workers, on_dispatch)
    for outcome in outcomes:
        entries[outcome["id"]] = outcome
    for job in todo:
        entries[job.id]["params_digest"] = params_digest(job.params)
    data = batch_progress.summary([entries[job.id] for job in jobs], "ray" if ray_address else "local", count,
                                  restarts, time.perf_counter() - started)
    path = batch_progress.write_summary(data, out_dir / SUMMARY_NAME)
    batch_progress.log_summary(data, path)
    return data


def _skip_entry(job, failures: dict, retry_failed: bool, digests: dict) -> dict | None:
    digest = params_digest(job.params)
    if job_done(job, digests):
        return {"id": job.id, "status": "skipped", "reason": "done", "params_digest": digest,
                "images": [output for _, output in job.frames()]}
    before = None if retry_failed else failed_before(job, failures)
    if before is not None:
        return {"id": job.id, "status": "skipped", "reason": "failed before", "failed_before": True,
                "error": before.get("error"), "params_digest": digest}
    return None


def _run(todo, progress, ray_address, max_retries, workers, on_dispatch):
    if not todo:
        return [], 0, 0
    if not ray_address:
        from .local_runner import run_locally

        return run_locally(todo, progress)
    from .ray_runner import RayRunner, connect

    started_ray = connect(ray_address)
    runner = RayRunner(workers, max_retries, on_dispatch)
    try:
        return runner.run(todo, progress)
    finally:
        runner.shutdown()
        if started_ray:
            import ray

            ray.shutdown()
