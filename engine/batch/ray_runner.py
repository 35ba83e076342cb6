"""The jobs on a Ray cluster: one actor per GPU (one per CPU slot on a cluster without GPUs), each an
``EditWorker`` that loads the models once and keeps them warm.

A photo's jobs (a group) go to one actor, one after another, so its inversion is computed once and the other
edits and frames read it from the shared inversion cache folder (on a cluster of several machines that folder
must be shared, e.g. NFS; otherwise each machine computes it once). An idle actor takes the next whole group; when
none is left, it takes the back half of the longest group whose inversion is already done (an animation's
frames are one group).
When an actor is lost (its process or machine died, or it was killed), a new actor replaces it and the job it was
running goes back, with the rest of its group, to the front of the queue for the next free actor; a job is tried
at most ``1 + max_retries`` times, then reported failed (``worker_lost``) while the rest go on. Ray does the
scheduling, placement and fault detection; this module only decides which actor gets which job.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WorkerLost

log = logging.getLogger(__name__)

ENGINE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding ``engine/``


def runtime_env() -> dict:
    """What the actors' processes need to import this engine: its folder on ``PYTHONPATH``, offline settings."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [ENGINE_ROOT, os.environ.get("PYTHONPATH")]))}
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "DHANDLES_CACHE_MAX_GB"):
        if key in os.environ:
            env[key] = os.environ[key]
    return {"env_vars": env}


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (``auto``: the one running on this machine, else a new local one);
    returns True when this call started Ray (and so should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address == "auto":
        try:
            ray.init(address="auto", runtime_env=runtime_env(), log_to_driver=False)
            return True
        except ConnectionError:
            log.info("no Ray cluster running on this machine: starting a local one")
            ray.init(runtime_env=runtime_env(), log_to_driver=False, include_dashboard=False)
            return True
    ray.init(address=address, runtime_env=runtime_env(), log_to_driver=False)
    return True


def actor_plan(workers: int | None = None) -> tuple[int, dict]:
    """(number of actors, resources of each): one per GPU, else one per CPU slot."""
    import ray

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return (workers or gpus), {"num_gpus": 1}
    return (workers or max(1, int(resources.get("CPU", 1)))), {"num_cpus": 1}


@dataclass
class _Slot:
    actor: object
    group: collections.deque = field(default_factory=collections.deque)
    running: tuple | None = None  # (object ref, job)
    warm: bool = False  # a job of its group has finished: the group's inversion is in the cache


class RayRunner:
    def __init__(self, workers: int | None = None, max_retries: int = 2, on_dispatch=None):
        """``on_dispatch(runner, slot_index, job)`` runs after each job is handed to an actor (for tests)."""
        import ray

        self.count, self.resources = actor_plan(workers)
        self._actor_class = ray.remote(max_restarts=0, **self.resources)(_worker_class())
        self.max_retries = max_retries
        self.on_dispatch = on_dispatch
        self.slots = [_Slot(self._new_actor()) for _ in range(self.count)]
        self.restarts = 0

    def _new_actor(self):
        return self._actor_class.remote()

    def run(self, jobs, progress) -> tuple[list[dict], int, int]:
        import ray

        groups = collections.deque(collections.deque(group) for group in _groups(jobs))
        attempts = collections.Counter()
        outcomes = {}
        while groups or any(slot.group or slot.running for slot in self.slots):
            self._dispatch(groups, attempts)
            running = {slot.running[0]: index for index, slot in enumerate(self.slots) if slot.running}
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                entry = self._collect(running[ref], ref, groups, attempts, progress)
                if entry is not None:
                    progress.job_finished(entry)
                    outcomes[entry["id"]] = entry
        return [outcomes[job.id] for job in jobs], self.count, self.restarts

    def _dispatch(self, groups, attempts) -> None:
        for index, slot in enumerate(self.slots):
            if slot.running:
                continue
            if not slot.group:
                slot.group, slot.warm = (groups.popleft() if groups else self._steal()), False
            if slot.group:
                job = slot.group.popleft()
                attempts[job.id] += 1
                slot.running = (slot.actor.run_json.remote(job.id, json.dumps(job.params)), job)
                if self.on_dispatch is not None:
                    self.on_dispatch(self, index, job)

    def _steal(self) -> collections.deque:
        """The back half of the longest remaining group whose inversion is done (empty when there is none)."""
        donors = [slot for slot in self.slots if slot.warm and len(slot.group) >= 2]
        if not donors:
            return collections.deque()
        donor = max(donors, key=lambda slot: len(slot.group))
        keep = len(donor.group) // 2
        taken = collections.deque(list(donor.group)[keep:])
        donor.group = collections.deque(list(donor.group)[:keep])
        return taken

    def _collect(self, index, ref, groups, attempts, progress) -> dict | None:
        """The finished job's outcome; None when its actor was lost and the job goes back to the queue."""
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        slot = self.slots[index]
        job = slot.running[1]
        slot.running = None
        try:
            entry = dict(json.loads(ray.get(ref)), attempts=attempts[job.id])
            slot.warm = slot.warm or entry["status"] == "done"
            return entry
        except (RayActorError, WorkerCrashedError) as error:
            reason = f"its worker was lost ({type(error).__name__})"
        self.restarts += 1
        slot.actor = self._new_actor()  # a fresh actor in the lost one's place
        rest = collections.deque([job, *slot.group]) if attempts[job.id] <= self.max_retries \
            else collections.deque(slot.group)
        slot.group = collections.deque()
        if rest:
            groups.appendleft(rest)
        if attempts[job.id] <= self.max_retries:
            progress.job_retried(job.id, attempts[job.id] + 1, reason)
            return None
        return {"id": job.id, "status": "failed", "attempts": attempts[job.id], "seconds": 0.0, "unet_evals": 0,
                "cache": {"hit": 0, "miss": 0}, "images": [], "worker": None,
                "error": {"code": WorkerLost.code, "message": f"The job was tried {attempts[job.id]} times; "
                          f"{reason} on the last try: check the cluster's logs (ray logs) for its workers."}}

    def shutdown(self) -> None:
        import ray

        for slot in self.slots:
            ray.kill(slot.actor)


def _groups(jobs) -> list[list]:
    order: dict[str, list] = {}
    for job in jobs:
        order.setdefault(job.group, []).append(job)
    return list(order.values())


def _worker_class():
    from .worker import EditWorker

    return EditWorker
