# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on preferences' layout: the engine (Set Up Engine, its progress and log, Check Engine), the models
(their status, Download with byte progress) and the other settings. Drawn by ``preferences.py``."""

from __future__ import annotations

import json

from .. import preferences


def draw_preferences(prefs, context, layout) -> None:
    _draw_engine(prefs, context, layout.box())
    _draw_models(prefs, context, layout.box())
    box = layout.box()
    box.prop(prefs, "cache_dir")
    box.prop(prefs, "stall_minutes")
    box.prop(prefs, "ray_address")


def _draw_engine(prefs, context, box) -> None:
    from ..engine_link import engine_setup

    wm = context.window_manager
    box.label(text="Engine", icon="SETTINGS")
    box.prop(prefs, "engine_python")
    box.label(text=f"Resolved: {preferences.resolve_engine_python(prefs)}")
    row = box.row()
    run = engine_setup.current()
    if run is not None and run.state == "running":
        row.operator("dhandles.cancel_setup", icon="CANCEL")
    else:
        row.operator("dhandles.setup_engine", icon="IMPORT")
    row.operator("dhandles.check_engine", icon="CHECKMARK")
    if wm.dhandles_setup_status:
        if run is not None and run.state == "running":
            box.prop(wm, "dhandles_setup_progress", text="Set-up", slider=True)
        _wrapped(box, wm.dhandles_setup_status)
        if run is not None:
            box.label(text=f"Log: {run.log_path}")
    if wm.dhandles_engine_status:
        _wrapped(box, wm.dhandles_engine_status)
    box.prop(prefs, "setup_python")
    if not preferences.online_access():
        box.label(text=f"Online access is off: downloads are off ({preferences.ONLINE_ACCESS_WHERE})", icon="ERROR")


def _draw_models(prefs, context, box) -> None:
    from ..engine_link import model_download

    wm = context.window_manager
    box.label(text="Models", icon="FILE_VOLUME")
    box.prop(prefs, "diffusion_model")
    box.prop(prefs, "depth_model")
    box.prop(prefs, "segmentation_model")
    statuses = json.loads(wm.dhandles_models_status) if wm.dhandles_models_status else []
    for entry in statuses:
        icon = "ERROR" if entry["status"] == "missing" else "CHECKMARK"
        box.label(text=model_download.describe(entry), icon=icon)
    if not statuses:
        box.label(text="Status unknown: press Check Engine")
    watch = model_download.current()
    row = box.row()
    if watch is not None and watch.state == "running":
        row.prop(wm, "dhandles_download_progress", text="Download", slider=True)
        row.operator("dhandles.cancel_download", icon="CANCEL")
    else:
        row.operator("dhandles.download_models", icon="IMPORT")
    if wm.dhandles_download_status:
        _wrapped(box, wm.dhandles_download_status)


def _wrapped(layout, text: str, width: int = 100) -> None:
    column = layout.column(align=True)
    line = ""
    for word in text.split():
        if line and len(line) + len(word) > width:
            column.label(text=line)
            line = ""
        line = f"{line} {word}".strip()
    if line:
        column.label(text=line)
