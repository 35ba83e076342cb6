"""Writing the engine's outputs without ever losing a user's file.

Every output is written to a temporary file in the target's own folder and renamed into place, so a crash or a
full disk never leaves a half-written file under the user's name, and a name that is a hard or symbolic link is
replaced, never written through. An output that is, or links to (same device and inode), any input of the job is
refused with ``output_is_input`` before anything is written. Outputs the user did not name (``fresh_path``) never
take an existing name. Work folders are private (``tempfile.mkdtemp``: mode 0700, an unpredictable name).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import BadParams, OutputIsInput

# Parameters that name what a job writes, never what it reads.
OUTPUT_KEYS = frozenset({"output", "outputs", "output_dir", "cache_dir", "workdir"})


def same_file(a, b) -> bool:
    """The same file: equal resolved paths (symlinks, ``..``; also for a file not written yet), or, for existing
    files, the same device and inode (hard links, case-insensitive file systems). False for a path the operating
    system cannot take (a NUL byte: the readers refuse those with a clear message)."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        first, second = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def sample_files(folder) -> dict[str, Path]:
    """Every file of a sample folder, labelled for messages: all of them count as inputs."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {f"sample file '{path.name}'": path for path in sorted(folder.iterdir()) if path.is_file()}


def clash(outputs: dict, inputs: dict) -> str | None:
    """Why writing ``outputs`` (``{label: path}``) would destroy one of ``inputs`` (``{label: path}``) or another
    output, or None when it is safe: checked before any work starts."""
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


def inputs_of(params) -> dict[str, str]:
    """Every existing file a job's parameters name, outputs aside: ``{label: path}`` (lists are numbered, nested
    parts dotted). ``params``: the JSON object, or the typed parameters (``engine/params``)."""
    if hasattr(params, "to_json"):
        params = params.to_json()
    found = {}
    for key, value in params.items():
        if key in OUTPUT_KEYS:
            continue
        if isinstance(value, dict):
            found.update({f"{key}.{label}": path for label, path in inputs_of(value).items()})
            continue
        values = value if isinstance(value, list) else [value]
        for index, item in enumerate(values):
            if isinstance(item, str) and item and "\0" not in item and os.path.isfile(item):
                found[key if len(values) == 1 else f"{key} {index}"] = item
    return found


def refuse_inputs(output, inputs: dict) -> None:
    """``OutputIsInput`` when ``output`` is, or links to, one of ``inputs`` (``{label: path}``)."""
    for label, path in inputs.items():
        if same_file(output, path):
            raise OutputIsInput(f"The output '{output}' is the {label} file (or a link to it): outputs never "
                                "overwrite inputs. Choose another output path.")


def write_atomic(target, write, inputs: dict | None = None) -> Path:
    """Write ``target`` through ``write(temporary_path)`` (a temporary file beside it with the same suffix, so
    writers that choose a format by suffix still do), then rename it into place. Refuses (``OutputIsInput``) a
    target that is or links to one of ``inputs``, checked before and again just before the rename."""
    target = Path(target)
    inputs = inputs or {}
    refuse_inputs(target, inputs)
    if target.is_dir():
        raise BadParams(f"The output '{target}' is a folder; give the path of a file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        refuse_inputs(target, inputs)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def fresh_path(path) -> Path:
    """``path``, or ``stem-1.suffix``, ``stem-2.suffix``...: the first name that does not exist yet."""
    path = Path(path)
    candidate, number = path, 0
    while os.path.lexists(candidate):
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate

