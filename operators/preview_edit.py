# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.preview_edit`` and ``dhandles.preview_animation``: the photo after the edit, by reprojection only.

The engine's ``preview`` job moves the photo's object pixels through the engine's geometry (the same transform and
correspondences the diffusion edit uses) and fills the revealed background from the background image, or with
classical inpainting. No diffusion model, no network: this is the offline main job, a fast scene-layout preview.
The result goes into the Blender image "DHandles Preview" (reused run after run), is shown in any open Image
Editor, and is written as a PNG, never over the photo's own files. From the UI both run modal (Blender stays
usable, Esc cancels); from scripts they wait for the engine.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import bpy

from ..engine.errors import EngineError
from ..engine.params import PreviewParams
from . import engine_session, photo_files
from .blocking_job import POLL_S, RENDER_RUNNING
from .edit_transform import edit_matrices, edit_matrix
from .engine_task import CANCELLED, FINISHED, EngineTask
from .photo_rig import active_rig

TIMER_S = 0.1

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".exr", ".tga")
PREVIEW_IMAGE = "DHandles Preview"
ANIMATION_IMAGE = "DHandles Preview Animation"


def mask_for_engine(context, mask_path: str, mask_image: str) -> str:
    """A mask file the engine reads: the file given, or the painted image exported afresh."""
    if not mask_image:
        return str(photo_files.absolute_path(mask_path)) if mask_path else ""
    image = bpy.data.images.get(mask_image)
    if image is None:
        raise ValueError(f"The mask image '{mask_image}' this photo was imported with is gone. Import the photo "
                         "again.")
    return str(photo_files.export_mask_image(image, photo_files.cache_root(context) / "masks"))


def engine_inputs(context, rig) -> dict:
    """The photo's files and camera as the engine's jobs take them (``PreviewParams`` keyword arguments): absolute
    paths (a painted mask exported afresh); with several objects, ``masks`` for those after the first."""
    def absolute(path: str) -> str:
        return str(photo_files.absolute_path(path)) if path else ""

    params = {"photo": absolute(rig.photo_path), "depth": absolute(rig.depth_path),
              "mask": mask_for_engine(context, rig.mask_path, rig.mask_image),
              "bg": absolute(rig.bg_path), "bg_depth": absolute(rig.bg_depth_path), "camera": rig.camera_dict()}
    if len(rig.extra_objects):
        params["masks"] = [mask_for_engine(context, e.mask_path, e.mask_image) for e in rig.extra_objects]
    return params


def object_transforms(rig):
    """The edit as the preview job takes it: one 4x4, or one per object when the photo has several."""
    if not len(rig.extra_objects):
        return edit_matrix(rig).tolist()
    return [m.tolist() for m in edit_matrices(rig)]


def checked_rig(context):
    rig = active_rig(context)
    if rig is None:
        raise ValueError("No imported photo: import one with Diffusion Handles > Import Photo first.")
    problem = rig.problem()
    if problem:
        raise ValueError(problem)
    return rig


