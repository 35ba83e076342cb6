# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.render_animation``: one edit per frame of the scene's range, into an image sequence.

The object's edit is read for every frame up front (keyframes, constraints, drivers: whatever animates it), so
the artist can keep working while the frames render. Frames run one job at a time through the warm engine; all
of them edit the same photo with the same prompt and settings, so the engine inverts the photo once and every
later frame reuses that inversion. Each frame keeps a JSON sidecar; the finished sequence is one reused Blender
image (``DH Edit Animation``). Cancelling keeps the frames already rendered. With a Ray cluster address (the
``Ray Cluster`` preference or ``$DHANDLES_RAY_ADDRESS``) the frames go to the cluster as one batch instead
(``render_animation_cluster``) and come back into the sequence in frame order.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy

from .. import preferences
from ..scene import render_output
from ..scene.edit_transform import rig_transform
from . import job_operator, render_status
from . import render_animation_cluster as cluster
from .engine_task import CANCELLED, FAILED, FINISHED, RUNNING, EngineTask
from .render_edit import (
    EDIT_JOB,
    EDIT_STAGES,
    RenderError,
    check_rig,
    prepare_job,
    read_report,
    result_frame,
)

ANIMATION_IMAGE = "DH Edit Animation"
LABEL = "Render Animation"
BACKGROUND_JOB = "preview"   # draws the background alone for an edit that moves the object out of view
OUT_OF_VIEW = "object_out_of_view"
FRAME_ERRORS = ("bad_geometry", "object_too_small")  # a frame's own problem: skip it, render the rest


class AnimationRun:
    """The frames to render, the one in flight, and those done."""

    def __init__(self, context, frames: list[int], matrices: dict, folder: Path):
        self.frames = frames
        self.matrices = matrices
        self.folder = folder
        self.index = 0
        self.task: EngineTask | None = None
        self.record: dict | None = None
        self.done_frames: list[int] = []
        self.background_frames: list[int] = []   # rendered as the photo's background: the object out of view
        self.skipped: dict[int, str] = {}         # frame -> why it could not be rendered
        self.reused_inversion: list[bool] = []
        self.state = RUNNING
        self.cancelled = False
        self.message = ""
        self.image = None
        self.error_message: str | None = None
        self.cluster: cluster.ClusterFrames | None = None  # the batch on a Ray cluster, when one renders it

    @property
    def fraction(self) -> float:
        if self.cluster is not None:
            return cluster.fraction(self)
        inner = self.task.fraction if self.task is not None and not self.task.done else 0.0
        return (len(self.done_frames) + inner) / max(1, len(self.frames))

    def cancel(self) -> None:
        self.cancelled = True
        if self.cluster is not None:
            self.cluster.cancel()
        if self.task is not None:
            self.task.cancel()


def frame_matrices(context, rig, frames: list[int]) -> dict:
    """The edit matrix at each frame, restoring the current frame afterwards."""
    scene = context.scene
    current = scene.frame_current
    matrices = {}
    try:
        for frame in frames:
            scene.frame_set(frame)
            matrices[frame] = rig_transform(rig)
    finally:
        scene.frame_set(current)
    return matrices


def start(context, frame_start: int | None = None, frame_end: int | None = None) -> AnimationRun:
    scene = context.scene
    rig = check_rig(context)
    first = scene.frame_start if frame_start is None else frame_start
    last = scene.frame_end if frame_end is None else frame_end
    if last < first:
        raise RenderError(f"The frame range {first}-{last} is empty: set the scene's start and end frames.")
    frames = list(range(first, last + 1, max(1, scene.frame_step)))
    folder = render_output.next_path(render_output.output_folder(context), "animation", suffix="")
    folder.mkdir(parents=True)
    run = AnimationRun(context, frames, frame_matrices(context, rig, frames), folder)
    render_status.add(run)
    try:
        if preferences.ray_address(context):
            cluster.start(run, context, rig)
            render_status.update(context, f"{LABEL}: {len(frames)} frames sent to the cluster", 0.0, running=True,
                                 error="")
        else:
            _submit_next(run, context, rig)
    except OSError as error:  # the engine's Python cannot be started
        render_status.remove(run)
        raise RenderError(f"The cluster batch could not start: {error}") from None
    except RenderError:
        render_status.remove(run)
        raise
    return run


