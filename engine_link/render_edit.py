# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.render_edit``: send the current edit of the imported photo to the engine and bring the edited photo
back, without blocking Blender.

A 10 Hz timer calls ``tick(run, context)``, which polls the engine (never waits), updates the panel's and the
status bar's progress bar and stage, shows the engine's preview thumbnails in an Image Editor, and on the result
stores it (``render_output``). Invoked from the panel the operator is modal (Esc cancels); executed from a script
or the Python console it returns at once and ``bpy.app.timers`` drives the same ``tick``. *Cancel Render* or
*Release Engine* cancel either. Background Blender (scripts, tests) fires no timers, so there ``execute`` runs the
same ``tick`` in a loop until the job ends; tests call ``start``/``tick`` directly.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import bpy
import numpy as np

from .. import preferences
from ..engine.diffusion.settings import guided_steps_for
from ..engine.errors import BadParams
from ..engine.params import EditParams
from ..engine.perspective.finetune import missing_adapter_files
from ..perspective.vanishing_points import VanishingPointError, perspective_params_for_rig
from ..properties.photo_rig import active_rig, usable_rig
from ..scene import photo_files, render_output
from ..scene.edit_transform import describe, rig_transform
from . import job_operator, render_status
from .engine_task import CANCELLED, FAILED, FINISHED, EngineTask
from .job_operator import EngineJobOperator

EDIT_JOB = "edit"
# The edit job's stages and their rough share of the work (a guided step costs several UNet passes); the
# inversion stages are skipped when the photo's inversion is cached.
EDIT_STAGES = (("invert", 1.0), ("reconstruct", 1.0), ("edit", 3.0), ("frame", 0.2))


class RenderError(Exception):
    """The render cannot start; the message says what the user should do."""


class RenderRun:
    """One render in flight: the engine task, the record saved with its result, and where to show it."""

    def __init__(self, task: EngineTask, record: dict, stem: str = "edit"):
        self.task = task
        self.record = record
        self.stem = stem
        self.image = None
        self.shown_thumbnail: str | None = None
        self.message = ""
        self.ended = False  # the end (result stored, or failure shown) was handled

    @property
    def fraction(self) -> float:
        return self.task.fraction

    def cancel(self) -> None:
        self.task.cancel()


def settings_record(context, rig) -> dict:
    """Everything that decides the result, in the form saved next to it (and sent to the engine)."""
    settings = context.scene.dhandles_render
    prefs = preferences.get(context)
    model = settings.model or (prefs.diffusion_model if prefs is not None else "") or "sd2-depth"
    record = {
        "prompt": settings.prompt or rig.prompt,
        "seed": settings.seed,
        "steps": settings.steps,
        "guidance_scale": settings.guidance_scale,
        "identity_weight": settings.identity_weight,
        "background_weight": settings.background_weight,
        "inversion": settings.inversion,
        "resolution": settings.resolution - settings.resolution % 64,
        "model": model,
    }
    lora = adapters(settings)
    if lora is not None:
        record["lora"] = lora
    return record


def adapters(settings) -> dict | None:
    """The edit job's ``lora`` parameter (``{"path": absolute folder, "scale"}``) for the Perspective Adapters
    setting, or None when it is empty."""
    if not settings.perspective_adapters:
        return None
    folder = Path(bpy.path.abspath(settings.perspective_adapters)).resolve()
    if not folder.is_dir():
        raise RenderError(f"The Perspective Adapters folder '{settings.perspective_adapters}' does not exist. Pick "
                          "the folder 'python -m engine finetune-perspective --out' wrote, or clear the field.")
    missing = missing_adapter_files(folder)
    if missing:
        raise RenderError(f"The Perspective Adapters folder '{folder}' holds no adapters ({' and '.join(missing)} "
                          "missing). Pick the folder 'python -m engine finetune-perspective --out' wrote, or clear "
                          "the field.")
    return {"path": str(folder), "scale": float(settings.perspective_adapter_scale)}


def mask_file(rig, folder: Path) -> str:
    """The mask as a file the engine can read: the imported mask file, or the mask painted in Blender as .npy."""
    image = bpy.data.images.get(rig.mask_image) if rig.mask_image else None
    if image is None:
        return bpy.path.abspath(rig.mask_path)
    try:
        return str(photo_files.export_mask_image(image, folder))
    except ValueError as error:
        raise RenderError(str(error)) from None


