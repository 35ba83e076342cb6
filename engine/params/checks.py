"""The checks of single job-parameter values, each raising ``BadParams`` that names the field.

A check is a callable ``check(value, where) -> value``: ``where`` is the field's dotted path (``perspective.vps[1]``)
and goes into the message. ``describe`` is the type as ``docs/protocol.md`` shows it. Standard library only: the
Blender extension builds job parameters with these classes too.
"""

from __future__ import annotations

import math
import ntpath
import posixpath
import re

from ..errors import BadParams

MAX_TEXT = 100_000  # characters in one string parameter (a prompt, a path)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?|xpu(:\d{1,2})?)$")
DEVICES = "auto, cpu, cuda, cuda:N, mps, xpu, xpu:N"


def shown(value) -> str:
    """A short form of a wrong value for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def refuse(where: str, expected: str, value) -> BadParams:
    return BadParams(f"'{where}' must be {expected}, not {shown(value)}.")


class Check:
    """Base of the checks: ``describe`` for the docs, ``__call__`` to check and normalise a value."""

    describe = "any"

    def __call__(self, value, where: str):
        return value

    def to_json(self, value):
        return value


class Text(Check):
    def __init__(self, non_empty: bool = False, choices: tuple[str, ...] | None = None):
        self.non_empty, self.choices = non_empty, choices
        self.describe = "string" if choices is None else " or ".join(f'"{c}"' for c in choices)

    def __call__(self, value, where):
        if not isinstance(value, str):
            raise refuse(where, "a string" if self.choices is None else f"one of {', '.join(self.choices)}", value)
        if "\x00" in value:
            raise BadParams(f"'{where}' holds a NUL character; remove it.")
        if len(value) > MAX_TEXT:
            raise BadParams(f"'{where}' is {len(value)} characters long; at most {MAX_TEXT} are taken.")
        if self.non_empty and not value.strip():
            raise BadParams(f"'{where}' must not be empty.")
        if self.choices is not None and value not in self.choices:
            raise refuse(where, f"one of {', '.join(self.choices)}", value)
        return value


class AbsolutePath(Text):
    """A file or folder path: a string, absolute (POSIX or Windows form), no NUL; the file is not opened here."""

    def __init__(self, suffixes: tuple[str, ...] = ()):
        super().__init__(non_empty=True)
        self.suffixes = suffixes
        self.describe = "absolute path" + (f" ({', '.join(suffixes)})" if suffixes else "")

    def __call__(self, value, where):
        value = super().__call__(value, where)
        if not (posixpath.isabs(value) or ntpath.isabs(value)):
            raise BadParams(f"'{where}' is the relative path {shown(value)}: job parameters take absolute paths "
                            "only. Give the full path of the file.")
        if self.suffixes and not value.lower().endswith(self.suffixes):
            raise BadParams(f"'{where}' must end in {' or '.join(self.suffixes)}, not {shown(value)}.")
        return value


class Device(Text):
    def __init__(self):
        super().__init__(non_empty=True)
        self.describe = f"device ({DEVICES})"

    def __call__(self, value, where):
        value = super().__call__(value, where)
        if not DEVICE_PATTERN.match(value):
            raise BadParams(f"'{where}' names the unknown device {shown(value)}; use one of {DEVICES}, or leave it "
                            "out for the best one available.")
        return value


class Integer(Check):
    def __init__(self, low: int, high: int):
        self.low, self.high = low, high
        self.describe = f"integer {low}..{high}"

    def __call__(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise refuse(where, f"a whole number from {self.low} to {self.high}", value)
        return value


class Number(Check):
    """A finite number within [low, high] (``open_low``/``open_high``: the bound itself excluded), as a float."""

    def __init__(self, low: float = -math.inf, high: float = math.inf, open_low: bool = False,
                 open_high: bool = False):
        self.low, self.high, self.open_low, self.open_high = low, high, open_low, open_high
        self.describe = "number" + self._range()

    def _range(self) -> str:
        if self.low == -math.inf and self.high == math.inf:
            return ""
        return f" {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"

    def __call__(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise refuse(where, "a number", value)
        value = float(value)
        if not math.isfinite(value):
            raise refuse(where, "a finite number", value)
        below = value <= self.low if self.open_low else value < self.low
        above = value >= self.high if self.open_high else value > self.high
        if below or above:
            raise refuse(where, "a number in" + self._range(), value)
        return value


class Boolean(Check):
    describe = "boolean"

    def __call__(self, value, where):
        if not isinstance(value, bool):
            raise refuse(where, "true or false", value)
        return value


class ListOf(Check):
    """A JSON list of items of one check, with ``low``..``high`` items; a tuple inside the engine."""

    def __init__(self, item: Check, low: int = 0, high: int = 100_000):
        self.item, self.low, self.high = item, low, high
        count = f"{low}" if low == high else f"{low}..{high}"
        self.describe = f"list of {count} ({item.describe})"

    def __call__(self, value, where):
        if not isinstance(value, (list, tuple)):
            raise refuse(where, f"a list of {self.describe[8:]}", value)
        if not self.low <= len(value) <= self.high:
            raise BadParams(f"'{where}' must have {self.describe[8:].split(' (')[0]} items, not {len(value)}.")
        return tuple(self.item(item, f"{where}[{index}]") for index, item in enumerate(value))

    def to_json(self, value):
        return [self.item.to_json(item) for item in value]


def matrix4() -> ListOf:
    """A 4x4 row-major matrix of finite numbers."""
    check = ListOf(ListOf(Number(), 4, 4), 4, 4)
    check.describe = "4x4 matrix (rows)"
    return check


class ObjectTransforms(Check):
    """One object's 4x4 row-major matrix, or a list of ``1..most`` of them, one per object (several objects: the
    ``mask`` object first, then those of ``masks``); a tuple inside the engine, its depth telling which form."""

    def __init__(self, most: int):
        self.single, self.several = matrix4(), ListOf(matrix4(), 1, most)
        self.describe = f"4x4 matrix (rows), or list of 1..{most} of them (one per object)"

    @staticmethod
    def is_several(value) -> bool:
        """Whether ``value`` is the list form: its rows are themselves lists."""
        return (isinstance(value, (list, tuple)) and len(value) > 0 and isinstance(value[0], (list, tuple))
                and len(value[0]) > 0 and isinstance(value[0][0], (list, tuple)))

    def __call__(self, value, where):
        return (self.several if self.is_several(value) else self.single)(value, where)

    def to_json(self, value):
        return (self.several if self.is_several(value) else self.single).to_json(value)


class Nested(Check):
    """An object checked by a parameter class (``engine/params/base.py``)."""

    def __init__(self, cls):
        self.cls = cls
        self.describe = f"object ({cls.__name__})"

    def __call__(self, value, where):
        return self.cls.from_json(value, where)

    def to_json(self, value):
        return value.to_json()


class JsonValue(Check):
    """Any JSON value whose strings hold no NUL, nested at most ``depth`` deep; its numbers finite unless
    ``finite`` is false (``ping``'s echo brings NaN back as the protocol sends it: null)."""

    describe = "any JSON"

    def __init__(self, depth: int = 32, finite: bool = True):
        self.depth, self.finite = depth, finite

    def __call__(self, value, where, level: int = 0):
        if level > self.depth:
            raise BadParams(f"'{where}' is nested deeper than {self.depth} levels.")
        if isinstance(value, dict):
            for key, item in value.items():
                Text()(key, f"{where} key")
                self(item, f"{where}.{key}", level + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self(item, f"{where}[{index}]", level + 1)
        elif isinstance(value, float) and self.finite and not math.isfinite(value):
            raise refuse(where, "a finite number", value)
        elif isinstance(value, str):
            Text()(value, where)
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise refuse(where, "a JSON value", value)
        return value
