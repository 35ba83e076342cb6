"""The one check of an input path: the right type, no NUL byte, an existing file (not a folder).

Standard library only. Every reader in this package starts here, so a missing file is ``InputNotFound`` and a path
the operating system cannot take is ``BadInput`` (never a traceback) in every door.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadInput, BadParams, InputNotFound


def input_path(value, what: str = "file") -> Path:
    """``value`` (a str or os.PathLike) as the Path of an existing file; a typed error naming ``what`` otherwise."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise BadParams(f"The {what} must be given as a file path (a string), not {type(value).__name__} "
                        f"{_short(value)}.")
    text = os.fspath(value)
    if not text:
        raise BadParams(f"No {what} given: the path is empty.")
    if "\x00" in text:
        raise BadInput(f"The path of the {what} {text!r} contains a NUL byte, which no file name can hold. "
                       "Give the file's real path.")
    path = Path(text)
    try:
        if path.is_dir():
            raise BadInput(f"The {what} '{path}' is a folder, not a file. Give the path of the file itself.")
        if not path.is_file():
            raise InputNotFound(f"The {what} '{path}' does not exist. Check that the file is still there or "
                                "give its current path.")
    except OSError as error:  # a name too long, a permission denied on a parent folder...
        raise BadInput(f"The {what} '{path}' cannot be opened ({error.strerror or error}).") from None
    return path


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
