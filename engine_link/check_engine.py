# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.check_engine``: run ``python -m engine info`` in the engine's Python and say what is wrong, if
anything, then check that the weights the current settings need are present (the ``download_models`` job with
``check_only``: no network). Runs synchronously: the check takes a few seconds and the user asked for it."""

from __future__ import annotations

import json
import os
import subprocess

from .. import preferences

TIMEOUT_S = 120


class EngineCheck:
    """The outcome of one check: ``ok`` and a message a user can act on."""

    def __init__(self, ok: bool, message: str, info: dict | None = None, models: list | None = None):
        self.ok, self.message, self.info, self.models = ok, message, info or {}, models or []


SET_UP = ("Press Set Up Engine in Preferences > Add-ons > Diffusion Handles (or run 'make setup' in a clone of the "
          "source), or set Engine Python there")


def check_engine(python: str, models: list | None = None) -> EngineCheck:
    """The engine's state; with ``models`` (``model_download.needed_models``) also whether their weights are
    present."""
    if not python or not os.path.isfile(python):
        return EngineCheck(False, f"Engine Python not found at '{python}'. {SET_UP}.")
    try:
        completed = subprocess.run(
            [python, "-m", "engine", "info", "--no-accelerator"], check=False,
            cwd=str(preferences.ADDON_ROOT),
            env=preferences.engine_env(),
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
        return EngineCheck(False, f"The engine Python lacks {', '.join(missing)}. {SET_UP}.", info)
    versions = ", ".join(f"{name} {info['packages'][name]['version']}" for name in ("torch", "diffusers"))
    ready = f"Engine {info['engine']} ready (Python {info['python']}, {versions})"
    if not models:
        return EngineCheck(True, ready, info)
    statuses, problem = model_statuses(python, models)
    absent = [f"{m['kind']} model {m['model']}" for m in statuses if m["status"] == "missing"]
    if problem or absent:
        missing_text = problem or f"missing weights: {', '.join(absent)}"
        return EngineCheck(False, f"{ready}, but {missing_text}. Press Download Models in Preferences > Add-ons > "
                           "Diffusion Handles (Import Photo and Preview work without them).", info, statuses)
    return EngineCheck(True, f"{ready}; all model weights present", info, statuses)


def model_statuses(python: str, models: list) -> tuple[list, str]:
    """(the ``download_models`` check's entries, a problem sentence or "")."""
    try:
        completed = subprocess.run(
            [python, "-m", "engine", "job", "download_models", "--params", "-"], check=False,
            input=json.dumps({"models": models, "check_only": True}), cwd=str(preferences.ADDON_ROOT),
            env=preferences.engine_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        return [], f"the model check could not run ({error})"
    for line in reversed(completed.stdout.strip().splitlines()):
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("type") == "result":
            return message["result"]["models"], ""
        if message.get("type") == "error":
            return [], f"the model check failed: {message.get('message')}"
    return [], "the model check gave no answer"


def check_and_show(context) -> EngineCheck:
    """Check the engine and the models the settings need; keep the outcome in the window manager's status."""
    from .model_download import needed_models

    prefs = preferences.get(context)
    result = check_engine(preferences.resolve_engine_python(prefs), needed_models(prefs))
    context.window_manager.dhandles_engine_status = result.message
    if result.models:
        context.window_manager.dhandles_models_status = json.dumps(result.models)
    return result
