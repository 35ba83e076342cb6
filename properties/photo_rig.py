# SPDX-License-Identifier: GPL-3.0-or-later
"""The record of one imported photo: which files it came from, which objects stand for it, and their poses at
import. It lives on the import's collection (``collection.dhandles``), so it is saved in the .blend and travels
with the collection; ``scene.dhandles_rig`` points at the photo the panel and the operators work on.

The import poses (camera and object ``matrix_world`` at import) are what the edit is measured against: see
``edit_transform``.
"""

from __future__ import annotations

import bpy


def _flat(matrix) -> list[float]:
    """A 4x4 (mathutils or nested lists) as 16 floats, row by row."""
    return [float(matrix[r][c]) for r in range(4) for c in range(4)]


class DHANDLES_PG_rig_object(bpy.types.PropertyGroup):
    """A further object of the photo (after the rig's ``target``): its mesh object, mask and import pose."""
    target: bpy.props.PointerProperty(name="Object", type=bpy.types.Object)
    mask_path: bpy.props.StringProperty(name="Mask", subtype="FILE_PATH")
    mask_image: bpy.props.StringProperty(name="Mask Image", description="Image in this file used as the mask")
    centroid: bpy.props.FloatVectorProperty(name="Object Centroid (engine frame)", size=3)
    import_object_matrix: bpy.props.FloatVectorProperty(name="Object at Import", size=16)


class DHANDLES_PG_rig(bpy.types.PropertyGroup):
    is_rig: bpy.props.BoolProperty(name="Imported Photo", default=False)
    photo_path: bpy.props.StringProperty(name="Photo", subtype="FILE_PATH")
    depth_path: bpy.props.StringProperty(name="Depth", subtype="FILE_PATH")
    mask_path: bpy.props.StringProperty(name="Mask", subtype="FILE_PATH")
    mask_image: bpy.props.StringProperty(name="Mask Image", description="Image painted in Blender used as mask")
    bg_path: bpy.props.StringProperty(name="Background", subtype="FILE_PATH")
    bg_depth_path: bpy.props.StringProperty(name="Background Depth", subtype="FILE_PATH")
    prompt: bpy.props.StringProperty(name="Prompt", description="A caption of the whole photo")
    fg_prompt: bpy.props.StringProperty(name="Object", description="A name for the object")
    fov: bpy.props.FloatProperty(name="Field of View", unit="NONE")
    fov_source: bpy.props.StringProperty(name="Field of View From")
    width: bpy.props.IntProperty(name="Width")
    height: bpy.props.IntProperty(name="Height")
    intrinsics: bpy.props.FloatVectorProperty(name="Intrinsics (fx, fy, cx, cy)", size=4)
    centroid: bpy.props.FloatVectorProperty(name="Object Centroid (engine frame)", size=3)
    import_camera_matrix: bpy.props.FloatVectorProperty(name="Camera at Import", size=16)
    import_object_matrix: bpy.props.FloatVectorProperty(name="Object at Import", size=16)
    camera: bpy.props.PointerProperty(name="Camera", type=bpy.types.Object)
    target: bpy.props.PointerProperty(name="Object", type=bpy.types.Object)
    background: bpy.props.PointerProperty(name="Background", type=bpy.types.Object)
    workdir: bpy.props.StringProperty(name="Scene Files", subtype="DIR_PATH")
    last_preview: bpy.props.StringProperty(name="Last Preview", subtype="FILE_PATH")
    extra_objects: bpy.props.CollectionProperty(type=DHANDLES_PG_rig_object, name="Further Objects")

    def camera_dict(self) -> dict:
        fx, fy, cx, cy = self.intrinsics
        return {"width": self.width, "height": self.height, "fx": fx, "fy": fy, "cx": cx, "cy": cy}

    def store_import_poses(self, camera_matrix, object_matrix) -> None:
        self.import_camera_matrix = _flat(camera_matrix)
        self.import_object_matrix = _flat(object_matrix)

    def problem(self) -> str | None:
        """Why this photo cannot be edited right now, or None."""
        for name in ("camera", "target"):
            obj = getattr(self, name)
            if obj is None or obj.name not in bpy.data.objects:
                return (f"The imported photo's {name if name == 'camera' else 'object'} was deleted. Import the "
                        "photo again.")
        for entry in self.extra_objects:
            if entry.target is None or entry.target.name not in bpy.data.objects:
                return "One of the imported photo's objects was deleted. Import the photo again."
        return None


def rig_of(collection) -> DHANDLES_PG_rig | None:
    if collection is None:
        return None
    rig = getattr(collection, "dhandles", None)
    return rig if rig is not None and rig.is_rig else None


def active_rig(context) -> DHANDLES_PG_rig | None:
    """The photo to work on: the scene's current one, else the one the active object belongs to."""
    scene = context.scene
    rig = rig_of(getattr(scene, "dhandles_rig", None))
    if rig is not None:
        return rig
    obj = context.active_object
    if obj is not None:
        for collection in obj.users_collection:
            rig = rig_of(collection)
            if rig is not None:
                return rig
    return None



NO_PHOTO = "No imported photo: import one with Diffusion Handles > Import Photo first."


def usable_rig(context, error: type[Exception] = ValueError) -> DHANDLES_PG_rig:
    """The photo the panel works on, when it can be edited; else raises ``error`` with what to do."""
    rig = active_rig(context)
    if rig is None:
        raise error(NO_PHOTO)
    problem = rig.problem()
    if problem:
        raise error(problem)
    return rig

CLASSES = (DHANDLES_PG_rig_object, DHANDLES_PG_rig)


def register_extra():
    bpy.types.Collection.dhandles = bpy.props.PointerProperty(type=DHANDLES_PG_rig)
    bpy.types.Scene.dhandles_rig = bpy.props.PointerProperty(
        name="Photo", description="The imported photo the Diffusion Handles panel works on",
        type=bpy.types.Collection, poll=lambda self, collection: collection.dhandles.is_rig)


def unregister_extra():
    del bpy.types.Scene.dhandles_rig
    del bpy.types.Collection.dhandles
