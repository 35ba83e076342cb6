# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.download_models``: get the weights the current settings need, as an engine job (``download_models``),
so Blender never blocks; byte progress in the preferences and the status bar, and cancel.

``DownloadWatch.tick()`` is the per-tick function (a plain function: tests call it directly, since background mode
fires no timers). The models' status list (present / missing, where from, size on disk) is kept as JSON in
``WindowManager.dhandles_models_status`` by this download and by *Check Engine*.
"""

from __future__ import annotations

import json

import bpy

from .. import preferences
from . import engine_session
from .engine_task import human_bytes

TICK_S = 0.25
# (kind, preference field or None: the kind's default preset); the models a render, preview or import may need
MODEL_FIELDS = (("diffusion", "diffusion_model"), ("inpainting", None), ("depth", "depth_model"),
                ("segmentation", "segmentation_model"))
LABELS = {"diffusion": "Diffusion", "inpainting": "Inpainting", "depth": "Depth", "segmentation": "Segmentation"}


def needed_models(prefs=None) -> list[dict]:
    """The models the current settings use, as the ``download_models`` job takes them."""
    defaults = {"diffusion": preferences.DEFAULT_DIFFUSION_MODEL, "inpainting": preferences.DEFAULT_INPAINTING_MODEL,
                "depth": preferences.DEFAULT_DEPTH_MODEL, "segmentation": preferences.DEFAULT_SEGMENTATION_MODEL}
    return [{"kind": kind, "model": (getattr(prefs, field) if prefs is not None and field else "") or defaults[kind]}
            for kind, field in MODEL_FIELDS]


def describe(entry: dict) -> str:
    """One line of the models list: ``Diffusion: sd2-depth: present (cache: ..., 5.2 GB)``."""
    head = f"{LABELS.get(entry['kind'], entry['kind'])}: {entry['model']}: {entry['status']}"
    if entry["status"] == "missing":
        return head
    where = f"{entry.get('from', '')}: {entry.get('where', '')}".strip(": ")
    return f"{head} ({where}, {human_bytes(entry.get('bytes', 0))})"


class DownloadWatch:
    """One download job followed to its end: ``message`` and ``fraction`` for the UI, ``models`` when done."""

    def __init__(self, job: str):
        self.job, self.state, self.message, self.fraction = job, "running", "Looking for the models", 0.0
        self.models: list[dict] = []

    def tick(self) -> bool:
        """Read the job's messages; True while it runs."""
        for message in engine_session.take(self.job):
            kind = message.get("type")
            if kind == "progress":
                self._progress(message)
            elif kind == "result":
                self.models = message["result"]["models"]
                got = [m for m in self.models if m["status"] == "downloaded"]
                self.state, self.fraction = "done", 1.0
                self.message = f"Models ready ({len(got)} downloaded)." if got else "All models were already present."
            elif kind == "error":
                self.state = "cancelled" if message.get("code") == "cancelled" else "failed"
                self.message = "Download cancelled." if self.state == "cancelled" else message.get("message", "")
        if self.state != "running":
            engine_session.forget(self.job)
        return self.state == "running"

    def _progress(self, message: dict) -> None:
        done, total = message.get("step") or 0, message.get("total")
        text = message.get("message") or message.get("stage", "")
        if total:
            self.fraction = min(1.0, done / total)
            self.message = f"Downloading {human_bytes(done)} of {human_bytes(total)}: {text}"
        else:
            self.message = text


_watch: DownloadWatch | None = None


def current() -> DownloadWatch | None:
    return _watch


def show(context, watch: DownloadWatch | None) -> None:
    wm = context.window_manager
    if watch is not None:
        wm.dhandles_download_status = watch.message
        wm.dhandles_download_progress = watch.fraction
        if watch.models:
            wm.dhandles_models_status = json.dumps(watch.models)
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            area.tag_redraw()


def _timer():
    if _watch is None:
        return None
    more = _watch.tick()
    show(bpy.context, _watch)
    return TICK_S if more else None


def launch(context) -> tuple[str, str]:
    """Submit the ``download_models`` job (or say why not) and follow it from a timer: (report level, message);
    the message is empty when it started."""
    global _watch
    if _watch is not None and _watch.state == "running":
        return "WARNING", "A download is already running."
    if not preferences.online_access():
        return "ERROR", ("Downloading the models needs online access, which is off in Blender. Turn on "
                         f"{preferences.ONLINE_ACCESS_WHERE}, then press Download again.")
    try:
        job = engine_session.submit(context, "download_models", {"models": needed_models(preferences.get(context))})
    except engine_session.EngineError as error:
        return "ERROR", str(error)
    _watch = DownloadWatch(job)
    show(context, _watch)
    bpy.app.timers.register(_timer, first_interval=TICK_S)
    return "INFO", ""


def stop() -> bool:
    """Cancel the running download; False when none runs."""
    if _watch is None or _watch.state != "running":
        return False
    engine_session.cancel(_watch.job)
    return True


def unregister() -> None:
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