def _submit_next(run: AnimationRun, context, rig=None) -> None:
    rig = rig or check_rig(context)
    frame = run.frames[run.index]
    params, record, workdir = prepare_job(context, rig, run.matrices[frame], frame)
    record["kind"] = "render_animation"
    record["sequence"] = str(run.folder)
    run.record = record
    label = f"{LABEL}: frame {frame} ({run.index + 1}/{len(run.frames)})"
    run.task = EngineTask(EDIT_JOB, params, workdir=str(workdir), label=label, stages=EDIT_STAGES)
    run.task.start(context)
    render_status.update(context, run.task.status, run.fraction, running=not run.task.done, error="")


def tick(run: AnimationRun, context) -> str:
    """Advance the animation by whatever the engine sent; submits the next frame when one ends. A frame whose
    object is out of view renders the photo's background instead; a frame that fails for its own reasons is
    skipped and named at the end; neither stops the sequence nor discards the frames already rendered."""
    if run.state != RUNNING:
        return run.state
    if run.cluster is not None:
        return _tick_cluster(run, context)
    task = run.task
    task.tick()
    if not task.done:
        render_status.update(context, task.status, run.fraction, running=True)
        return run.state
    frame = run.frames[run.index]
    if task.state == CANCELLED:
        return _end(run, context, CANCELLED)
    if task.state == FINISHED:
        try:
            _keep_frame(run, context)
        except (RenderError, OSError) as error:
            return _end(run, context, FAILED, f"Frame {frame} could not be kept: {error}")
    elif task.error_code == OUT_OF_VIEW and task.name == EDIT_JOB:
        try:
            _submit_background_frame(run, context, task.error_message or "")
        except RenderError as error:
            return _end(run, context, FAILED, str(error))
        return tick(run, context) if run.task.done else run.state
    elif task.error_code in FRAME_ERRORS:
        run.skipped[frame] = task.error_message or task.error_code
        shutil.rmtree(task.workdir or "", ignore_errors=True)
    else:
        return _end(run, context, FAILED, f"Frame {frame}: {task.error_message}")
    return _advance(run, context)


def _advance(run: AnimationRun, context) -> str:
    """On to the next frame, or the end."""
    run.index += 1
    if run.index < len(run.frames) and not run.cancelled:
        try:
            _submit_next(run, context)
        except RenderError as error:
            return _end(run, context, FAILED, str(error))
        return tick(run, context) if run.task.done else run.state
    return _end(run, context, CANCELLED if run.cancelled else FINISHED)


def _submit_background_frame(run: AnimationRun, context, why: str) -> None:
    """The frame whose object the edit moves out of view: the photo's background (the ``preview`` job, which
    draws the background alone for such an edit), kept with a sidecar that says so."""
    rig = check_rig(context)
    edit = run.task.params
    params = {key: edit[key] for key in ("photo", "depth", "mask", "masks", "camera", "bg_depth") if key in edit}
    if rig.bg_path:
        params["bg"] = bpy.path.abspath(rig.bg_path)
    params.update(transform=edit["transform"], output=str(Path(run.task.workdir) / "background.png"),
                  allow_out_of_view=True)
    frame = run.frames[run.index]
    run.record = dict(run.record, out_of_view=True, out_of_view_message=why,
                      note=f"Frame {frame}: {why} This frame shows the photo's background.")
    label = f"{LABEL}: frame {frame} ({run.index + 1}/{len(run.frames)}), background only"
    run.task = EngineTask(BACKGROUND_JOB, params, workdir=run.task.workdir, label=label)
    run.task.start(context)
    render_status.update(context, run.task.status, run.fraction, running=not run.task.done, error="")


def _keep_frame(run: AnimationRun, context) -> None:
    _keep(run, run.index, result_frame(run.task.result or {}), run.record, run.task.workdir)


