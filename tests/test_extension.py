"""The extension as Blender sees it: the manifest, the built zip, registration, and the import boundaries."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

import pytest
from conftest import ADDON_PACKAGE, REPO_ROOT, addon_import_dir, subprocess_env

sys.path.insert(0, str(REPO_ROOT / "tools"))
import extension as extension_tool  # noqa: E402


def run_python(code: str, timeout: float = 300, **env) -> dict:
    """Run code in a fresh interpreter (bpy can be imported only once per process) and return the JSON object it
    prints last."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(**env),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    return extension_tool.build(tmp_path_factory.mktemp("dist"))


def test_manifest_passes_blenders_validator():
    extension_tool.run_blender_ext("validate", str(REPO_ROOT))


def test_validator_rejects_a_broken_manifest(tmp_path):
    # Guards the test above: the validator really reads the manifest.
    broken = tmp_path / ADDON_PACKAGE
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "blender_manifest.toml").write_text('schema_version = "1.0.0"\nid = "x"\n')
    with pytest.raises(SystemExit):
        extension_tool.run_blender_ext("validate", str(broken))


def test_zip_holds_the_addon_and_nothing_it_must_not(built_zip):
    with zipfile.ZipFile(built_zip) as archive:
        names = set(archive.namelist())
    assert {"blender_manifest.toml", "__init__.py", "preferences.py", "engine/__init__.py",
            "engine_requirements.txt"} <= names  # what Set Up Engine installs
    assert not extension_tool.zip_problems(built_zip)
    assert not any(name.startswith(("tests/", "bench/", ".venv/", "tools/")) for name in names)


def test_register_and_unregister_by_import():
    result = run_python(
        f"""
        import json, sys
        import bpy
        sys.path.insert(0, {str(addon_import_dir())!r})
        import {ADDON_PACKAGE} as addon
        addon.register()
        registered = hasattr(bpy.types, "DHANDLES_PT_engine") and "check_engine" in dir(bpy.ops.dhandles)
        addon.unregister()
        gone = not hasattr(bpy.types, "DHANDLES_PT_engine")
        addon.register(); addon.unregister()   # a second cycle: nothing left behind from the first
        heavy = sorted(m for m in ("torch", "diffusers", "transformers", "scipy") if m in sys.modules)
        print(json.dumps({{"registered": registered, "gone": gone, "heavy": heavy}}))
        """
    )
    assert result == {"registered": True, "gone": True, "heavy": []}


def test_install_built_zip_and_enable(built_zip):
    result = run_python(
        f"""
        import json, sys
        import bpy
        module = "bl_ext.user_default.{ADDON_PACKAGE}"
        bpy.ops.extensions.package_install_files(
            filepath={str(built_zip)!r}, repo="user_default", enable_on_install=True)
        enabled = module in bpy.context.preferences.addons
        operator = "check_engine" in dir(bpy.ops.dhandles)
        prefs = bpy.context.preferences.addons[module].preferences
        default_model = prefs.diffusion_model
        import importlib
        venv = str(importlib.import_module(module + ".preferences").setup_venv_dir(module))
        user_folder = bpy.utils.extension_path_user(module)
        bpy.ops.preferences.addon_disable(module=module)
        disabled = module not in bpy.context.preferences.addons and not hasattr(bpy.types, "DHANDLES_PT_engine")
        heavy = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
        print(json.dumps({{"enabled": enabled, "operator": operator, "model": default_model,
                           "disabled": disabled, "heavy": heavy,
                           "venv_in_user_folder": venv.startswith(user_folder) and venv.endswith("engine-venv")}}))
        """
    )
    assert result == {
        "enabled": True,
        "operator": True,
        "model": "sd2-depth",
        "disabled": True,
        "heavy": [],
        "venv_in_user_folder": True,  # Set Up Engine's environment: in the extension's user folder
    }


def test_engine_never_imports_bpy():
    result = run_python(
        """
        import importlib, json, pkgutil, sys
        import engine
        light = sorted(m for m in ("bpy", "torch", "diffusers", "scipy") if m in sys.modules)
        failed = {}
        for info in pkgutil.walk_packages(engine.__path__, "engine."):
            try:
                importlib.import_module(info.name)
            except Exception as error:
                failed[info.name] = repr(error)
        print(json.dumps({"light": light, "bpy": "bpy" in sys.modules, "failed": failed}))
        """
    )
    assert result == {"light": [], "bpy": False, "failed": {}}


def test_client_side_of_the_engine_is_standard_library_only():
    # Blender's Python imports these; it has numpy but none of the engine's heavy packages.
    result = run_python(
        """
        import importlib, json, sys
        for name in ("engine.process.client", "engine.process.protocol"):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as error:
                if error.name != name:
                    raise
        heavy = sorted(m for m in ("bpy", "torch", "diffusers", "transformers", "scipy", "numpy") if m in sys.modules)
        print(json.dumps(heavy))
        """
    )
    assert result == []


def test_engine_info_command_runs_in_the_engine_python():
    result = run_python("import runpy, sys; sys.argv=['engine', 'info']; "
                        "runpy.run_module('engine', run_name='__main__')")
    assert result["packages"]["torch"]["version"].startswith("2.13.0")
    assert all("version" in entry for entry in result["packages"].values()), result["packages"]


def test_check_engine_reports_a_missing_python(addon, tmp_path):
    from diffusion_handles.engine_link.check_engine import check_engine

    outcome = check_engine(str(tmp_path / "no-such-python"))
    assert not outcome.ok and "make setup" in outcome.message
    outcome = check_engine(sys.executable)
    assert outcome.ok, outcome.message


def test_one_version_number():
    """engine.__version__ is the version; the manifest Blender reads and the engine's package metadata repeat it."""
    import tomllib
    from importlib.metadata import version

    from engine import __version__

    manifest = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())
    assert manifest["version"] == __version__
    assert version("diffusion-handles-engine") == __version__
    assert f"## {__version__}" in (REPO_ROOT / "CHANGELOG.md").read_text()
