"""Validate and build the Blender extension zip with Blender's own extension tool.

The bpy wheel ships Blender's ``blender_ext.py`` (the code behind ``blender --command extension``), so the
manifest is checked by the same validator Blender uses. After building, the zip is checked for files that must
never ship (tests, benchmarks, caches, virtual environments).

    python tools/extension.py validate
    python tools/extension.py build [--output-dir dist]
    python tools/extension.py requirements   # rewrite engine_requirements.txt from pyproject.toml

``engine_requirements.txt`` ships in the zip: *Set Up Engine* (engine_link/engine_setup.py) pip-installs it into the
engine's environment. It is generated from ``pyproject.toml`` (the one place that pins), and ``build`` refuses to
run while the two disagree.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "engine_requirements.txt"
REQUIREMENTS_EXTRAS = ("engine",)  # the engine's own packages; the "test" extra is for developers
FORBIDDEN_PARTS = {"tests", "bench", ".venv", "__pycache__", ".pytest_cache", ".git", "tools", ".ci", "docs"}


def blender_ext_script() -> Path:
    """Locate ``blender_ext.py`` inside the installed bpy package without importing bpy (slow)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("bpy is not installed in this Python: run 'make setup' first.")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"blender_ext.py not found under {Path(spec.origin).parent}")
    return found[-1]


def run_blender_ext(*args: str) -> None:
    command = [sys.executable, str(blender_ext_script()), *args]
    completed = subprocess.run(command, capture_output=True, text=True)
    output = (completed.stdout + completed.stderr).strip()
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed:\n{output}")


def zip_problems(path: Path) -> list[str]:
    """Entries of the built zip that must not ship."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return [name for name in names if FORBIDDEN_PARTS & set(Path(name).parts) or name.endswith(".pyc")]


def requirements_text(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """``engine_requirements.txt`` as generated from ``pyproject``: the base and engine pins, torch first."""
    project = tomllib.loads(pyproject.read_text())["project"]
    pins = list(project["dependencies"])
    for extra in REQUIREMENTS_EXTRAS:
        pins += project["optional-dependencies"][extra]
    pins.sort(key=lambda pin: (not pin.startswith("torch"), pin.lower()))
    header = ("# Generated from pyproject.toml by `python tools/extension.py requirements`: do not edit.\n"
              "# The engine's packages, installed by Set Up Engine (torch first, on its own).\n")
    return header + "".join(f"{pin}\n" for pin in pins)


def check_requirements() -> None:
    if not REQUIREMENTS.is_file() or REQUIREMENTS.read_text() != requirements_text():
        raise SystemExit(f"{REQUIREMENTS.name} is out of date with pyproject.toml: run "
                         "'python tools/extension.py requirements' and commit it.")


def build(output_dir: Path) -> Path:
    check_requirements()
    run_blender_ext("validate", str(ROOT))
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    target = output_dir / f"{manifest['id']}-{manifest['version']}.zip"
    run_blender_ext("build", "--source-dir", str(ROOT), "--output-filepath", str(target))
    problems = zip_problems(target)
    if problems:
        raise SystemExit(f"{target} holds files that must not ship: {problems[:10]}")
    with zipfile.ZipFile(target) as archive:
        count = len(archive.namelist())
    print(f"validated blender_manifest.toml with Blender's own validator ({blender_ext_script().parent.name})")
    print(f"built {target} ({count} files, {target.stat().st_size / 1024:.0f} KiB): no tests, caches or venv")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="validate the manifest and the source folder")
    sub.add_parser("requirements", help=f"write {REQUIREMENTS.name} from pyproject.toml")
    build_parser = sub.add_parser("build", help="validate, then build the extension zip")
    build_parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    if args.command == "requirements":
        REQUIREMENTS.write_text(requirements_text())
        print(f"wrote {REQUIREMENTS}")
    elif args.command == "validate":
        run_blender_ext("validate", str(ROOT))
        print("blender_manifest.toml is valid")
    else:
        build(args.output_dir if args.output_dir.is_absolute() else ROOT / args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
