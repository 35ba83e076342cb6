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
from pathlib import Path

import bpy

from ..engine.params import PreviewParams
from ..properties.photo_rig import usable_rig
from ..scene import photo_files
from ..scene.edit_transform import edit_matrices, edit_matrix
from .engine_task import FINISHED, EngineTask
from .job_operator import EngineJobOperator

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
    return usable_rig(context)


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


def tick_task(task: EngineTask, context) -> str:
    """A single engine task's tick, for the engine job operator."""
    return task.tick()


class PreviewOperator(EngineJobOperator):
    """Shared by both previews: ``make_params`` builds the job, ``show_result`` shows its result. Scripts (EXEC)
    wait for it (refused while a render runs); the UI (INVOKE) runs it modal so Blender stays usable (Esc cancels)
    while a large photo is reprojected."""

    exec_in_ui = "wait"
    wait_while_rendering = False
    show_blender_progress = False
    tick_run = staticmethod(tick_task)

    make_params = None  # staticmethod (context, output_path) -> PreviewParams
    show_result = None  # staticmethod (context, result) -> the sentence to report

    def start_run(self, context) -> EngineTask:
        params = self.make_params(context, self.output_path)
        task = EngineTask(PreviewParams.JOB, params, label=self.bl_label)
        task.start(context)
        return task

    def show_progress(self, context) -> None:
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            workspace.status_text_set(self._run.status)

    def end_run(self, context, state: str) -> set:
        task = self._run
        if state == FINISHED:
            try:
                self.report({"INFO"}, self.show_result(context, task.result or {}))
            except (ValueError, RuntimeError) as error:  # the image was written but Blender cannot show it
                self.report({"ERROR"}, f"The preview was written but could not be shown: {error}")
                return {"CANCELLED"}
            return {"FINISHED"}
        return self.report_end(state, task.error_message or f"{self.bl_label} was cancelled.")


def edit_preview_params(context, output_path: str) -> PreviewParams:
    """Preview Edit's job: the object's pose now, written to ``output_path`` (a PNG or a folder; empty: the default
    name beside the .blend)."""
    rig = checked_rig(context)
    default = photo_files.default_output_base(context, Path(rig.photo_path))
    output = output_png(output_path, default.name) if output_path else \
        photo_files.make_folder(default.parent) / f"{default.name}.png"
    photo_files.check_not_input(rig, output)
    context.view_layer.update()
    return PreviewParams(**engine_inputs(context, rig), transform=object_transforms(rig), output=str(output))


def animation_preview_params(context, output_path: str) -> PreviewParams:
    """Preview Animation's job: the object's pose at every frame of the scene's range, one PNG per frame."""
    scene = context.scene
    rig = checked_rig(context)
    default = photo_files.default_output_base(context, Path(rig.photo_path))
    pattern = frame_pattern(output_path, default.name) if output_path else \
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


def show_edit_preview(context, result: dict) -> str:
    """Show Preview Edit's image; returns the sentence to report."""
    frame = result["frames"][0]
    checked_rig(context).last_preview = frame["image"]
    show_image(context, frame["image"], PREVIEW_IMAGE)
    return f"Preview written to {frame['image']} ({describe_visibility(frame)})"


def show_animation_preview(context, result: dict) -> str:
    """Show Preview Animation's image sequence; returns the sentence to report."""
    frames = result["frames"]
    checked_rig(context).last_preview = frames[0]["image"]
    show_image(context, frames[0]["image"], ANIMATION_IMAGE, sequence=len(frames) > 1)
    hidden = sum(1 for frame in frames if frame["visible_fraction"] == 0.0)
    note = f"; the object is out of view in {hidden} frame(s)" if hidden else ""
    return f"Previewed {len(frames)} frames to {Path(frames[0]['image']).parent}{note}"
