"""Resuming a batch: which jobs a re-run skips.

A job is done when each of its images and its report exist and the report's ``inputs.job_digest`` equals the
digest of the job as it is now (same input files by content, prompt, transform, camera, settings and model; see
``engine/jobs/_edit_inputs.py``): a changed photo or setting runs again. A job that failed in the previous run (as
``batch-summary.json`` in the output folder records it, with the digest of its params) is skipped as failed until
``--retry-failed``, or until its params change.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..diffusion.settings import digest
from ..jobs._edit_inputs import inputs_section

SUMMARY_NAME = "batch-summary.json"


def params_digest(params: dict) -> str:
    """The job's parameters' digest (canonical JSON), what ``--retry-failed`` compares."""
    return digest(params)


def job_done(job, digests: dict | None = None) -> bool:
    """True when every image of ``job`` and its report exist and match the job's inputs as they are now;
    ``digests`` ({path: SHA-256}) carries the input files already hashed in this run."""
    frames = job.frames()
    digests = {} if digests is None else digests
    return bool(frames) and all(_frame_done(job.params, transform, output, digests) for transform, output in frames)


def _frame_done(params: dict, transform, output, digests: dict) -> bool:
    image = Path(output)
    report = image.with_suffix(".json")
    if not image.is_file() or not report.is_file():
        return False
    try:
        recorded = json.loads(report.read_text())["inputs"]["job_digest"]
        expected = inputs_section(params, transform, output, digests)["job_digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return recorded == expected


def previous_failures(out_dir) -> dict[str, dict]:
    """``{job id: failure}`` of the previous run's summary in ``out_dir`` (empty when there is none)."""
    path = Path(out_dir) / SUMMARY_NAME
    try:
        summary = json.loads(path.read_text())
        return {entry["id"]: entry for entry in summary.get("jobs", [])
                if entry.get("status") == "failed" or entry.get("failed_before")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def failed_before(job, failures: dict[str, dict]) -> dict | None:
    """The previous failure of ``job`` when its params have not changed since, else None."""
    entry = failures.get(job.id)
    if entry and entry.get("params_digest") == params_digest(job.params):
        return entry
    return None