def _keep(run: AnimationRun, index: int, result: dict, record: dict, workdir) -> None:
    """Copy frame ``index``'s image into the sequence's folder with its sidecar; its work folder goes."""
    frame = run.frames[index]
    path = render_output.keep_file(result["image"], run.folder / f"frame_{frame:04d}.png")
    run.reused_inversion.append(result.get("cache") == "hit")
    record = render_output.settle_job_files(dict(record, result=result, report=read_report(result)), path, workdir)
    render_output.write_sidecar(path, dict(record, image=str(path)))
    run.done_frames.append(frame)
    if run.record.get("out_of_view"):
        run.background_frames.append(frame)


def _tick_cluster(run: AnimationRun, context) -> str:
    """Keep the frames back from the cluster, in order; end when its batch has ended."""
    try:
        new = cluster.take_finished(run, _keep)
    except (RenderError, OSError) as error:
        run.cluster.cancel()
        return _end(run, context, FAILED, f"A frame from the cluster could not be kept: {error}")
    if new:
        run.image = load_sequence(context, run)  # the sequence grows as the frames come back
    ended = cluster.end_state(run)
    if ended is None:
        render_status.update(context, f"{LABEL}: {len(run.done_frames)}/{len(run.frames)} frames back from the "
                             "cluster", run.fraction, running=True)
        return run.state
    if cluster.take_finished(run, _keep):  # frames that landed as the batch ended
        run.image = load_sequence(context, run)
        ended = cluster.end_state(run)
    return _end(run, context, *ended)


def _end(run: AnimationRun, context, state: str, error: str | None = None) -> str:
    run.state = state
    render_status.remove(run)
    if run.task is not None and run.task.workdir:  # a kept frame settled its folder; a failed one leaves nothing
        shutil.rmtree(run.task.workdir, ignore_errors=True)
    for workdir in run.cluster.workdirs if run.cluster is not None else ():
        shutil.rmtree(workdir, ignore_errors=True)
    if run.done_frames:
        run.image = load_sequence(context, run)
    kept = f"{len(run.done_frames)} of {len(run.frames)} frames in {run.folder}" + _notes(run)
    if state == FINISHED:
        run.message = f"{LABEL}: done, {kept}"
        render_status.update(context, run.message, 1.0, running=False, error="")
    elif state == CANCELLED:
        run.message = f"{LABEL} cancelled; kept {kept}."
        render_status.update(context, run.message, run.fraction, running=False)
    else:
        run.error_message = error
        run.message = f"{error} Kept {kept}."
        render_status.update(context, f"{LABEL} failed", 0.0, running=False, error=run.message)
    return state


def _notes(run: AnimationRun) -> str:
    notes = ""
    if run.background_frames:
        notes += (f"; frames {', '.join(map(str, run.background_frames))} show the photo's background (the object "
                  "is out of view there)")
    for frame, why in run.skipped.items():
        notes += f"; frame {frame} skipped: {why}"
    return notes


def load_sequence(context, run: AnimationRun):
    """The rendered frames as one image sequence, reused across animation renders and shown as asked."""
    first = run.done_frames[0]
    path = run.folder / f"frame_{first:04d}.png"
    image = render_output.load_reused_image(path, ANIMATION_IMAGE)
    image.source = "SEQUENCE"
    render_output.tag_image(image, dict(run.record or {}, kind="render_animation", sequence=str(run.folder),
                                        frames=run.done_frames, frame=first))
    settings = context.scene.dhandles_render
    users = []
    if settings.show_in_image_editor:
        for space in render_output.image_editor_spaces(context):
            space.image = image
            users.append(space.image_user)
    if settings.show_on_plane:
        plane = render_output.show_on_plane(context, image)
        users += [node.image_user for node in plane.data.materials[0].node_tree.nodes if node.type == "TEX_IMAGE"]
    if settings.show_as_camera_background:
        users.append(render_output.show_as_camera_background(context, image).image_user)
    for user in users:
        user.frame_start = first
        user.frame_offset = first - 1
        user.frame_duration = run.done_frames[-1] - first + 1
        user.use_auto_refresh = True
    return image


def run_to_end(run: AnimationRun, context, interval: float = 0.05) -> str:
    return job_operator.run_to_end(tick, run, context, interval)
