# SPDX-License-Identifier: GPL-3.0-or-later
"""The link to the engine process (standard library only, plus bpy for the window manager): the shared engine
session, one engine task, job sequences, blocking jobs, the one modal "engine job operator" base
(``job_operator.py``), the render/preview/import runs, the engine set-up, check and model download. No operator
or panel class lives here: ``operators/`` holds the thin ``bpy.types.Operator`` classes that call into it."""

from . import engine_session, engine_setup, model_download, render_status


def register():
    render_status.register()


def unregister():
    """Disabling the extension ends renders, set-ups and downloads in flight and releases the engine (it must not
    keep holding GPU memory)."""
    render_status.unregister()
    engine_setup.unregister()
    model_download.unregister()
    engine_session.release()
