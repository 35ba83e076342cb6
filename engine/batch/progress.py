"""A batch's progress in the terminal (``logging``: one line per finished job, with the overall count and an
estimate of the time left) and its summary, logged at the end and written as ``batch-summary.json``.

Summary keys: ``runner`` (``local`` or ``ray``), ``workers``, ``worker_restarts``, ``seconds`` (wall clock),
``done``/``failed``/``skipped`` (counts), ``inversions`` (computed) and ``cache_hits`` (inversions reused),
``edits_per_minute``, ``failures`` (``{"id", "code", "message", "attempts"}``), and ``jobs``: one entry per job
with ``status`` (``done``, ``failed``, ``skipped``), ``seconds``, ``unet_evals``, ``cache``, ``attempts``,
``worker``, ``images``, ``params_digest`` (what ``--retry-failed`` compares) and ``error``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("engine.batch")


class BatchProgress:
    def __init__(self, total: int, skipped: int = 0):
        self.total, self.skipped = total, skipped
        self.finished = 0
        self.started = time.perf_counter()

    def job_finished(self, outcome: dict) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.started
        left = self.total - self.finished
        eta = elapsed / self.finished * left
        cache = outcome.get("cache", {})
        what = (f"done in {outcome['seconds']:.1f}s, {outcome['unet_evals']} UNet evals, inversion "
                f"{'reused' if cache.get('hit') and not cache.get('miss') else 'computed'}"
                if outcome["status"] == "done" else f"FAILED ({outcome['error']['code']}: "
                f"{outcome['error']['message']})")
        log.info("[%d/%d] %s %s on %s; %.0f%% of the batch, about %s left", self.finished, self.total,
                 outcome["id"], what, outcome.get("worker", "?"), 100.0 * self.finished / max(1, self.total),
                 _duration(eta))

    def job_retried(self, job_id: str, attempt: int, reason: str) -> None:
        log.warning("%s: %s; retrying it (attempt %d)", job_id, reason, attempt)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def summary(entries: list[dict], runner: str, workers: int, restarts: int, seconds: float) -> dict:
    done = [e for e in entries if e["status"] == "done"]
    failed = [e for e in entries if e["status"] == "failed"]
    return {"runner": runner, "workers": workers, "worker_restarts": restarts, "seconds": round(seconds, 3),
            "done": len(done), "failed": len(failed), "skipped": sum(e["status"] == "skipped" for e in entries),
            "inversions": sum(e.get("cache", {}).get("miss", 0) for e in done),
            "cache_hits": sum(e.get("cache", {}).get("hit", 0) for e in done),
            "edits_per_minute": round(60.0 * len(done) / seconds, 3) if seconds > 0 else None,
            "failures": [{"id": e["id"], "attempts": e.get("attempts", 1), **(e.get("error") or {})}
                         for e in failed],
            "jobs": entries}


def write_summary(data: dict, path) -> Path:
    """Write the summary atomically (a temporary file, then a rename): an interrupted write leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2, default=str))
    os.replace(temporary, path)
    return path


def log_summary(data: dict, path) -> None:
    log.info("batch finished in %s: %d done, %d failed, %d skipped; %d inversions computed, %d reused; "
             "%s edits/minute on %d %s worker(s); summary in %s", _duration(data["seconds"]), data["done"],
             data["failed"], data["skipped"], data["inversions"], data["cache_hits"], data["edits_per_minute"],
             data["workers"], data["runner"], path)
    for failure in data["failures"]:
        log.error("failed: %s (%s, %d attempt(s)): %s", failure["id"], failure.get("code"), failure["attempts"],
                  failure.get("message"))
