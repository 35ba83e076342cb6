# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a render's result goes: a new numbered file beside the .blend (never overwriting anything), a JSON sidecar
with everything needed to reproduce it, and one reused Blender image that can be shown in an Image Editor, on a
plane filling the camera's view, or as the camera's background."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bpy

from . import photo_files, scene_build

RESULT_IMAGE = "DH Edit"
PROGRESS_IMAGE = "DH Edit Progress"
PLANE_OBJECT = "DH Edit Plane"
RENDER_PROPERTY = "dhandles_render"  # custom property holding the render's settings as JSON


def output_folder(context) -> Path:
    """``<blend name>_renders/`` beside a saved .blend, else the add-on's cache folder (results are then also
    packed into the .blend, so saving it keeps them)."""
    if bpy.data.filepath:
        blend = Path(bpy.data.filepath)
        return blend.parent / f"{blend.stem}_renders"
    return photo_files.cache_root(context) / "renders"


def next_path(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """The first ``stem_NNNN.suffix`` in ``folder`` that does not exist yet, with no sidecar either."""
    folder.mkdir(parents=True, exist_ok=True)
    number = 1
    while (folder / f"{stem}_{number:04d}{suffix}").exists() or (folder / f"{stem}_{number:04d}.json").exists():
        number += 1
    return folder / f"{stem}_{number:04d}{suffix}"


def write_sidecar(image_path: Path, record: dict) -> Path:
    sidecar = image_path.with_suffix(".json")
    sidecar.write_text(json.dumps(record, indent=1, sort_keys=True))
    return sidecar


def keep_file(source: str | Path, target: Path) -> Path:
    """Copy the engine's output into the render folder (the engine's work folder is temporary)."""
    shutil.copyfile(source, target)
    return target


def settle_job_files(record: dict, image_path: Path, workdir) -> dict:
    """``record`` made independent of the job's work folder, which is then removed (the cache would fill up
    with them): a file the job read from there (a mask painted in Blender, exported for the engine) is kept beside
    the result, and the output points at a re-run name there, so the sidecar re-runs the render later too."""
    params = dict(record.get("params") or {})
    workdir = Path(workdir) if workdir else None
    if workdir is not None:
        for key in ("mask",):
            source = Path(params.get(key) or "")
            if source.is_file() and workdir in source.parents:
                params[key] = str(keep_file(source, image_path.with_name(f"{image_path.stem}_{key}{source.suffix}")))
        progress = bpy.data.images.get(PROGRESS_IMAGE)
        if progress is not None and progress.packed_file is None and workdir in Path(progress.filepath).parents:
            progress.pack()  # its thumbnail file goes with the folder
    if "output" in params:
        params["output"] = str(image_path.with_name(f"{image_path.stem}_rerun.png"))
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    return dict(record, params=params) if params else dict(record)


def load_reused_image(path: Path, name: str) -> bpy.types.Image:
    """Show ``path`` in the image called ``name``, creating it once and re-pointing it afterwards, so materials,
    planes and editors that use it update in place."""
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(str(path), check_existing=False)
        image.name = name
    else:
        if image.packed_file is not None:
            image.unpack(method="REMOVE")
        image.source = "FILE"
        image.filepath = str(path)
        image.reload()
    return image


def tag_image(image: bpy.types.Image, record: dict) -> None:
    """The render's settings on the image itself, so they travel with the .blend."""
    image[RENDER_PROPERTY] = json.dumps(record, sort_keys=True)
    for key in ("prompt", "seed", "model", "frame"):
        if key in record:
            image[f"dhandles_{key}"] = record[key]


def store_result(context, result_png: str | Path, record: dict, stem: str = "edit",
                 image_name: str = RESULT_IMAGE, workdir=None) -> bpy.types.Image:
    """Keep the result file and its sidecar, load it into the reused image and tag it with ``record``; the job's
    ``workdir`` is settled and removed (``settle_job_files``)."""
    path = keep_file(result_png, next_path(output_folder(context), stem))
    record = dict(settle_job_files(record, path, workdir), image=str(path))
    write_sidecar(path, record)
    image = load_reused_image(path, image_name)
    tag_image(image, record)
    if not bpy.data.filepath:
        image.pack()  # unsaved .blend: the temporary folder may go away, the pixels must not
    return image


def show_progress_thumbnail(context, png: str | Path) -> None:
    """The engine's current estimate, in an Image Editor that shows the result or the progress image."""
    image = load_reused_image(Path(png), PROGRESS_IMAGE)
    for space in image_editor_spaces(context):
        if space.image is None or space.image.name in (RESULT_IMAGE, PROGRESS_IMAGE):
            space.image = image


def image_editor_spaces(context) -> list:
    spaces = []
    for window in getattr(context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                spaces.append(area.spaces.active)
    return spaces


def show_in_image_editor(context, image) -> bool:
    """Show ``image`` in the Image Editors that show no other image (or a previous result). False if none is open."""
    shown = False
    for space in image_editor_spaces(context):
        if space.image is None or space.image.name in (RESULT_IMAGE, PROGRESS_IMAGE) or space.image == image:
            space.image = image
            shown = True
    return shown


def open_image_window(context, image) -> bool:
    """No Image Editor is open: show ``image`` in a new image window, the one F12 renders open. Needs Blender's
    UI (background Blender has no windows); False when that is not possible."""
    if bpy.app.background or context.window is None:
        return False
    before = set(context.window_manager.windows[:])
    try:
        bpy.ops.render.view_show("INVOKE_DEFAULT")
    except RuntimeError:
        return False
    shown = False
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type != "IMAGE_EDITOR":
                continue
            space = area.spaces.active
            # a new window, or the render view opened in place ("Render In: Image Editor"): never an editor
            # showing one of the user's images
            if window not in before or (space.image is not None and space.image.type == "RENDER_RESULT"):
                space.image = image
                shown = True
    return shown


def show_on_plane(context, image, camera=None, distance: float | None = None):
    """A plane parented to the camera that exactly fills its view, textured with ``image`` (emission, so it
    looks like the photo whatever the lighting). Reused across renders."""
    scene = context.scene
    camera = camera or scene.camera
    if camera is None:
        raise RuntimeError("The scene has no camera to put the result plane in front of.")
    if distance is None:
        distance = max(camera.data.clip_start * 2.0, 0.1)
    corners = [corner * distance / -corner.z for corner in camera.data.view_frame(scene=scene)]
    plane = bpy.data.objects.get(PLANE_OBJECT)
    if plane is None:
        mesh = bpy.data.meshes.new(PLANE_OBJECT)
        plane = bpy.data.objects.new(PLANE_OBJECT, mesh)
        scene.collection.objects.link(plane)
    mesh = plane.data
    mesh.clear_geometry()
    # view_frame order: top right, bottom right, bottom left, top left
    mesh.from_pydata([tuple(c) for c in corners], [], [(3, 2, 1, 0)])
    uv = mesh.uv_layers.new(name="UVMap")
    for loop, (u, v) in zip(mesh.loops, [(0, 1), (0, 0), (1, 0), (1, 1)], strict=True):
        uv.data[loop.index].uv = (u, v)
    mesh.update()
    plane.parent = camera
    plane.matrix_parent_inverse.identity()
    plane.matrix_basis.identity()
    material = _plane_material(image)
    mesh.materials.clear()
    mesh.materials.append(material)
    settings = getattr(scene, "dhandles_render", None)
    plane.hide_render = not (settings is not None and settings.render_plane)  # out of F12 unless asked
    return plane


def _plane_material(image):
    """The result plane's material (reused by name): the photo's unlit image material showing ``image``."""
    return scene_build.photo_material(PLANE_OBJECT, image, bpy.data.materials.get(PLANE_OBJECT))


def show_as_camera_background(context, image, camera=None):
    """The result as the camera's background image, in front of the scene so it is seen through the camera."""
    camera = camera or context.scene.camera
    if camera is None:
        raise RuntimeError("The scene has no camera to show the result behind.")
    data = camera.data
    entry = next((bg for bg in data.background_images if bg.image is not None and bg.image.name == image.name), None)
    if entry is None:
        entry = data.background_images.new()
    entry.image = image
    entry.alpha = 1.0
    entry.display_depth = "FRONT"
    entry.frame_method = "FIT"
    data.show_background_images = True
    return entry
