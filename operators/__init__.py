# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators (``bpy.ops.dhandles.*``): thin ``bpy.types.Operator`` classes whose ``execute``/``invoke``/``modal``
call into the layers below (``engine_link/``, ``scene/``, ``perspective/``). Each module lists its classes in
``CLASSES`` and may define ``register_extra()`` / ``unregister_extra()`` for menus. Add a module by appending it
to ``MODULES``."""

from ..registration import register_modules, unregister_modules
from . import (
    add_object,
    check_engine,
    edit_transform,
    engine_control,
    engine_setup,
    import_photo,
    mask_image,
    model_download,
    perspective_dataset,
    preview_edit,
    render_animation,
    render_edit,
    vanishing_points,
)

MODULES = (check_engine, engine_setup, model_download, vanishing_points, perspective_dataset, import_photo,
           add_object, mask_image, edit_transform, preview_edit, engine_control, render_edit, render_animation)


def register():
    register_modules(MODULES)


def unregister():
    unregister_modules(MODULES)
