# SPDX-License-Identifier: GPL-3.0-or-later
"""Diffusion Handles for Blender: move an object in a photo in 3D and re-render the photo with diffusion.

This package runs in Blender's own Python, which has neither torch nor diffusers: everything heavy happens in the
engine process (``engine/``), which the operators drive through a standard-library client.
"""

from . import engine_link, operators, panels, preferences, properties

# By layer, bottom up: preferences, the property groups, the engine link, the operators, the panels.
_MODULES = (preferences, properties, engine_link, operators, panels)


def register():
    for module in _MODULES:
        module.register()


def unregister():
    for module in reversed(_MODULES):
        module.unregister()
