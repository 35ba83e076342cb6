"""Checks of a job's plain-number parameters, with the error every job gives for a bad one."""

from __future__ import annotations


def whole_number(params: dict, key: str, default: int, low: int, high: int) -> int:
    """``params[key]`` (``default`` when absent): an int from ``low`` to ``high``, else JobError ``bad_params``."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        from . import JobError

        raise JobError("bad_params", f"'{key}' must be a whole number from {low} to {high}, not {value!r}.")
    return value


def number(params: dict, key: str, default: float, low: float, high: float) -> float:
    """``params[key]`` (``default`` when absent): a number from ``low`` to ``high``, as a float."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        from . import JobError

        raise JobError("bad_params", f"'{key}' must be a number from {low} to {high}, not {value!r}.")
    return float(value)
