# SPDX-License-Identifier: GPL-3.0-or-later
"""Property groups and the properties they hang on (saved with the .blend unless marked SKIP_SAVE): the photo rig
(``Collection.dhandles``, ``Scene.dhandles_rig``), the render settings (``Scene.dhandles_render``), the
Perspective settings (``Scene.dhandles_perspective``, ``Scene.dhandles_draw_vps``) and the window manager's status
properties. Each module lists its classes in ``CLASSES`` and defines ``register_extra()`` /
``unregister_extra()``; add a module by appending it to ``MODULES`` (groups before those that point to them)."""

from ..registration import register_modules, unregister_modules
from . import perspective_settings, photo_rig, render_settings, window_manager

MODULES = (window_manager, perspective_settings, photo_rig, render_settings)


def register():
    register_modules(MODULES)


def unregister():
    unregister_modules(MODULES)
