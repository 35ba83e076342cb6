# SPDX-License-Identifier: GPL-3.0-or-later
"""Sidebar panels in the 3D viewport, tab "Diffusion Handles". Each module lists its classes in ``CLASSES``;
add a module by appending it to ``MODULES`` (parents before their sub-panels)."""

import bpy

from . import engine_panel, perspective_panel, photo_panel, render_panel

MODULES = (photo_panel, render_panel, perspective_panel, engine_panel)


def register():
    for module in MODULES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)


def unregister():
    for module in reversed(MODULES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
