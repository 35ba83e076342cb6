# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators (``bpy.ops.dhandles.*``). Each module lists its classes in ``CLASSES`` and may define
``register_extra()`` / ``unregister_extra()`` for menus and properties. Add a module by appending it to
``MODULES``."""

import bpy

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
    photo_rig,
    preview_edit,
    render_animation,
    render_edit,
    render_settings,
    render_status,
    vanishing_draw,
    vanishing_points,
)

MODULES = (check_engine, engine_setup, model_download, vanishing_points, vanishing_draw, perspective_dataset,
           photo_rig, import_photo, add_object, mask_image, edit_transform, preview_edit, render_settings,
           render_status, engine_control, render_edit, render_animation)


def register():
    for module in MODULES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
        if hasattr(module, "register_extra"):
            module.register_extra()


def unregister():
    for module in reversed(MODULES):
        if hasattr(module, "unregister_extra"):
            module.unregister_extra()
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
