# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.check_engine``: run ``python -m engine info`` in the engine's Python and say what is wrong, if
anything. Runs synchronously: the check takes a second or two and the user asked for it explicitly."""

from __future__ import annotations

import json
import os
import subprocess

import bpy

from .. import preferences

TIMEOUT_S = 120


class EngineCheck:
    """The outcome of one check: ``ok`` and a message a user can act on."""

    def __init__(self, ok: bool, message: str, info: dict | None = None):
        self.ok, self.message, self.info = ok, message, info or {}


def check_engine(python: str) -> EngineCheck:
    if not python or not os.path.isfile(python):
        return EngineCheck(
            False,
            f"Engine Python not found at '{python}'. Run 'make setup' in the extension's source folder, or set "
            "Preferences > Add-ons > Diffusion Handles > Engine Python.",
        )
    try:
        completed = subprocess.run(
            [python, "-m", "engine", "info", "--no-accelerator"],
            cwd=str(preferences.ADDON_ROOT),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return EngineCheck(False, f"Could not run the engine Python '{python}': {error}")
    try:
        info = json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        return EngineCheck(False, f"'{python}' could not start the engine: {' | '.join(tail) or 'no output'}")
    missing = sorted(name for name, entry in info["packages"].items() if "error" in entry)
    if missing:
        return EngineCheck(
            False,
            f"The engine Python lacks {', '.join(missing)}. Run 'make setup' in the extension's source folder "
            "(or pip install -e '.[engine]' with that Python).",
            info,
        )
    versions = ", ".join(f"{name} {info['packages'][name]['version']}" for name in ("torch", "diffusers"))
    return EngineCheck(True, f"Engine {info['engine']} ready (Python {info['python']}, {versions})", info)


class DHANDLES_OT_check_engine(bpy.types.Operator):
    """Check that the engine's Python runs and has the packages the engine needs"""

    bl_idname = "dhandles.check_engine"
    bl_label = "Check Engine"
    bl_options = {"REGISTER"}

    def execute(self, context):
        result = check_engine(preferences.resolve_engine_python(preferences.get(context)))
        context.window_manager.dhandles_engine_status = result.message
        if not result.ok:
            self.report({"ERROR"}, result.message)
            return {"CANCELLED"}
        self.report({"INFO"}, result.message)
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_check_engine,)


def register_extra():
    bpy.types.WindowManager.dhandles_engine_status = bpy.props.StringProperty(
        name="Engine Status", default="", options={"SKIP_SAVE"}
    )


def unregister_extra():
    del bpy.types.WindowManager.dhandles_engine_status
