"""Run one job and turn everything it does into protocol messages: started, progress, then result or error.

Shared by the one-shot ``python -m engine job`` command and the long-lived server, so a job behaves the same in
both. Exceptions become error messages with a code and a sentence the user can act on; the traceback goes to
``detail`` (and to stderr) for bug reports.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from .. import model_cache
from ..errors import BadParams, InternalError, JobError
from ..jobs import JobContext, load_job
from ..params import Params  # imported with the runner, so that parsing never delays a job after its "started"
from . import protocol


def job_folder(workdir: str | Path | None) -> tuple[Path, bool]:
    """The job's work folder and whether it is the engine's own scratch: the client's ``workdir`` (an absolute
    path; kept), else a fresh private folder (``mkdtemp``: mode 0700, a random name, never the job id; removed at
    the end). Standard library only: ``ping`` runs in an engine Python without numpy."""
    if workdir is None or workdir == "":
        return Path(tempfile.mkdtemp(prefix="dhandles-job-")), True
    if not isinstance(workdir, (str, Path)) or "\0" in str(workdir) or not Path(workdir).is_absolute():
        raise BadParams(f"'workdir' must be the absolute path of a folder of yours, not {workdir!r}.")
    return Path(workdir), False


def run_job(job_id: str, name: str, params, emit, cancel_event: threading.Event | None = None,
            workdir: str | Path | None = None) -> bool:
    """Run job ``name``; ``emit(message)`` receives every message. Returns True if it ended with a result."""
    started = time.perf_counter()
    emit({"type": protocol.STARTED, "job": job_id, "name": name})
    scratch = None
    try:
        if not isinstance(params, dict):
            raise BadParams(f"The parameters of job {name!r} must be a JSON object.")
        module = load_job(name)
        params_class = getattr(module, "PARAMS", None)
        if isinstance(params_class, type) and issubclass(params_class, Params):
            params = params_class.from_json(params)  # parsed once; the job gets its typed parameters
        folder, owned = job_folder(workdir)
        scratch = folder if owned else None
        ctx = JobContext(job_id, folder, emit, cancel_event, scratch=owned)
        ctx.check_cancelled()
        value = module.run(params, ctx)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise InternalError(f"Job {name!r} returned {type(value).__name__}, not a dict.")
        _remove(scratch)  # gone before the result is told: a client never sees the engine's folder linger
        emit(protocol.result(job_id, value, round(time.perf_counter() - started, 3)))
        return True
    except KeyboardInterrupt:
        emit(protocol.error(job_id, "cancelled", "The job was interrupted."))
        raise
    except Exception as exc:  # noqa: BLE001 - every failure must reach the client as a message
        code, message, detail = describe_exception(exc)
        if code == "internal_error":
            traceback.print_exception(exc, file=sys.stderr)
    finally:
        _remove(scratch)
    # Past the except clause the exception and its traceback, whose frames hold the job's tensors, are gone.
    if code == "out_of_memory":
        # Whatever is cached may be what filled the memory (the pipeline's own fallbacks end as a JobError with
        # this code, other out-of-memory errors as exceptions): the next job loads its models afresh.
        model_cache.clear()
        message = f"{message} Cached models were freed."
    emit(protocol.error(job_id, code, message, detail))
    return False


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def describe_exception(exc: BaseException) -> tuple[str, str, str | None]:
    """(code, user message, detail) for an exception raised by a job."""
    if isinstance(exc, JobError):
        return exc.code, exc.message, exc.detail
    detail = "".join(traceback.format_exception(exc))
    if is_out_of_memory(exc):
        return ("out_of_memory", "The engine ran out of memory. Use a smaller image or fewer steps, or close other "
                "programs using the GPU, then try again.", detail)
    if type(exc).__name__ == "ModelMissingError":  # engine.models: its message already says how to get the model
        return "missing_weights", str(exc), detail
    if isinstance(exc, ModuleNotFoundError):
        missing = exc.name or str(exc)
        return ("engine_missing_packages", f"The engine's Python ({sys.executable}) lacks the package "
                f"'{missing}'. Press Set Up Engine in the add-on preferences to repair it (in a clone of the source: "
                f"make setup), or: {sys.executable} -m pip install {missing}", detail)
    if is_missing_weights(exc):
        return ("missing_weights", f"Model weights could not be found or downloaded: {first_line(exc)}. Check the "
                "model names in the add-on preferences, or connect to the internet once to download them.", detail)
    if isinstance(exc, FileNotFoundError):
        where = f" '{exc.filename}'" if exc.filename else ""
        return ("file_not_found", f"A file the job needs does not exist{where}. Check the path or import the "
                "photo again.", detail)
    return ("internal_error", f"The engine hit an unexpected error ({type(exc).__name__}: {first_line(exc)}). "
            "See the details, and report it if it persists.", detail)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


_WEIGHTS_ERRORS = ("LocalEntryNotFoundError", "RepositoryNotFoundError", "EntryNotFoundError",
                   "RevisionNotFoundError", "GatedRepoError", "OfflineModeIsEnabled")
_WEIGHTS_PHRASES = ("does not appear to have a file named", "couldn't connect to", "offline mode",
                    "is not a local folder and is not a valid model identifier", "no file named")


def is_missing_weights(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        if cls.__name__ in _WEIGHTS_ERRORS:
            return True
    text = str(exc).lower()
    return isinstance(exc, (OSError, ValueError)) and any(phrase in text for phrase in _WEIGHTS_PHRASES)
