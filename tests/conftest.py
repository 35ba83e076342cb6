"""Shared test set-up.

Environment first: bpy reads BLENDER_USER_RESOURCES when it is imported, the add-on's cache defaults to the user
cache (XDG_CACHE_HOME), and the engine must never reach the network, so all are set before any test module imports
either.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_USER_RESOURCES = tempfile.mkdtemp(prefix="dhandles-blender-user-")
os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="dhandles-user-cache-")  # the add-on's persistent cache
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="dhandles-hf-home-"))

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
PHOTOGEN = REPO_ROOT.parent / "shared" / "photogen"
ADDON_PACKAGE = "diffusion_handles"


def addon_import_dir() -> Path:
    """A folder holding a link named like the extension to the repository root, so that the add-on imports as
    the package ``diffusion_handles`` (a clone's folder name can be anything)."""
    folder = Path(tempfile.mkdtemp(prefix="dhandles-addon-"))
    (folder / ADDON_PACKAGE).symlink_to(REPO_ROOT, target_is_directory=True)
    return folder


def subprocess_env(**extra: str) -> dict:
    """Environment for child processes of tests: offline, a private Blender user folder, the repo importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def photogen() -> Path:
    if not PHOTOGEN.is_dir():
        pytest.skip(f"photogen samples not found at {PHOTOGEN} (expected ../shared/photogen beside the repo)")
    return PHOTOGEN


@pytest.fixture(scope="session")
def addon():
    """The add-on imported as ``diffusion_handles`` and registered once for the whole session, in this process's
    bpy. Tests that change the scene should start from ``bpy.ops.wm.read_factory_settings(use_empty=True)``."""
    folder = addon_import_dir()
    sys.path.insert(0, str(folder))
    import importlib

    module = importlib.import_module(ADDON_PACKAGE)
    module.register()
    yield module
    module.unregister()
    sys.path.remove(str(folder))


@pytest.fixture
def python_executable() -> str:
    return sys.executable


@pytest.fixture
def engine_python(monkeypatch, python_executable):
    """The add-on starts its engine with this Python (the test virtualenv). Use with
    ``pytestmark = pytest.mark.usefixtures("engine_python", "release_engine")``."""
    monkeypatch.setenv("DHANDLES_ENGINE_PYTHON", python_executable)


@pytest.fixture(scope="module")
def release_engine(addon):
    """The add-on's engine is shared by a module's tests and stopped after the last one."""
    yield
    from diffusion_handles.engine_link import engine_session

    engine_session.release()


@pytest.fixture
def bpy(addon, tmp_path, monkeypatch):
    """Blender's bpy with an empty factory scene, the add-on's cache (scene files, previews of unsaved files) in the
    test's own folder."""
    import bpy as module

    module.ops.wm.read_factory_settings(use_empty=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return module


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are all overhead: on a shared 2-core box OpenMP's thread hand-offs cost more than the maths.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models():
    """The tiny random-weight diffusion models, one set per test module (tests may switch their memory modes)."""
    from engine.models import load_diffusion

    return load_diffusion("tiny", device="cpu")