def further_masks(rig, folder: Path) -> dict:
    """``{"masks": [...]}`` for a photo with several objects (those after the first), else nothing."""
    if not len(rig.extra_objects):
        return {}
    return {"masks": [mask_file(entry, folder) for entry in rig.extra_objects]}


def edit_settings(record: dict) -> dict:
    """``EditSettings`` overrides for the engine; guidance keeps the official 38-of-50 share of the steps."""
    steps = int(record["steps"])
    return {"num_steps": steps, "guided_steps": guided_steps_for(steps), "guidance_scale": record["guidance_scale"],
            "seed": record["seed"], "inversion": record["inversion"], "identity_weight": record["identity_weight"],
            "background_weight": record["background_weight"], "resolution": record["resolution"]}


def edit_params(context, rig, matrices: list, record: dict, workdir: Path) -> EditParams:
    """The ``edit`` job's parameters (``engine/jobs/edit.py``): the photo's files and camera, one 4x4
    engine-frame transform per output, the prompt, the settings, the perspective adapters (``lora``) when set,
    and the vanishing points of the photo's view (``perspective``: the report scores the result against them, and
    guidance uses them) unless the Perspective panel switches them off."""
    prefs = preferences.get(context)
    params = {
        "photo": bpy.path.abspath(rig.photo_path),
        "depth": bpy.path.abspath(rig.depth_path),
        "mask": mask_file(rig, workdir),
        **further_masks(rig, workdir),
        "camera": rig.camera_dict(),
        "prompt": record["prompt"],
        "model": record["model"],
        "settings": edit_settings(record),
    }
    try:
        perspective = perspective_params_for_rig(context, rig)
    except VanishingPointError as error:
        raise RenderError(str(error)) from None
    if perspective is not None:
        params["perspective"] = perspective
    if record.get("lora"):
        params["lora"] = record["lora"]
    if rig.bg_depth_path:
        params["bg_depth"] = bpy.path.abspath(rig.bg_depth_path)
    if prefs is not None and prefs.cache_dir:
        params["cache_dir"] = str(photo_files.absolute_path(prefs.cache_dir) / "inversions")
    if len(matrices) == 1:
        params.update(transform=np.asarray(matrices[0], dtype=float).tolist(), output=str(workdir / "edit.png"))
    else:
        params.update(transforms=[np.asarray(m, dtype=float).tolist() for m in matrices],
                      outputs=[str(workdir / f"frame_{n:04d}.png") for n in range(len(matrices))])
    try:
        return EditParams(**params)  # every check the engine makes, before anything is sent
    except BadParams as error:
        raise RenderError(str(error)) from None


def check_rig(context):
    rig = usable_rig(context, RenderError)
    for label, path in (("photo", rig.photo_path), ("depth map", rig.depth_path)):
        if not path or not Path(bpy.path.abspath(path)).is_file():
            raise RenderError(f"The {label} of the imported photo is missing ('{path}'). Put the file back or "
                              "import the photo again.")
    if not rig.mask_image and not Path(bpy.path.abspath(rig.mask_path)).is_file():
        raise RenderError(f"The mask of the imported photo is missing ('{rig.mask_path}'). Put the file back or "
                          "import the photo again.")
    return rig


def prepare_job(context, rig, matrix: np.ndarray, frame: int) -> tuple[EditParams, dict, Path]:
    """(params for the edit job, the record kept with its result, the job's work folder)."""
    record = settings_record(context, rig)
    if not record["prompt"]:
        raise RenderError("The prompt is empty: describe the photo in the Render panel's Prompt field.")
    workdir = photo_files.cache_root(context) / "render_jobs" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    params = edit_params(context, rig, [matrix], record, workdir)
    sent = params.to_json()
    record.update(kind="render_edit", photo=params.photo, transform=sent["transform"],
                  transform_frame="engine (OpenCV: +X right, +Y down, +Z forward)",
                  edit=describe(matrix if np.ndim(matrix) == 2 else matrix[0], list(rig.centroid)), frame=frame,
                  job=EDIT_JOB, params=sent,
                  created=datetime.datetime.now().isoformat(timespec="seconds"))
    return params, record, workdir


def start(context, stem: str = "edit", label: str = "Render Edit") -> RenderRun:
    """Check the scene, submit the edit job and return the run (its task may already have failed: an engine that
    cannot start is reported through the task like any other failure)."""
    rig = check_rig(context)
    context.view_layer.update()  # the evaluated pose, with constraints and drivers
    params, record, workdir = prepare_job(context, rig, rig_transform(rig), context.scene.frame_current)
    task = EngineTask(EDIT_JOB, params, workdir=str(workdir), label=label, stages=EDIT_STAGES)
    run = RenderRun(task, record, stem)
    task.start(context)
    render_status.add(run)
    render_status.update(context, task.status, 0.0, running=not task.done, error="")
    return run


