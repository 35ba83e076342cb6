# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.import_photo``: a photo, its depth and an object mask become a 3D scene in a collection of its own:
a camera matched to the photo (field of view, aspect, resolution; the photo as its background image), the
background as a depth-displaced mesh torn at depth discontinuities (the hole behind the object filled by the
engine's depth fill, textured with the background image or inpainting there), and the object as a mesh of its
own with its origin at its 3D centroid.

The per-pixel work (reading and validating the files, the depth fill, the meshes' arrays) runs in the engine's
``scene`` job; this side only builds datablocks. Every check happens before anything is created, so a bad input
leaves the scene as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy
import numpy as np
from bpy_extras.io_utils import ImportHelper
from mathutils import Matrix

from .. import preferences
from ..engine.errors import BadResult
from ..engine.params import EstimateDepthParams, SceneParams
from . import job_sequence, photo_files, scene_build
from .edit_transform import camera_pose
from .engine_task import CANCELLED, FINISHED, RUNNING, EngineTask
from .job_sequence import JobSequence

ESTIMATE = "estimate"
TIMER_S = 0.1
SIDE_FILE_HINTS = {  # kind: (what it is, what to do when the path given is wrong)
    "depth": ("depth map", "Choose an EXR, NPY or 16-bit PNG, or set Depth to 'estimate'."),
    "mask": ("mask", "Choose the mask image (the object white on black), or paint one and set Mask Image."),
    "bg": ("background image", "Choose the photo without the object, or leave Background empty."),
    "bg_depth": ("background depth map", "Choose its EXR, NPY or 16-bit PNG, or leave Background Depth empty."),
}


class DHANDLES_OT_import_photo(bpy.types.Operator, ImportHelper):
    """Import a photo as a 3D scene: matched camera, depth-displaced background and the masked object as a mesh
    you can move"""

    bl_idname = "dhandles.import_photo"
    bl_label = "Import Photo as 3D Scene"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: bpy.props.StringProperty(default="*.png;*.jpg;*.jpeg;*.tif;*.tiff;*.webp;*.bmp", options={"HIDDEN"})
    # the files and the field of view are never remembered from the last import (SKIP_SAVE): left unset, they come
    # from the files beside this photo and its EXIF
    depth_path: bpy.props.StringProperty(
        name="Depth", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Metric z-depth: EXR, NPY or 16-bit PNG in millimetres; 'estimate' estimates it with the "
        "engine's depth model. Empty: depth.exr (or <photo>_depth.*) beside the photo")
    estimate_depth: bpy.props.BoolProperty(
        name="Estimate Depth", default=False, options={"SKIP_SAVE"},
        description="Estimate the photo's depth with the engine's depth model (Depth Model, else the add-on "
        "preferences' choice) instead of reading a depth file")
    mask_path: bpy.props.StringProperty(
        name="Mask", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Object mask image, white on black. Empty: mask.png (or <photo>_mask.*) beside the photo")
    mask_image: bpy.props.StringProperty(
        name="Mask Image", options={"SKIP_SAVE"},
        description="Name of an image in this .blend to use as the mask (e.g. one painted in the Image Editor), "
        "instead of a mask file")
    extra_masks: bpy.props.StringProperty(
        name="Further Masks", options={"SKIP_SAVE"},
        description="Masks of further objects, separated by ';' (files, or names of images in this .blend): one "
        "mesh each, all cut out of the one background")
    bg_path: bpy.props.StringProperty(
        name="Background", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Optional: the photo with the object removed, shown where the object was")
    bg_depth_path: bpy.props.StringProperty(
        name="Background Depth", subtype="FILE_PATH", options={"SKIP_SAVE"},
        description="Optional: the depth of the background image")
    fov: bpy.props.FloatProperty(
        name="Field of View", default=55.0, min=1.0, max=170.0, options={"SKIP_SAVE"},
        description="Degrees across the photo's longer side. Unset: from the photo's EXIF (35 mm equivalent "
        "focal length, or focal length and focal plane resolution), else 55")
    max_grid: bpy.props.IntProperty(
        name="Mesh Resolution", default=1024, min=16, max=8192,
        description="Most vertices along the background mesh's longer side (the texture stays full resolution)")
    object_grid: bpy.props.IntProperty(
        name="Object Resolution", default=512, min=8, max=8192,
        description="Most vertices along the longer side of the object's bounding box")
    depth_model: bpy.props.StringProperty(
        name="Depth Model", description="With Depth 'estimate': the depth model (preset, hub id or folder). "
        "Empty: the add-on preferences' choice")
    use_scene_camera: bpy.props.BoolProperty(
        name="At the Scene Camera", default=False,
        description="Place the photo's camera (and so the whole photo) where the scene's active camera is, instead "
        "of at the world origin looking along +Y")
    tear: bpy.props.FloatProperty(
        name="Tear Threshold", default=0.1, min=0.01, max=1.0,
        description="Relative depth jump between neighbouring mesh cells at which the surface splits instead of "
        "stretching (both sides keep their faces, so no pixel loses its surface). The engine's previews and edits "
        "split the same way at 0.1")

    def invoke(self, context, event):
        return ImportHelper.invoke(self, context, event)

    def draw(self, context):
        layout = self.layout
        prefs = preferences.get(context)
        model = self.depth_model or (prefs.depth_model if prefs is not None else "") or "the default model"
        layout.prop(self, "estimate_depth", text=f"Estimate Depth ({model})")
        column = layout.column()
        column.active = not self.estimate_depth
        column.prop(self, "depth_path")
        layout.prop(self, "depth_model")
        layout.prop(self, "mask_path")
        layout.prop_search(self, "mask_image", bpy.data, "images")
        for name in ("extra_masks", "bg_path", "bg_depth_path", "fov", "use_scene_camera", "max_grid", "object_grid",
                     "tear"):
            layout.prop(self, name)

    def side_file(self, photo: Path, prop: str, kind: str) -> str:
        """The absolute path of the file given for ``prop`` (which must exist), else (only when the caller did not
        set it) the side file found; "" for none."""
        value = getattr(self, prop)
        if value or self.properties.is_property_set(prop):
            if not value or value == ESTIMATE:
                return value
            what, hint = SIDE_FILE_HINTS[kind]
            return str(photo_files.input_file(value, what, hint))
        found = photo_files.find_side_file(photo, kind)
        return str(found) if found else ""

    _run: JobSequence | None = None
    _timer = None

    def execute(self, context):
        """Scripts and background mode wait for the import; the UI runs it modal on a timer (Esc cancels), so
        Blender stays usable during depth estimation and the scene job."""
        self._run = JobSequence(self._execute(context), self.bl_label)
        if bpy.app.background or context.window is None:
            job_sequence.run_to_end(self._run, context)
            return self._finish(context)
        if self._run.start(context) != RUNNING:
            return self._finish(context)
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0.0, 1.0)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._run.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        job_sequence.tick(self._run, context)
        context.window_manager.progress_update(self._run.fraction)
        if context.workspace is not None:
            context.workspace.status_text_set(f"{self._run.status} (Esc cancels)")
        if self._run.state == RUNNING:
            return {"PASS_THROUGH"}
        self._stop_modal(context)
        return self._finish(context)

    def cancel(self, context):  # Blender ends the operator (file loaded, window closed)
        if self._run is not None:
            self._run.cancel()
        self._stop_modal(context)

    def _stop_modal(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            wm.progress_end()
            self._timer = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def _finish(self, context):
        run = self._run
        if run.state == FINISHED:
            self.report({"INFO"}, run.result)
            return {"FINISHED"}
        if run.state == CANCELLED:
            self.report({"WARNING"}, f"{self.bl_label} cancelled: the scene is as it was.")
        else:
            self.report({"ERROR"}, run.error or f"{self.bl_label} failed.")
        return {"CANCELLED"}

    def _execute(self, context):
        """The import as a job sequence: checks, then each engine job yielded, then the scene built."""
        photo = photo_files.input_file(self.filepath, "photo", "Choose an image file.")
        depth = ESTIMATE if self.estimate_depth else self.side_file(photo, "depth_path", "depth")
        mask = "" if self.mask_image else self.side_file(photo, "mask_path", "mask")
        bg = self.side_file(photo, "bg_path", "bg")
        bg_depth = self.side_file(photo, "bg_depth_path", "bg_depth")
        if not depth:
            raise ValueError(f"No depth map given and none found beside '{photo.name}'. Set Depth to an EXR, NPY or "
                             "16-bit PNG, or to 'estimate'.")
        if not mask and not self.mask_image:
            raise ValueError(f"No mask given and none found beside '{photo.name}'. Set Mask to a mask image, or "
                             "Mask Image to a mask painted in Blender.")

        folder = photo_files.new_scene_folder(context, photo)
        try:
            return (yield from self._import(context, photo, depth, mask, bg, bg_depth, folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a failed or cancelled import stays behind
            raise

    def _import(self, context, photo: Path, depth: str, mask: str, bg: str, bg_depth: str, folder: Path):
        engine_mask = mask
        if self.mask_image:
            image = bpy.data.images.get(self.mask_image)
            if image is None:
                raise ValueError(f"There is no image called '{self.mask_image}' in this file. Paint or load the mask "
                                 "image first.")
            engine_mask = str(photo_files.export_mask_image(image, folder))
        if depth == ESTIMATE:
            prefs = preferences.get(context)
            model = photo_files.model_reference(self.depth_model or (prefs.depth_model if prefs is not None else ""))
            params = EstimateDepthParams(photo=str(photo), output=str(folder / "estimated_depth.npy"),
                                         model=model or None)
            depth = (yield EngineTask(params.JOB, params, label="Depth estimation")).get("depth") or ""
            if not depth:
                raise BadResult("The depth estimation returned no depth map.")

        extras = [further_mask(context, text, folder) for text in self.extra_masks.split(";") if text.strip()]
        params = SceneParams(photo=str(photo), depth=depth, mask=engine_mask, bg=bg, bg_depth=bg_depth,
                             masks=[engine for _, _, engine in extras] or None,
                             fov=float(self.fov) if self.properties.is_property_set("fov") else None,
                             output_dir=str(folder), max_grid=self.max_grid, object_grid=self.object_grid,
                             tear=float(self.tear))
        result = yield EngineTask(params.JOB, params, label="Scene")
        rig = self.build(context, photo, result, folder)
        for entry, (path, image_name, _) in zip(rig.extra_objects, extras, strict=True):
            entry.mask_path, entry.mask_image = path, image_name
        # the meshes hold the arrays now and the texture is packed: the persistent cache keeps only what a saved
        # .blend still reads (an estimated depth map)
        remove_scene_files(result, [engine_mask if self.mask_image else ""] +
                           [engine for _, name, engine in extras if name])
        if not any(folder.iterdir()):
            folder.rmdir()
            rig.workdir = ""
        rig.depth_path, rig.mask_path, rig.mask_image = depth, mask, self.mask_image
        keep_painted_masks([self.mask_image, *(name for _, name, _ in extras)])
        load_thumbnails([mask, depth])
        rig.bg_path, rig.bg_depth_path = bg, bg_depth
        rig.prompt = photo_files.read_text(photo_files.find_side_file(photo, "prompt"))
        rig.fg_prompt = photo_files.read_text(photo_files.find_side_file(photo, "fg_prompt"))
        return (f"Imported {photo.name}: {result['width']}x{result['height']}, field of view "
                f"{result['fov_deg']:.1f} degrees ({result['fov_note']})")

    def build(self, context, photo: Path, result: dict, folder: Path):
        """Create the collection, camera and meshes from the scene job's result; remove them all on failure."""
        created = []
        try:
            return self._build(context, photo, result, folder, created)
        except Exception:
            for block in reversed(created):
                collection = getattr(bpy.data, block[0])
                if block[1] in collection:
                    collection.remove(collection[block[1]])
            raise

    @staticmethod
    def make_object(name: str, entry: dict, cam, camera, photo_image, collection, track):
        """One object's mesh from the scene job's arrays, its origin at its 3D centroid, its ramps cut as the
        engine cuts them."""
        arrays = {key: np.load(path) for key, path in entry["mesh"].items()}
        centroid_world = scene_build.engine_to_world(np.asarray([entry["centroid"]]), cam)[0]
        world = scene_build.engine_to_world(arrays["points"], cam)
        mesh = track("meshes", scene_build.build_mesh(name.replace("Object", "object"), world - centroid_world,
                                                      arrays["uv"], arrays["quads"]))
        if "ramp_limit" in arrays:
            scene_build.set_face_floats(mesh, scene_build.RAMP_LIMIT, arrays["ramp_limit"])
        material = track("materials", scene_build.photo_material(name.replace("Object", "object"), photo_image))
        target = scene_build.mesh_object(name, mesh, material, collection)
        scene_build.add_ramp_cut(target, camera)
        target.matrix_world = Matrix.Translation(centroid_world.tolist())
        return target

    @staticmethod
    def _photo_image(photo: Path, result: dict, track):
        """The photo's image: the file itself, or the engine's copy turned by its EXIF orientation (Blender's
        loader ignores it), packed like the background texture."""
        texture = result.get("photo_texture")
        if texture and Path(texture) != photo:
            image = track("images", bpy.data.images.load(texture, check_existing=False))
            image.name = f"{photo.name} (as displayed)"
            image.pack()
            return image
        existed = any(image.filepath and photo_files.absolute_path(image.filepath) == photo
                      for image in bpy.data.images)
        photo_image = bpy.data.images.load(str(photo), check_existing=True)
        if not existed:
            track("images", photo_image)
        return photo_image

    def _build(self, context, photo: Path, result: dict, folder: Path, created: list):
        def track(kind: str, block):
            created.append((kind, block.name))
            return block

        scene = context.scene
        name = photo.stem if photo.stem != "input" else photo.parent.name
        collection = track("collections", bpy.data.collections.new(f"DHandles {name}"))
        scene.collection.children.link(collection)

        photo_image = self._photo_image(photo, result, track)
        texture = track("images", bpy.data.images.load(result["background_texture"], check_existing=False))
        texture.name = f"{name} background"
        texture.pack()  # a generated file: keep it inside the .blend so the scene survives the cache

        camera_matrix = scene_build.default_camera_matrix()
        if self.use_scene_camera and scene.camera is not None:
            camera_matrix = Matrix(camera_pose(scene.camera).tolist())
        camera = scene_build.make_camera(f"{name} Camera", result["camera"], photo_image, result["depth_range"],
                                         collection, camera_matrix)
        track("objects", camera)
        track("cameras", camera.data)
        cam = camera_pose(camera)

        arrays = {part: {key: np.load(path) for key, path in result[part].items()} for part in ("background",)}
        bg_world = scene_build.engine_to_world(arrays["background"]["points"], cam)
        bg_mesh = track("meshes", scene_build.build_mesh(f"{name} background", bg_world, arrays["background"]["uv"],
                                                         arrays["background"]["quads"]))
        bg_material = track("materials", scene_build.photo_material(f"{name} background", texture))
        background = track("objects", scene_build.mesh_object(f"{name} Background", bg_mesh, bg_material,
                                                              collection))

        objects = result.get("objects") or [{"mesh": result["object"], "centroid": result["centroid"]}]
        targets = [track("objects", self.make_object(f"{name} Object" + (f" {number}" if number > 1 else ""),
                                                    entry, cam, camera, photo_image, collection, track))
                   for number, entry in enumerate(objects, start=1)]
        target = targets[0]
        context.view_layer.update()

        scene_build.match_render_settings(scene, result["width"], result["height"])
        scene.camera = camera

        rig = collection.dhandles
        rig.is_rig = True
        rig.photo_path = str(photo)
        rig.fov, rig.fov_source = result["fov_deg"], result["fov_source"]
        rig.width, rig.height = result["width"], result["height"]
        intr = result["camera"]
        rig.intrinsics = (intr["fx"], intr["fy"], intr["cx"], intr["cy"])
        rig.centroid = result["centroid"]
        rig.camera, rig.target, rig.background = camera, target, background
        rig.store_import_poses(Matrix(cam.tolist()), target.matrix_world)
        for obj, entry in zip(targets[1:], objects[1:], strict=True):
            item = rig.extra_objects.add()
            item.target, item.centroid = obj, entry["centroid"]
            item.import_object_matrix = [float(obj.matrix_world[r][c]) for r in range(4) for c in range(4)]
        rig.workdir = str(folder)
        scene.dhandles_rig = collection

        for obj in context.view_layer.objects:
            obj.select_set(False)
        target.select_set(True)
        context.view_layer.objects.active = target
        return rig


def further_mask(context, text: str, folder: Path) -> tuple[str, str, str]:
    """(mask file, mask image name, what the engine reads) for one entry of Further Masks: an image of this .blend
    by name, else a file."""
    text = text.strip()
    image = bpy.data.images.get(text)
    if image is not None and not Path(text).suffix:
        return "", text, str(photo_files.export_mask_image(image, folder))
    path = str(photo_files.input_file(text, "mask", SIDE_FILE_HINTS["mask"][1]))
    return path, "", path


def remove_scene_files(result: dict, others: list) -> None:
    objects = result.get("objects") or [{"mesh": result["object"]}]
    paths = [*result["background"].values(), result["background_texture"], *others]
    paths += [path for entry in objects for path in entry["mesh"].values()]
    for path in paths:
        if path:
            Path(path).unlink(missing_ok=True)


def keep_painted_masks(names) -> None:
    """A mask painted in Blender lives only in memory, and an image nothing uses is not saved: pack it into the
    .blend and give it a fake user, so that the file, saved and reopened, still previews and renders the photo."""
    for name in names:
        image = bpy.data.images.get(name) if name else None
        if image is None:
            continue
        image.use_fake_user = True
        if image.packed_file is None and (image.is_dirty or image.source == "GENERATED" or not image.filepath):
            image.pack()


def load_thumbnails(paths) -> None:
    """The mask and depth files as images of this .blend (not packed: they stay the user's files), so that the
    Photo panel shows them; a file Blender cannot read (an NPY) is left out."""
    for path in paths:
        if not path or Path(path).suffix.lower() == ".npy":
            continue
        try:
            image = bpy.data.images.load(path, check_existing=True)
        except RuntimeError:
            continue
        image.preview_ensure()


def menu_func_import(self, context):
    self.layout.operator(DHANDLES_OT_import_photo.bl_idname, text="Photo as 3D Scene (Diffusion Handles)")


CLASSES = (DHANDLES_OT_import_photo,)


def register_extra():
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)


def unregister_extra():
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)
