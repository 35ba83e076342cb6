# SPDX-License-Identifier: GPL-3.0-or-later
"""What Blender draws: the sidebar panels in the 3D viewport (tab "Diffusion Handles"), the preferences' body
(``preferences_panel``) and the running render in the status bar (``status_bar``). The viewport's vanishing-point
lines are drawn by ``perspective/vanishing_draw.py``, next to the maths they show. Each panel module lists its
classes in ``CLASSES``; add a module by appending it to ``MODULES`` (parents before their sub-panels)."""

from ..registration import register_modules, unregister_modules
from . import engine_panel, perspective_panel, photo_panel, render_panel, status_bar

MODULES = (photo_panel, render_panel, perspective_panel, engine_panel)


def register():
    register_modules(MODULES)
    status_bar.register()


def unregister():
    status_bar.unregister()
    unregister_modules(MODULES)