def result_frame(result: dict) -> dict:
    """The first (for Render Edit, the only) frame of an ``edit`` result: ``{"image", "report", "cache"...}``."""
    frames = result.get("frames")
    if not isinstance(frames, list) or not frames or not isinstance(frames[0], dict) or not frames[0].get("image"):
        raise RenderError(f"The engine's result names no image (keys: {', '.join(sorted(result))}).")
    return frames[0]


def read_report(frame: dict):
    path = frame.get("report")
    try:
        return json.loads(Path(path).read_text()) if path else None
    except (OSError, ValueError):
        return None


def tick(run: RenderRun, context) -> str:
    """Advance ``run`` by whatever the engine sent; returns the task state. Shows progress, and on the end the
    result or the failure, in the panel and the status bar. Once the end is handled, further ticks change
    nothing (a timer or loop that ticks once more must not store the result again)."""
    task = run.task
    if run.ended:
        return task.state
    state = task.tick()
    if task.thumbnail and task.thumbnail != run.shown_thumbnail and Path(task.thumbnail).is_file():
        run.shown_thumbnail = task.thumbnail
        render_output.show_progress_thumbnail(context, task.thumbnail)
    if not task.done:
        render_status.update(context, task.status, task.fraction, running=True)
        return state
    render_status.remove(run)
    run.ended = True
    if state == FINISHED:
        try:
            finish(run, context)
        except (RenderError, OSError, RuntimeError) as error:
            task.state = state = FAILED
            task.error_code, task.error_message = "result_unusable", str(error)
            task.status = f"{task.label} failed: {error}"
    if state == FINISHED:
        run.message = f"{task.status}: image '{run.image.name}' ({Path(run.record['image']).name})"
        render_status.update(context, run.message, 1.0, running=False, error="")
    elif state == CANCELLED:
        run.message = f"{task.label} cancelled. Nothing was changed."
        render_status.update(context, run.message, 0.0, running=False)
    else:
        run.message = task.error_message or task.status
        render_status.update(context, f"{task.label} failed", 0.0, running=False, error=run.message)
    if state != FINISHED and task.workdir:  # nothing of a failed or cancelled job is kept (a result settles its own)
        shutil.rmtree(task.workdir, ignore_errors=True)
    return state


def finish(run: RenderRun, context) -> None:
    frame = result_frame(run.task.result or {})
    record = dict(run.record, result=frame, report=read_report(frame))
    image = render_output.store_result(context, frame["image"], record, stem=run.stem, workdir=run.task.workdir)
    run.record = json.loads(image[render_output.RENDER_PROPERTY])
    run.image = image
    settings = context.scene.dhandles_render
    if settings.show_in_image_editor and not render_output.show_in_image_editor(context, image):
        render_output.open_image_window(context, image)
    if settings.show_on_plane:
        render_output.show_on_plane(context, image)
    if settings.show_as_camera_background:
        render_output.show_as_camera_background(context, image)


def run_to_end(run: RenderRun, context, interval: float = 0.05, timeout: float | None = None) -> str:
    """Tick until the job ends (background mode, where no timer fires)."""
    return job_operator.run_to_end(tick, run, context, interval, timeout)


class RenderOperator(EngineJobOperator):
    """What Render Edit and Render Animation share on top of the engine job operator: a run in the render status
    list (panel, status bar, *Cancel Render*), EXEC in Blender's UI driven from ``bpy.app.timers``."""

    exec_in_ui = "timer"
    start_errors = (RenderError,)
    tick_run = staticmethod(tick)  # (run, context) -> state: RUNNING until the run ends
    start_render = staticmethod(start)  # (context) -> run, raises RenderError

    @classmethod
    def poll(cls, context):
        return active_rig(context) is not None

    def start_run(self, context):
        return self.start_render(context)

    def run_to_end(self, run, context) -> str:
        return run_to_end(run, context)

    def start_failed(self, context, error: Exception) -> None:
        render_status.update(context, f"{self.bl_label} failed", 0.0, running=False, error=str(error))
        self.report({"ERROR"}, str(error))

    def end_run(self, context, state: str) -> set:
        return self.report_end(state, self._run.message)


__all__ = ["RenderError", "RenderOperator", "RenderRun", "run_to_end", "start", "tick"]
