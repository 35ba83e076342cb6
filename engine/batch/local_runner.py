"""The jobs in turn on one warm engine in this process (``python -m engine batch`` without ``--ray``)."""

from __future__ import annotations


def run_locally(jobs, progress, worker=None) -> tuple[list[dict], int, int]:
    """(outcomes in job order, workers used, workers replaced): the last two are 1 and 0 here."""
    from .worker import EditWorker

    worker = worker or EditWorker()
    outcomes = []
    for job in jobs:
        entry = dict(worker.run(job.id, job.params), attempts=1)
        progress.job_finished(entry)
        outcomes.append(entry)
    return outcomes, 1, 0
