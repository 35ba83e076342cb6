# SPDX-License-Identifier: GPL-3.0-or-later
"""The edit: how the artist moved the object, read from Blender as a 4x4 in the engine's camera frame.

Whatever moved the object (G/R/S, gizmos, constraints, drivers, keyframes, Python) shows in its evaluated
``matrix_world``. The edit is measured in the camera's frame, relative to the import pose:

    E = F (Cam_now^-1 Obj_now) (Cam_import^-1 Obj_import)^-1 F^-1,    F = diag(1, -1, -1, 1) (Blender camera -> engine)

so moving the whole rig (camera and object together) is no edit, and a camera moved after the import still gives
the edit as that camera sees it (the maths: ``engine.geometry.transforms.camera_relative_edit``). Camera scale is
ignored (a camera has no meaningful scale).

``dhandles.apply_official_edit`` sets the object from an edit in the official test-set format (transforms.json);
``dhandles.reset_edit`` puts it back to its import pose relative to the camera.
"""

from __future__ import annotations

import numpy as np
from mathutils import Matrix

from ..engine.geometry import transforms
from ..engine.geometry.transforms import camera_relative_edit

describe = transforms.describe_edit  # the name the panel, Render Edit and tools/ use


def as_numpy(matrix) -> np.ndarray:
    return np.array([[float(matrix[r][c]) for c in range(4)] for r in range(4)], dtype=np.float64)


def stored_matrix(values) -> np.ndarray:
    return np.asarray(list(values), dtype=np.float64).reshape(4, 4)


def camera_pose(camera_obj) -> np.ndarray:
    """The camera's world pose without scale."""
    location, rotation, _ = camera_obj.matrix_world.decompose()
    return as_numpy(Matrix.LocRotScale(location, rotation, None))


def edit_matrix(rig, entry=None) -> np.ndarray:
    """The current edit of the rig's object (or of ``entry``, one of ``rig.extra_objects``), a 4x4 acting on
    engine-frame points of the imported object."""
    source = rig if entry is None else entry
    return camera_relative_edit(camera_pose(rig.camera), as_numpy(source.target.matrix_world),
                                stored_matrix(rig.import_camera_matrix), stored_matrix(source.import_object_matrix))


def edit_matrices(rig) -> list:
    """Every object's edit: the rig's object first, then its further objects."""
    return [edit_matrix(rig), *(edit_matrix(rig, entry) for entry in rig.extra_objects)]


def rig_transform(rig) -> np.ndarray:
    """The edit as the engine's jobs take it: one 4x4, or K x 4 x 4 (one per object) for a photo with several."""
    return edit_matrix(rig) if not len(rig.extra_objects) else np.stack(edit_matrices(rig))


def object_matrix_for_edit(rig, edit: np.ndarray) -> np.ndarray:
    """The object's ``matrix_world`` that makes ``edit_matrix(rig)`` equal ``edit``, for the camera where it is now."""
    return transforms.object_matrix_for_edit(edit, camera_pose(rig.camera), stored_matrix(rig.import_camera_matrix),
                                             stored_matrix(rig.import_object_matrix))


def set_edit(rig, edit: np.ndarray) -> None:
    rig.target.matrix_world = Matrix(object_matrix_for_edit(rig, edit).tolist())


def read_official_edit(path: str, name: str) -> dict:
    """One edit of a transforms.json: {"translation", "rotation_axis", "rotation_angle"}; ValueError says why."""
    from ..engine.geometry.io import read_transforms

    edits = read_transforms(path)
    if name not in edits:
        raise ValueError(f"'{path}' has no edit called '{name}'; it has {', '.join(sorted(edits)) or 'none'}.")
    edit = edits[name]
    return {"translation": [float(v) for v in edit["translation"]],
            "rotation_axis": [float(v) for v in edit.get("rotation_axis", [0.0, 1.0, 0.0])],
            "rotation_angle": float(edit.get("rotation_angle", 0.0))}


def official_edit_matrix(rig, edit: dict) -> np.ndarray:
    from ..engine.geometry import official_edit_to_matrix

    return official_edit_to_matrix(edit["translation"], edit["rotation_axis"], edit["rotation_angle"],
                                   list(rig.centroid))


