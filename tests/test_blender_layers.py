"""The Blender side by layer (``docs/operators.md``, "Where things live"): operator classes only in
``operators/``, property groups only in ``properties/``, panels only in ``panels/``, and the layers below
(``engine_link/``, ``scene/``, ``perspective/``) register nothing themselves. Parsed with ``ast``: no Blender."""

from __future__ import annotations

import ast

from conftest import REPO_ROOT

HOMES = {"_OT_": "operators", "_PG_": "properties", "_PT_": "panels"}
LAYERS = ("operators", "properties", "panels", "engine_link", "scene", "perspective")


def blender_classes():
    """(folder, file, class name) of every ``DHANDLES_*`` class on the Blender side."""
    for folder in LAYERS:
        for path in sorted((REPO_ROOT / folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name.startswith("DHANDLES_"):
                    yield folder, path.name, node.name


def test_each_kind_of_blender_class_lives_in_its_layer():
    misplaced = [f"{folder}/{name}: {cls} belongs in {home}/"
                 for folder, name, cls in blender_classes()
                 for marker, home in HOMES.items() if marker in cls and folder != home]
    assert not misplaced, "\n".join(misplaced)
    kinds = {marker for _, _, cls in blender_classes() for marker in HOMES if marker in cls}
    assert kinds == set(HOMES)  # the walk found every kind: a renamed folder cannot leave this test empty


def test_the_lower_layers_register_nothing_themselves():
    """``engine_link/``, ``scene/`` and ``perspective/`` hold no ``CLASSES`` list: registration is the job of
    ``properties/``, ``operators/`` and ``panels/``."""
    found = []
    for folder in ("engine_link", "scene", "perspective"):
        assert (REPO_ROOT / folder / "__init__.py").is_file(), f"{folder}/ is no package"
        for path in sorted((REPO_ROOT / folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {target.id for node in tree.body if isinstance(node, ast.Assign)
                     for target in node.targets if isinstance(target, ast.Name)}
            found += [f"{folder}/{path.name}" for name in ("CLASSES",) if name in names]
    assert not found, found
