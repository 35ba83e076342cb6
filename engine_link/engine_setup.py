# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.setup_engine``: build the engine's Python environment from inside Blender, no terminal needed.

Makes a virtual environment in the extension's user folder (``preferences.setup_venv_dir``) from a Python 3.11
(Blender's own when it is 3.11, else the *Python 3.11 for Set Up* preference), pip-installs the pinned
``engine_requirements.txt`` shipped with the extension (torch first, on its own, as the Makefile does), then runs
``python -m engine info`` with it. Pressing it again repairs or upgrades the same environment in place.

Each step is a subprocess whose output goes to a log file; ``SetupRun.tick()`` (a plain function, called per timer
tick in Blender and directly by tests, since background mode fires no timers) starts the next step, reports the
stage and progress, and turns a failure into a sentence that says what to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from .. import preferences

REQUIREMENTS = preferences.ADDON_ROOT / "engine_requirements.txt"
TICK_S = 0.5
NETWORK_WORDS = ("Failed to establish a new connection", "Temporary failure in name resolution",
                 "No matching distribution found", "Could not find a version that satisfies", "Network is unreachable",
                 "ConnectTimeoutError", "ProxyError", "Max retries exceeded")


@dataclass(frozen=True)
class Step:
    stage: str  # what the panel shows while it runs
    command: tuple[str, ...]


def torch_pin(requirements: Path = REQUIREMENTS) -> str:
    """The ``torch==...`` line of the requirements (installed first, on its own)."""
    for line in requirements.read_text().splitlines():
        if line.strip().startswith("torch"):
            return line.strip()
    raise ValueError(f"{requirements} pins no torch")


def plan(base_python: str, venv: Path, requirements: Path = REQUIREMENTS) -> list[Step]:
    """The set-up's steps; creating the environment again over an existing one keeps what it holds."""
    python = str(preferences.venv_python(venv))
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off")
    return [
        Step("Creating the engine's Python environment", (base_python, "-m", "venv", str(venv))),
        Step("Installing torch (the largest package)", (*pip, torch_pin(requirements))),
        Step("Installing the engine's packages", (*pip, "-r", str(requirements))),
        Step("Checking the engine", (python, "-m", "engine", "info", "--no-accelerator")),
    ]


def base_python(prefs=None) -> tuple[str | None, str]:
    """(a Python 3.11 to build from, or None; why not)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable, ""
    chosen = bpy.path.abspath(prefs.setup_python) if prefs is not None and prefs.setup_python else ""
    if chosen and Path(chosen).is_file():
        return chosen, ""
    return None, (f"Blender's own Python is {sys.version_info[0]}.{sys.version_info[1]}, and the engine needs "
                  "Python 3.11. Install Python 3.11 and set Preferences > Add-ons > Diffusion Handles > Python 3.11 "
                  "for Set Up to its python executable, then press Set Up Engine again.")


class SetupRun:
    """The steps run one after another; ``tick()`` moves things on without blocking."""

    def __init__(self, steps: list[Step], log_path: Path, cwd: Path = preferences.ADDON_ROOT, env=None):
        self.steps, self.log_path, self.cwd = steps, Path(log_path), cwd
        self.env = env if env is not None else preferences.engine_env()
        self.index, self.state, self.message = -1, "running", "Starting"
        self.started = time.monotonic()
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def fraction(self) -> float:
        done = max(self.index, 0) if self.state == "running" else len(self.steps) * (self.state == "done")
        return done / len(self.steps)

    def tick(self) -> bool:
        """Move on; True while there is more to do."""
        if self.state != "running":
            return False
        if self._proc is not None:
            code = self._proc.poll()
            if code is None:
                self.message = f"{self.steps[self.index].stage} ({self.index + 1}/{len(self.steps)}){self._latest()}"
                return True
            self._close_log()
            if code != 0:
                return self._fail(code)
        self.index += 1
        if self.index == len(self.steps):
            self.state = "done"
            self.message = f"The engine is set up ({preferences.venv_python(Path(self.steps[0].command[-1]))})."
            return False
        self._start(self.steps[self.index])
        return True

    def cancel(self) -> None:
        if self.state != "running":
            return
        if self._proc is not None and self._proc.poll() is None:
            _terminate(self._proc)
        self._close_log()
        self.state, self.message = "cancelled", "Set-up cancelled. Press Set Up Engine again to carry on."

    def _start(self, step: Step) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - held open while the step runs
        self._log.write(f"\n$ {' '.join(step.command)}\n")
        self._log.flush()
        extra = {"start_new_session": True} if sys.platform != "win32" else {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        self.message = f"{step.stage} ({self.index + 1}/{len(self.steps)})"
        try:
            self._proc = subprocess.Popen(step.command, cwd=str(self.cwd), env=self.env, stdout=self._log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **extra)
        except OSError as error:
            self._close_log()
            self.state = "failed"
            self.message = f"{step.stage} could not start: {error.strerror or error}."

    def _latest(self) -> str:
        """The package pip is at, from the log's last lines."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
                lines = log.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if line.startswith(("Collecting ", "Installing collected", "Downloading ", "Building ")):
                return f": {line.strip()[:80]}"
        return ""

    def _fail(self, code: int) -> bool:
        self.state = "failed"
        stage = self.steps[self.index].stage
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-20000:]
        if any(words in tail for words in NETWORK_WORDS):
            self.message = (f"{stage} failed: pip could not download the packages (no network, or a proxy or "
                            f"firewall in the way). Connect, then press Set Up Engine again. Log: {self.log_path}")
        else:
            last = [line for line in tail.splitlines() if line.strip()][-1:] or [f"exit status {code}"]
            self.message = f"{stage} failed: {last[0][:200]}. Log: {self.log_path}"
        return False

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _terminate(proc: subprocess.Popen) -> None:
    try:
        if sys.platform == "win32":
            proc.terminate()
        else:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()