def show_image(context, path: str, name: str, sequence: bool = False) -> bpy.types.Image:
    """Load ``path`` into the image ``name`` (reusing it) and show it in the open Image Editors."""
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = name
    else:
        image.filepath = path
    image.source = "SEQUENCE" if sequence else "FILE"
    image.reload()
    window_manager = context.window_manager
    for window in getattr(window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
    return image


def output_png(value: str, default_name: str) -> Path:
    """The PNG an Output path names, absolute: a folder (one that exists, or a path ending in a separator) gets
    ``default_name``.png in it; another image type's suffix becomes .png, any other suffix stays and gets .png
    added ('out.jpg' -> 'out.png', 'out.v1' -> 'out.v1.png')."""
    path = photo_files.absolute_path(value)
    if value.endswith(("/", os.sep)) or path.is_dir():
        return path / f"{default_name}.png"
    if path.suffix.lower() == ".png":
        return path
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return path.with_suffix(".png")
    return path.with_name(path.name + ".png")


def frame_pattern(value: str, default_name: str) -> Path:
    """An Output pattern as ``output_png`` makes it, with a run of '#' in its file name (added before the
    extension when missing) for the frame number."""
    path = output_png(value, f"{default_name}_####")
    return path if "#" in path.name else path.with_name(f"{path.stem}_####{path.suffix}")


def frame_path(pattern: Path, frame: int) -> Path:
    """``pattern`` with the last run of '#' in its file name replaced by the zero-padded frame (Blender's
    convention)."""
    run = list(re.finditer(r"#+", pattern.name))[-1]
    return pattern.with_name(pattern.name[: run.start()] + str(frame).zfill(len(run.group())) +
                             pattern.name[run.end():])


def describe_visibility(frame: dict) -> str:
    """How much of the moved object the preview shows and how large it is on screen, in words. (The engine's
    ``visible_fraction``, visible pixels over the object's pixels in the photo, mixes the two: it is above 1 when
    the object comes closer.)"""
    text = f"{frame['visible_share']:.0%} of the object visible, at {frame['screen_scale']:.2f}x its size in the photo"
    objects = frame.get("objects") or []
    for number, entry in enumerate(objects[1:], start=2):
        shown = "out of view" if entry["out_of_view"] else f"{min(1.0, entry['visible_fraction']):.0%} shown"
        text += f"; object {number} {shown}"
    return text


class _PreviewOperator:
    """Shared by both previews: ``prepare`` builds the job; scripts (``execute``) wait for it, the UI (``invoke``)
    runs it modal on a timer so Blender stays usable (Esc cancels) while a large photo is reprojected."""

    _task: EngineTask | None = None
    _timer = None

    def prepare(self, context) -> PreviewParams:
        raise NotImplementedError

    def finished(self, context, result: dict) -> None:
        raise NotImplementedError

    def _start(self, context) -> bool:
        try:
            params = self.prepare(context)
        # OSError: a file in the cache folder cannot be written; EngineError: BadParams (a relative path...)
        except (ValueError, OSError, EngineError) as error:
            self.report({"ERROR"}, str(error))
            return False
        self._task = EngineTask(PreviewParams.JOB, params, label=self.bl_label)
        self._task.start(context)
        return True

    def _end(self, context):
        task = self._task
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            workspace.status_text_set(None)
        if task.state == FINISHED:
            try:
                self.finished(context, task.result or {})
            except (ValueError, RuntimeError) as error:  # the image was written but Blender cannot show it
                self.report({"ERROR"}, f"The preview was written but could not be shown: {error}")
                return {"CANCELLED"}
            return {"FINISHED"}
        message = task.error_message or f"{self.bl_label} was cancelled."
        self.report({"WARNING"} if task.state == CANCELLED else {"ERROR"}, message)
        return {"CANCELLED"}

    def execute(self, context):
        if engine_session.rendering():  # waiting here would freeze Blender for the whole render
            self.report({"ERROR"}, RENDER_RUNNING)
            return {"CANCELLED"}
        if not self._start(context):
            return {"CANCELLED"}
        while not self._task.done:
            time.sleep(POLL_S)
            self._task.tick()
        return self._end(context)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        if self._task.done:  # the engine could not start
            return self._end(context)
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._task.cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        self._task.tick()
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            workspace.status_text_set(self._task.status)
        if not self._task.done:
            return {"PASS_THROUGH"}
        self._remove_timer(context)
        return self._end(context)

    def cancel(self, context):  # Blender ends the operator (file loaded, window closed)
        if self._task is not None:
            self._task.cancel()
        self._remove_timer(context)

    def _remove_timer(self, context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None


class DHANDLES_OT_preview_edit(_PreviewOperator, bpy.types.Operator):
    """Preview the edit without diffusion: reproject the photo's object through its new pose, fill what it
    reveals, and show the result"""

    bl_idname = "dhandles.preview_edit"
    bl_label = "Preview Edit"
    bl_options = {"REGISTER"}

    output_path: bpy.props.StringProperty(
        name="Output", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="PNG to write (a folder: the default name in it). Empty: beside the .blend (or in the cache "
        "folder for an unsaved file)")

    def prepare(self, context) -> PreviewParams:
        rig = checked_rig(context)
        default = photo_files.default_output_base(context, Path(rig.photo_path))
        output = output_png(self.output_path, default.name) if self.output_path else \
            photo_files.make_folder(default.parent) / f"{default.name}.png"
        photo_files.check_not_input(rig, output)
        context.view_layer.update()
        return PreviewParams(**engine_inputs(context, rig), transform=object_transforms(rig), output=str(output))

    def finished(self, context, result: dict) -> None:
        frame = result["frames"][0]
        rig = checked_rig(context)
        rig.last_preview = frame["image"]
        show_image(context, frame["image"], PREVIEW_IMAGE)
        self.report({"INFO"}, f"Preview written to {frame['image']} ({describe_visibility(frame)})")


class DHANDLES_OT_preview_animation(_PreviewOperator, bpy.types.Operator):
    """Preview the edit at every frame of the scene's range (the object's animation, constraints, drivers), as an
    image sequence"""

    bl_idname = "dhandles.preview_animation"
    bl_label = "Preview Animation"
    bl_options = {"REGISTER"}

    output_path: bpy.props.StringProperty(
        name="Output", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="PNG path pattern; '#' marks the frame number (added before the extension when missing); a "
        "folder: the default name in it. Empty: beside the .blend (or in the cache folder for an unsaved file)")

    def prepare(self, context) -> PreviewParams:
        scene = context.scene
        rig = checked_rig(context)
        default = photo_files.default_output_base(context, Path(rig.photo_path))
        pattern = frame_pattern(self.output_path, default.name) if self.output_path else \
            photo_files.make_folder(default.parent) / f"{default.name}_####.png"
        frame_now = scene.frame_current
        transforms, outputs = [], []
        try:
            for frame in range(scene.frame_start, scene.frame_end + 1, max(1, scene.frame_step)):
                scene.frame_set(frame)
                transforms.append(object_transforms(rig))
                output = frame_path(pattern, frame)
                photo_files.check_not_input(rig, output)
                outputs.append(str(output))
        finally:
            scene.frame_set(frame_now)
        return PreviewParams(**engine_inputs(context, rig), transforms=transforms, outputs=outputs,
                             allow_out_of_view=True)

    def finished(self, context, result: dict) -> None:
        frames = result["frames"]
        rig = checked_rig(context)
        rig.last_preview = frames[0]["image"]
        show_image(context, frames[0]["image"], ANIMATION_IMAGE, sequence=len(frames) > 1)
        hidden = sum(1 for frame in frames if frame["visible_fraction"] == 0.0)
        note = f"; the object is out of view in {hidden} frame(s)" if hidden else ""
        self.report({"INFO"}, f"Previewed {len(frames)} frames to {Path(frames[0]['image']).parent}{note}")


CLASSES = (DHANDLES_OT_preview_edit, DHANDLES_OT_preview_animation)
