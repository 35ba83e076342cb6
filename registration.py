# SPDX-License-Identifier: GPL-3.0-or-later
"""Registering a layer's modules in order: each module lists its classes in ``CLASSES`` and may define
``register_extra()`` / ``unregister_extra()`` (menus, properties, draw handlers). Used by ``properties/``,
``operators/`` and ``panels/``; unregistering runs in reverse."""

import bpy


def register_modules(modules) -> None:
    for module in modules:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
        if hasattr(module, "register_extra"):
            module.register_extra()


def unregister_modules(modules) -> None:
    for module in reversed(modules):
        if hasattr(module, "unregister_extra"):
            module.unregister_extra()
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
