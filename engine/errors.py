"""The engine's errors: one base, one class per stable code (``docs/protocol.md`` lists the codes).

Standard library only: the Blender extension imports this module too. The engine raises the class for a code; the
client turns an ``error`` message back into the same class with :func:`error_for`, so both sides catch by type,
never by words in a message. ``message`` is a sentence for the user that says what to do; ``detail`` (a traceback
or log) is for bug reports.
"""

from __future__ import annotations

from typing import ClassVar

_BY_CODE: dict[str, type[EngineError]] = {}


class EngineError(Exception):
    """A job, the engine or the client failed. ``EngineError(code, message, detail)`` for any code;
    the subclasses below fix their code: ``BadParams(message, detail)``."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, code: str, message: str, detail: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _BY_CODE[cls.code] = cls

    def __str__(self) -> str:
        return self.message

    def as_message(self, job: str | None) -> dict:
        """The protocol's ``error`` message for this error."""
        from . import messages

        return messages.error(job, self.code, self.message, self.detail)


# The name jobs have always raised; the same class.
JobError = EngineError


class _Coded(EngineError):
    """Base of the one-code classes: ``Cls(message, detail=None)``."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(type(self).code, message, detail)


def error_for(code: str, message: str, detail: str | None = None) -> EngineError:
    """The typed error for ``code`` (an ``EngineError`` carrying the code when no class has it)."""
    cls = _BY_CODE.get(code)
    if cls is None or not issubclass(cls, _Coded):
        return EngineError(code, message, detail)
    return cls(message, detail)


# --- the protocol ------------------------------------------------------------------------------------------
class BadToken(_Coded):
    code = "bad_token"


class BadMessage(_Coded):
    code = "bad_message"


class UnsupportedVersion(_Coded):
    code = "unsupported_version"


class NotTheEngine(_Coded):
    """(socket) the program listening could not prove it holds the session token: nothing was sent to it."""

    code = "not_the_engine"


class EngineFault(_Coded):
    """The engine sent a line that is not a valid message (malformed, or over the size limit)."""

    code = "engine_fault"


class UnknownJob(_Coded):
    code = "unknown_job"


# --- what the user gave ------------------------------------------------------------------------------------
class BadParams(_Coded):
    """A job parameter has the wrong type, range or form; the message names the field."""

    code = "bad_params"


class BadInput(_Coded):
    """An input file exists but cannot be used (unreadable format, decompression bomb, wrong channels...)."""

    code = "bad_input"


class InputNotFound(_Coded):
    code = "file_not_found"


class SizeMismatch(_Coded):
    code = "size_mismatch"


class EmptyMask(_Coded):
    code = "empty_mask"


class FullMask(_Coded):
    code = "full_mask"


class BadMask(_Coded):
    code = "bad_mask"


class BadDepth(_Coded):
    code = "bad_depth"


class BadImage(_Coded):
    code = "bad_image"


class BadTransform(_Coded):
    code = "bad_transform"


class BadLora(_Coded):
    code = "bad_lora"


class OutputIsInput(_Coded):
    code = "output_is_input"


# --- what an edit did --------------------------------------------------------------------------------------
class ObjectOutOfView(_Coded):
    """The edit moves the object (all of it) out of the picture."""

    code = "object_out_of_view"


class ObjectTooSmall(_Coded):
    code = "object_too_small"


class BadGeometry(_Coded):
    code = "bad_geometry"


# --- the machine and the models ----------------------------------------------------------------------------
class OutOfMemory(_Coded):
    """Out of memory after the pipeline's own fallbacks."""

    code = "out_of_memory"


class MissingWeights(_Coded):
    code = "missing_weights"


class Cancelled(_Coded):
    code = "cancelled"

    def __init__(self, message: str = "The job was cancelled.", detail: str | None = None):
        super().__init__(message, detail)


class WorkerLost(_Coded):
    """(batch) The Ray worker running a job was lost on every try (``engine/batch/ray_runner.py``)."""

    code = "worker_lost"


class InternalError(_Coded):
    code = "internal_error"


class EngineMissingPackages(_Coded):
    code = "engine_missing_packages"


# --- the client and the Blender side -----------------------------------------------------------------------
class EnginePythonNotFound(_Coded):
    code = "engine_python_not_found"


class EngineStartFailed(_Coded):
    code = "engine_start_failed"


class EngineCrashed(_Coded):
    code = "engine_crashed"


class EngineHung(_Coded):
    code = "engine_hung"


class EngineReleased(_Coded):
    code = "engine_released"


class Timeout(_Coded):
    code = "timeout"


class Busy(_Coded):
    """(Blender) a job the extension waits for was not sent because a render holds the engine."""

    code = "busy"


class BadResult(_Coded):
    """(Blender) the engine's result lacks what the extension needs, or cannot be used."""

    code = "bad_result"
