"""``Params``: the base of the typed job parameters, dataclasses that check every field on construction.

A field is declared with :func:`param` (its check from ``checks.py``, default and meaning). ``from_json(obj)``
refuses unknown keys, fills defaults (``null`` is the default; for an optional path ``""`` is too), and the
constructor checks and normalises each field, so an object built in Python (the Blender side) is checked the same
way as one parsed from the wire. ``to_json()`` gives the plain JSON the protocol carries. Every refusal is
``BadParams`` naming the field's dotted path.
"""

from __future__ import annotations

import dataclasses

from ..errors import BadParams
from .checks import AbsolutePath, Check

REQUIRED = dataclasses.MISSING


def param(check: Check, default=REQUIRED, doc: str = ""):
    """A parameter field: ``check`` validates it, ``doc`` says what it means (for ``docs/protocol.md``)."""
    metadata = {"check": check, "doc": doc}
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _required(field: dataclasses.Field) -> bool:
    return field.default is REQUIRED and field.default_factory is REQUIRED


def _absent(field: dataclasses.Field, value) -> bool:
    """Whether ``value`` stands for "not given": null, or an empty string for an optional path."""
    return value is None or (value == "" and isinstance(field.metadata["check"], AbsolutePath)
                             and not _required(field))


@dataclasses.dataclass(kw_only=True)
class Params:
    """Base of parameter objects; subclasses are ``@dataclass(kw_only=True)`` with :func:`param` fields."""

    def __post_init__(self):
        self.check_fields()

    def check_fields(self, where: str = "") -> None:
        for field in dataclasses.fields(self):
            name = f"{where}.{field.name}" if where else field.name
            value = getattr(self, field.name)
            if _absent(field, value):
                if _required(field):
                    raise BadParams(f"'{name}' is required: {field.metadata['doc'] or field.name}.")
                setattr(self, field.name, field.default if field.default is not REQUIRED else None)
                continue
            setattr(self, field.name, field.metadata["check"](value, name))
        self.check_together(where)

    def check_together(self, where: str) -> None:
        """Checks across fields (one of two forms given, lists of one length...); override where needed."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_json(cls, obj, where: str = ""):
        """The parameters in ``obj`` (a JSON object) checked; ``BadParams`` naming the field otherwise."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            what = f"'{where}'" if where else "The job's parameters"
            raise BadParams(f"{what} must be a JSON object, not {type(obj).__name__}.")
        names = cls.field_names()
        unknown = [key for key in obj if key not in names]
        if unknown:
            inside = f" in '{where}'" if where else ""
            raise BadParams(f"Unknown parameter {', '.join(repr(str(k)) for k in unknown)}{inside}; the allowed "
                            f"ones are {', '.join(names)}.")
        values = {}
        for field in dataclasses.fields(cls):
            name = f"{where}.{field.name}" if where else field.name
            value = obj.get(field.name)
            if _absent(field, value) and _required(field):
                raise BadParams(f"'{name}' is required: {field.metadata['doc'] or field.name}.")
            if not _absent(field, value):
                values[field.name] = value
        instance = cls.__new__(cls)
        for field in dataclasses.fields(cls):
            setattr(instance, field.name, values.get(field.name))
        instance.check_fields(where)
        return instance

    def to_json(self) -> dict:
        """The plain JSON object of these parameters (fields left at null omitted)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                out[field.name] = field.metadata["check"].to_json(value)
        return out