def start(prefs=None, venv: Path | None = None) -> SetupRun:
    """A set-up run for the preferences (not yet started: call ``tick``); ``failed`` at once with a sentence when
    it cannot run (online access off, no Python 3.11)."""
    venv = venv or preferences.setup_venv_dir()
    log_path = venv.parent / "engine-setup.log"
    python, why = base_python(prefs)
    run = SetupRun(plan(python or sys.executable, venv), log_path)
    if not preferences.online_access():
        run.state = "failed"
        run.message = ("Set Up Engine downloads the engine's packages (about 1 GB), and Blender's online access is "
                       f"off. Turn on {preferences.ONLINE_ACCESS_WHERE}, then press Set Up Engine again.")
    elif python is None:
        run.state, run.message = "failed", why
    return run


_run: SetupRun | None = None


def current() -> SetupRun | None:
    return _run


def _timer():
    if _run is None:
        return None
    more = _run.tick()
    _show(bpy.context)
    return TICK_S if more else None


def _show(context) -> None:
    wm = context.window_manager
    wm.dhandles_setup_status = _run.message if _run is not None else ""
    wm.dhandles_setup_progress = _run.fraction if _run is not None else 0.0
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            area.tag_redraw()


def launch(context) -> tuple[str, str]:
    """Start the set-up (or say why not) and drive it from a timer: (report level, message)."""
    global _run
    if _run is not None and _run.state == "running":
        return "WARNING", "The set-up is already running."
    _run = start(preferences.get(context))
    if _run.state == "failed":
        _show(context)
        return "ERROR", _run.message
    _run.tick()
    _show(context)
    bpy.app.timers.register(_timer, first_interval=TICK_S)
    return "INFO", f"Setting up the engine; log: {_run.log_path}"


def stop(context) -> bool:
    """Cancel the running set-up; False when none runs."""
    if _run is None or _run.state != "running":
        return False
    _run.cancel()
    _show(context)
    return True


def unregister() -> None:
    """Stop a set-up in flight when the extension is disabled."""
    if _run is not None:
        _run.cancel()
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
