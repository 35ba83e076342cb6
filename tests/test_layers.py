"""The engine's layers (``docs/architecture.md``): no module imports a layer above its own, and none imports bpy.

Top to bottom: the CLI (``engine/commands``, ``cli.py``, ``__main__.py``) > the process (``engine/process``:
protocol, server, clients, queue, runner) > the jobs (``engine/jobs``) > the libraries (everything else). Every
module under ``engine/`` is parsed with ``ast`` (imports inside functions included) and every relative or absolute
import of an engine module is resolved to the module it names.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

LIBRARY, JOBS, PROCESS, COMMANDS = 0, 1, 2, 3
LAYER_NAMES = {LIBRARY: "libraries", JOBS: "jobs", PROCESS: "process", COMMANDS: "commands"}

# The first part of a module's path under engine/ -> its layer. A module in none of them fails the test: a new
# package must be placed in a layer here and in docs/architecture.md.
LAYERS = {
    "commands": COMMANDS, "cli": COMMANDS, "__main__": COMMANDS,
    "process": PROCESS,
    "batch": PROCESS,  # batch runs (issue 15): they drive jobs through the job runner, as the server does
    "jobs": JOBS,
    "diffusion": LIBRARY, "geometry": LIBRARY, "perspective": LIBRARY, "models": LIBRARY, "io": LIBRARY,
    "params": LIBRARY, "errors": LIBRARY, "device": LIBRARY, "model_cache": LIBRARY, "messages": LIBRARY,
    "environment": LIBRARY, "__init__": LIBRARY,
}
BLENDER_MODULES = {"bpy", "bpy_extras", "bmesh", "mathutils"}


def module_name(path: Path, package: Path) -> str:
    """``engine.process.server`` for ``engine/process/server.py``; a package is named by its ``__init__``."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS.get(parts[1])


def imported_modules(tree: ast.AST, module: str, is_package: bool, package: Path):
    """``(line, absolute module name)`` of each import in ``tree``. ``from .. import x`` names the module ``x``
    when it is one (a file or folder), else the package it is taken from."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate, package) else source


def _is_module(name: str, package: Path) -> bool:
    """Whether ``name`` (``engine.process.server``) is a module or package in the folder ``package``."""
    path = package.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_violations(package: Path) -> list[str]:
    """One line per upward import, bpy import, import of a module that does not exist (an old path after a move)
    or module outside every layer, in the package folder ``package``."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        shown = path.relative_to(package.parent)
        own = layer_of(module)
        if own is None:
            problems.append(f"{shown}: in no layer (place it in LAYERS of tests/test_layers.py and in "
                            "docs/architecture.md)")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in imported_modules(tree, module, path.name == "__init__.py", package):
            top = name.split(".")[0]
            if top in BLENDER_MODULES:
                problems.append(f"{shown}:{line}: imports {name} (the engine never imports Blender's modules)")
            elif top == package.name and not _is_module(name, package):
                problems.append(f"{shown}:{line}: imports {name}, which is no module (moved? see "
                                "docs/architecture.md)")
            elif top == package.name:
                theirs = layer_of(name)
                if theirs is not None and theirs > own:
                    problems.append(f"{shown}:{line}: imports {name}, which is in the {LAYER_NAMES[theirs]} "
                                    f"layer, above {LAYER_NAMES[own]}")
    return problems


def test_no_engine_module_imports_a_layer_above_its_own_or_bpy():
    problems = layer_violations(REPO_ROOT / "engine")
    assert not problems, "Imports that run up the layers (docs/architecture.md):\n" + "\n".join(problems)


def test_every_layer_has_modules():
    """The map above names real folders: a renamed package cannot leave its modules unchecked."""
    engine = REPO_ROOT / "engine"
    modules = [module_name(path, engine) for path in engine.rglob("*.py")]
    found = {layer_of(module) for module in modules}
    assert found == {LIBRARY, JOBS, PROCESS, COMMANDS}


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_check_names_each_kind_of_violation(tmp_path):
    engine = tmp_path / "engine"
    _write(engine, "__init__.py", "")
    _write(engine, "errors.py", "def message():\n    from .process import protocol\n")
    _write(engine, "jobs/__init__.py", "from .. import errors\n")
    _write(engine, "jobs/ping.py", "from ..commands.info import accelerator\nfrom ..process import protocol\n")
    _write(engine, "process/__init__.py", "")
    _write(engine, "process/protocol.py", "from ..jobs import ping\nfrom .. import errors\n")
    _write(engine, "process/server.py", "from .. import commands\nimport bpy\n")
    _write(engine, "commands/__init__.py", "")
    _write(engine, "commands/info.py", "from ..process import server\nfrom ..jobs import ping\n")
    _write(engine, "commands/serve.py", "from ..server import Server\nfrom .. import __version__\n")
    _write(engine, "surprise.py", "")
    assert layer_violations(engine) == [
        "engine/commands/serve.py:1: imports engine.server, which is no module (moved? see docs/architecture.md)",
        "engine/errors.py:2: imports engine.process.protocol, which is in the process layer, above libraries",
        "engine/jobs/ping.py:1: imports engine.commands.info, which is in the commands layer, above jobs",
        "engine/jobs/ping.py:2: imports engine.process.protocol, which is in the process layer, above jobs",
        "engine/process/server.py:1: imports engine.commands, which is in the commands layer, above process",
        "engine/process/server.py:2: imports bpy (the engine never imports Blender's modules)",
        "engine/surprise.py: in no layer (place it in LAYERS of tests/test_layers.py and in docs/architecture.md)",
    ]
