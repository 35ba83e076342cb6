"""Never write over the user's files: every file an edit writes (image, report, default report) is checked against
every file it reads (photo, mask, depth, background depth, transform, and every file of a sample folder) and
against the other outputs, before any work starts.

``clash(outputs, inputs)`` takes ``{label: path}`` dicts and returns a sentence for the user, or None.
"""

from __future__ import annotations

import os
from pathlib import Path


def same_file(a: Path, b: Path) -> bool:
    """The same file: equal resolved paths (symlinks, ``..``), or, for existing files, the same inode (hard
    links, case-insensitive file systems)."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except (OSError, ValueError):  # ValueError: a NUL byte, which the reader refuses with a clear message
        return False


def sample_files(folder) -> dict[str, Path]:
    """Every file of a sample folder, labelled for messages: all of them count as inputs."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {f"sample file '{path.name}'": path for path in sorted(folder.iterdir()) if path.is_file()}


def clash(outputs: dict[str, Path], inputs: dict[str, Path]) -> str | None:
    """Why writing ``outputs`` would destroy an input or another output, or None when it is safe."""
    outputs = {label: Path(path) for label, path in outputs.items() if path}
    for label, path in outputs.items():
        for input_label, source in inputs.items():
            if source and same_file(path, Path(source)):
                return (f"The {label} '{path}' is the {input_label} '{source}': inputs are never overwritten. "
                        "Choose another output path.")
    labels = list(outputs)
    for i, label in enumerate(labels):
        for other in labels[i + 1:]:
            if same_file(outputs[label], outputs[other]):
                return (f"The {label} and the {other} are the same file '{outputs[label]}'; give them different "
                        "paths.")
    return None
