# SPDX-License-Identifier: GPL-3.0-or-later
"""*Render Animation* on a Ray cluster: with a cluster address (the ``Ray Cluster`` preference, or
``$DHANDLES_RAY_ADDRESS``), the frames' ``edit`` jobs go to ``python -m engine batch --ray`` as one manifest
instead of one by one to the local engine, and come back into the image sequence as they finish, in frame order.

Thin on purpose: the manifest, the command and which frames are back are ``engine/batch/frames.py``; the
scheduling, retries and warm models are the batch's (``docs/batch.md``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .. import preferences
from ..engine.batch import frames as batch_frames
from .engine_task import CANCELLED, FAILED, FINISHED
from .render_edit import prepare_job, read_report


class ClusterFrames:
    """The batch process rendering an animation's frames, and its outputs in frame order."""

    def __init__(self, process: subprocess.Popen, out_dir: Path, job_ids: list[str], outputs: list[str],
                 records: list[dict], workdirs: list[Path]):
        self.process = process
        self.out_dir = out_dir
        self.job_ids, self.outputs, self.records, self.workdirs = job_ids, outputs, records, workdirs
        self.cancelled = False

    @property
    def finished(self) -> bool:
        return self.process.poll() is not None

    def cancel(self) -> None:
        self.cancelled = True
        if not self.finished:
            self.process.terminate()


def start(run, context, rig) -> None:
    """Write the frames' manifest in the animation's folder and start the batch on the cluster."""
    jobs, outputs, records, workdirs = [], [], [], []
    for frame in run.frames:
        params, record, workdir = prepare_job(context, rig, run.matrices[frame], frame)
        workdir.mkdir(parents=True, exist_ok=True)
        record.update(kind="render_animation", sequence=str(run.folder), cluster=preferences.ray_address(context))
        jobs.append((f"frame_{frame:04d}", params.to_json()))  # EditParams, as the local engine gets them
        outputs.append(params.output)
        records.append(record)
        workdirs.append(workdir)
    out_dir = run.folder / "cluster"
    out_dir.mkdir()
    manifest = batch_frames.write_manifest(out_dir, jobs)
    command = batch_frames.batch_command(preferences.resolve_engine_python(preferences.get(context)), manifest,
                                         out_dir, preferences.ray_address(context))
    with open(out_dir / "batch.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=str(preferences.ADDON_ROOT), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    run.record = records[0]
    run.cluster = ClusterFrames(process, out_dir, [job for job, _ in jobs], outputs, records, workdirs)


def take_finished(run, keep_frame) -> int:
    """Keep (``keep_frame(run, index, result, record, workdir)``) the frames back since the last call, in order."""
    cluster = run.cluster
    start_index = len(run.done_frames)
    count = batch_frames.frames_back(cluster.outputs, start_index)
    for index in range(start_index, start_index + count):
        output = cluster.outputs[index]
        report = read_report({"report": str(Path(output).with_suffix(".json"))}) or {}
        result = {"image": output, "report": str(Path(output).with_suffix(".json")),
                  "cache": (report.get("cache") or {}).get("inversion")}
        keep_frame(run, index, result, cluster.records[index], cluster.workdirs[index])
    return count


def end_state(run) -> tuple[str, str | None] | None:
    """(state, error) once the batch process has ended and every frame that came back is kept; None before."""
    cluster = run.cluster
    if not cluster.finished:
        return None
    if cluster.cancelled:
        return CANCELLED, None
    if len(run.done_frames) == len(run.frames):
        return FINISHED, None
    failed = batch_frames.failures(cluster.out_dir)
    for job_id in cluster.job_ids[len(run.done_frames):]:
        if job_id in failed:
            return FAILED, f"Frame {job_id.split('_')[-1].lstrip('0') or '0'} failed on the cluster: {failed[job_id]}"
    return FAILED, (f"The cluster batch ended (exit status {cluster.process.returncode}) without every frame; see "
                    f"{cluster.out_dir / 'batch.log'}.")


def fraction(run) -> float:
    return len(run.done_frames) / max(1, len(run.frames))

