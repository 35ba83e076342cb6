# SPDX-License-Identifier: GPL-3.0-or-later
"""The window manager's status properties (never saved): what the panels and the preferences show of a running
render, the engine check, the engine set-up and the model download. The code that fills them is in
``engine_link/`` (render_status, check_engine, engine_setup, model_download)."""

import bpy

FACTOR = {"min": 0.0, "max": 1.0, "subtype": "FACTOR", "options": {"SKIP_SAVE"}}


def _text(name: str):
    return bpy.props.StringProperty(name=name, default="", options={"SKIP_SAVE"})


def _properties() -> dict:
    return {
        "dhandles_render_status": _text("Render Status"),
        "dhandles_render_progress": bpy.props.FloatProperty(name="Render Progress", default=0.0, **FACTOR),
        "dhandles_render_running": bpy.props.BoolProperty(name="Rendering", default=False, options={"SKIP_SAVE"}),
        "dhandles_render_error": _text("Last Render Error"),
        "dhandles_engine_status": _text("Engine Status"),
        "dhandles_setup_status": _text("Set-Up Status"),
        "dhandles_setup_progress": bpy.props.FloatProperty(name="Set-Up Progress", default=0.0, **FACTOR),
        "dhandles_models_status": _text("Models"),
        "dhandles_download_status": _text("Download"),
        "dhandles_download_progress": bpy.props.FloatProperty(name="Download Progress", default=0.0, **FACTOR),
    }


CLASSES = ()


def register_extra():
    for name, prop in _properties().items():
        setattr(bpy.types.WindowManager, name, prop)


def unregister_extra():
    for name in _properties():
        delattr(bpy.types.WindowManager, name)
