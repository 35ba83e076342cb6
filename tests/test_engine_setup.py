"""Set Up Engine (engine_link/engine_setup.py): the real flow once (a fresh environment, the shipped requirements,
``engine info`` through it), and its refusals, failures and cancel with real subprocesses. The per-tick function is
called directly: background Blender fires no timers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import extension as extension_tool


def run_to_end(run, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while run.tick():
        assert time.monotonic() < deadline, f"set-up still at: {run.message}"
        time.sleep(0.5)


@pytest.fixture
def online(addon):
    import bpy

    system = bpy.context.preferences.system
    before = system.use_online_access
    system.use_online_access = True
    yield
    system.use_online_access = before


def test_shipped_requirements_are_generated_from_pyproject():
    shipped = (REPO_ROOT / "engine_requirements.txt").read_text()
    assert shipped == extension_tool.requirements_text()
    pins = [line for line in shipped.splitlines() if line and not line.startswith("#")]
    assert pins[0].startswith("torch==") and "diffusers==" in shipped and "pytest" not in shipped


def test_requirements_check_catches_a_pin_that_moved(tmp_path):
    pyproject = (REPO_ROOT / "pyproject.toml").read_text().replace('"diffusers==', '"diffusers==9.9.9; #')
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert extension_tool.requirements_text(tmp_path / "pyproject.toml") != extension_tool.requirements_text()


def test_plan_installs_torch_first_then_the_shipped_requirements(addon, tmp_path):
    from diffusion_handles.engine_link import engine_setup

    steps = engine_setup.plan(sys.executable, tmp_path / "venv")
    assert steps[0].command == (sys.executable, "-m", "venv", str(tmp_path / "venv"))
    assert steps[1].command[-1] == "torch==2.13.0"
    assert steps[2].command[-2:] == ("-r", str(REPO_ROOT / "engine_requirements.txt"))
    assert steps[3].command[-3:] == ("engine", "info", "--no-accelerator")


def test_set_up_refuses_with_online_access_off(addon):
    import bpy
    from diffusion_handles.engine_link import engine_setup

    bpy.context.preferences.system.use_online_access = False
    run = engine_setup.start(None)
    assert run.state == "failed" and not run.tick()
    assert "Preferences > System > Network > Allow Online Access" in run.message
    assert not run.log_path.exists() or "$ " not in run.log_path.read_text()  # nothing was started
    with pytest.raises(RuntimeError, match="Allow Online Access"):  # the button says the same
        bpy.ops.dhandles.setup_engine()
    assert "Allow Online Access" in bpy.context.window_manager.dhandles_setup_status
    assert engine_setup.current().state == "failed"


def test_without_network_pip_fails_with_a_clear_message(online, addon, tmp_path):
    from diffusion_handles.engine_link import engine_setup

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0",
               PIP_TIMEOUT="2")
    step = engine_setup.Step("Installing torch", (sys.executable, "-m", "pip", "download", "--no-deps", "-d",
                                                  str(tmp_path / "d"), "no-such-package-dhandles==1.0"))
    run = engine_setup.SetupRun([step], tmp_path / "setup.log", env=env)
    run_to_end(run, 120)
    assert run.state == "failed"
    assert "pip could not download the packages" in run.message and str(run.log_path) in run.message


def test_cancel_stops_the_running_step(addon, tmp_path):
    from diffusion_handles.engine_link import engine_setup

    step = engine_setup.Step("Waiting", (sys.executable, "-c", "import time; time.sleep(120)"))
    run = engine_setup.SetupRun([step], tmp_path / "setup.log")
    assert run.tick() and run._proc.poll() is None
    proc = run._proc
    run.cancel()
    assert run.state == "cancelled" and proc.poll() is not None and not run.tick()
    assert "Set Up Engine again" in run.message


@pytest.mark.slow
def test_set_up_engine_builds_a_working_environment(online, addon, tmp_path):
    """The button's real flow: a fresh venv, torch then the shipped requirements (pip's cache and the machine's
    wheel folder keep it to minutes), then ``engine info`` through it; Check Engine accepts it."""
    from diffusion_handles.engine_link import engine_setup
    from diffusion_handles.engine_link.check_engine import check_engine

    venv = tmp_path / "engine-venv"
    run = engine_setup.start(None, venv=venv)
    assert run.state == "running", run.message
    stages = set()
    deadline = time.monotonic() + 1800
    while run.tick():
        stages.add(run.message.split(" (")[0])
        assert time.monotonic() < deadline, run.message
        time.sleep(1.0)
    assert run.state == "done", run.message + "\n" + run.log_path.read_text()[-3000:]
    assert run.fraction == 1.0 and {"Installing torch", "Checking the engine"} <= stages
    python = str(venv / "bin" / "python")
    info = subprocess.run([python, "-m", "engine", "info", "--no-accelerator"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=True)
    assert '"torch"' in info.stdout and "2.13.0" in info.stdout
    outcome = check_engine(python)
    assert outcome.ok, outcome.message
    # pressing it again repairs in place: the same environment, nothing to install
    again = engine_setup.start(None, venv=venv)
    run_to_end(again, 900)
    assert again.state == "done", again.message


def test_engine_python_defaults_to_the_set_up_environment_then_a_clone(addon, monkeypatch):
    from diffusion_handles import preferences

    monkeypatch.delenv(preferences.ENGINE_PYTHON_ENV, raising=False)
    python = preferences.venv_python(preferences.setup_venv_dir())
    assert not python.exists()
    assert preferences.resolve_engine_python(None) == str(REPO_ROOT / ".venv" / "bin" / "python")
    python.parent.mkdir(parents=True)
    python.write_text("")
    try:
        assert preferences.resolve_engine_python(None) == str(python)
    finally:
        python.unlink()
