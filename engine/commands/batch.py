"""``python -m engine batch MANIFEST --out DIR [--ray auto|ADDRESS]``: many edits, on one warm engine or on a
Ray cluster (``docs/batch.md``).

MANIFEST: a JSON-lines file of ``edit`` jobs in the engine's job format, or a sample folder (or a folder of them)
in the official layout with ``--edit NAME|all``. The edit command's options (``--model``, ``--steps``,
``--resolution``, ``--inversion``, ``--set``, ``--device``, ``--dtype``) and ``--cache-dir``/``--no-cache`` are
every job's defaults. A re-run skips jobs already done (``--retry-failed`` also runs those that failed before).
Progress goes to stderr; the summary to ``DIR/batch-summary.json``. Exit status: 0 when every job is done (or
was done before), 1 when any failed, 2 for an unreadable manifest or a missing Ray.
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import _edit_options
from ._single_option import Once

log = logging.getLogger("engine.batch")

NAME = "batch"
HELP = "Run many edits from a manifest or sample folders, on one warm engine or on a Ray cluster."


def add_arguments(parser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST",
                        help="JSON-lines file of edit jobs, or a sample folder (or a folder of them) with --edit")
    parser.add_argument("--out", action=Once, required=True, metavar="DIR", help="folder for images and reports")
    parser.add_argument("--edit", action=Once, metavar="NAME",
                        help="with sample folders: the edit of each transforms.json to run, or 'all' (default)")
    parser.add_argument("--ray", action=Once, metavar="auto|ADDRESS",
                        help="run on a Ray cluster: 'auto' (the one on this machine, else a new local one) or its "
                        "address (host:port or ray://host:10001); without it, one engine runs the jobs in turn")
    parser.add_argument("--workers", action=Once, type=int, metavar="N",
                        help="with --ray: the number of actors (default: one per GPU, else one per CPU)")
    parser.add_argument("--max-retries", action=Once, type=int, default=2, metavar="N",
                        help="with --ray: times a job is retried after its worker was lost (default 2)")
    parser.add_argument("--retry-failed", action="store_true", help="also run the jobs that failed last time")
    parser.add_argument("--cache-dir", action=Once, metavar="DIR",
                        help="inversion cache folder, shared by all workers (default DIR/inversion-cache)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the inversion cache")
    _edit_options.add_model_arguments(parser)


def run(args) -> int:
    from ..cli import configure_logging
    from ..errors import EngineError

    configure_logging("%(asctime)s %(message)s", "%H:%M:%S")
    _exit_cleanly_on_sigterm()
    if args.ray and not _ray_installed():
        log.error("error: --ray needs Ray in the engine's Python: pip install '.[cluster]' (see docs/batch.md)")
        return 2
    if args.cache_dir is None:
        args.cache_dir = str(Path(args.out).resolve() / "inversion-cache")
    try:
        from ..batch.manifest import read_jobs
        from ..batch.run import run_batch

        jobs = read_jobs(args.manifest, args.out, _edit_options.job_defaults(args), edit=args.edit)
    except EngineError as error:
        log.error("error: %s", error)
        return 2
    summary = run_batch(jobs, args.out, ray_address=args.ray, retry_failed=args.retry_failed,
                        max_retries=args.max_retries, workers=args.workers)
    return 1 if summary["failed"] else 0


def _exit_cleanly_on_sigterm() -> None:
    """A terminate (Blender's cancel) unwinds like Ctrl-C: the actors are killed and a Ray this run started is
    stopped, instead of being left running."""
    import signal

    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)


def _ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None
