"""``python -m engine edit --sample DIR --edit all --out FOLDER``: every edit of a sample folder, as the geometry
command does it: ``FOLDER/<edit>.png`` and its report ``.json`` each, one line per edit (``ok``, ``error``), an
edit that fails reported while the others still run (exit status 1), an unreadable sample exit status 2. It is a
batch (``engine/batch``) on one warm engine, so it also resumes: edits already done with the same inputs are
skipped, and ``FOLDER/batch-summary.json`` sums it up."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("engine.batch")


def run_all(args) -> int:
    from ..cli import configure_logging
    from ..errors import EngineError

    configure_logging()
    problem = _refused(args)
    if problem:
        log.error("error: %s", problem)
        return 2
    from ..batch.manifest import read_jobs
    from ..batch.run import run_batch
    from . import _edit_options

    try:
        jobs = read_jobs(args.sample, args.out, _edit_options.job_defaults(args), edit="all")
        if args.prompt is not None:
            for job in jobs:
                job.params["prompt"] = args.prompt
    except EngineError as error:
        log.error("error: %s", error)
        return 2
    summary = run_batch(jobs, args.out)
    for entry in summary["jobs"]:
        line = {"edit": entry["id"].rsplit("-", 1)[-1],
                "ok": entry["status"] != "failed" and not entry.get("failed_before"), "status": entry["status"],
                "images": entry.get("images", [])}
        if entry.get("error"):
            line["error"] = entry["error"].get("message")
        sys.stdout.write(json.dumps(line) + "\n")  # the command's output, one line per edit
        sys.stdout.flush()
    return 1 if summary["failed"] or any(e.get("failed_before") for e in summary["jobs"]) else 0


def _refused(args) -> str | None:
    if not args.sample:
        return "--edit all needs --sample DIR (a folder in the official layout)."
    if Path(args.out).suffix.lower() == ".png" or args.report:
        return "with --edit all, --out is a folder (for <edit>.png and <edit>.json), and --report is not taken."
    if args.vp or args.vps or args.lora or args.perspective_weight is not None or args.perspective_mode:
        return "--edit all takes no perspective options; run the edits one by one, or write a batch manifest."
    if args.photo or args.mask or args.depth or args.transform:
        return "--edit all reads the sample folder's own files; drop --photo, --mask, --depth and --transform."
    return None
