"""Engine jobs: the units of work a client asks the engine for (``docs/protocol.md`` lists them).

A job is a module ``engine/jobs/<name>.py`` defining ``NAME`` (equal to the module name), ``PARAMS`` (its parameter
class from ``engine/params``) and ``run(params, ctx: JobContext) -> dict``. The job runner parses the JSON
parameters once into ``PARAMS`` (``BadParams`` naming the field) and ``run`` receives that object; ``run`` starts
with ``PARAMS.from_json(params)``, which returns a parsed object unchanged, so a direct call with a dict is checked
the same way. A job without ``PARAMS`` receives the plain dict. Jobs are discovered from this folder, never listed
centrally. Results are plain JSON; arrays and images travel as file paths (``.npy``/``.png``/``.exr``), written
through ``engine/io/safe_write.py`` (temporary file, rename, never over an input). Outputs the client did not name
go to ``ctx.default_output(...)``: a fresh name in the client's ``workdir``. Job modules import torch and friends
inside ``run`` (or in helper modules), so that
listing jobs stays cheap.

Errors a user can act on are raised as the typed class of their code (``engine/errors.py``: ``BadInput(message)``,
``EmptyMask(message)``...): the message is shown in Blender's panel as is, so it says what happened and what to do.
``ctx.check_cancelled()`` between steps raises ``Cancelled``.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from pathlib import Path

from ..errors import Cancelled, InputNotFound, InternalError, JobError, UnknownJob  # noqa: F401  (re-exported)


def job_names() -> list[str]:
    """Names of the jobs in this folder, without importing them."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def load_job(name: str):
    """The job module called ``name``; ``JobError('unknown_job')`` when there is none."""
    if not isinstance(name, str) or name not in job_names():
        raise UnknownJob(f"The engine has no job called {name!r}. Jobs: {', '.join(job_names())}.")
    module = importlib.import_module(f"{__name__}.{name}")
    if getattr(module, "NAME", None) != name or not callable(getattr(module, "run", None)):
        raise InternalError(f"engine/jobs/{name}.py must define NAME = {name!r} and run(params, ctx).")
    return module


class JobContext:
    """What a running job may use: progress reports, cancellation, a work folder and the model cache.

    ``workdir`` is the client's folder for the job's files, or with ``scratch=True`` a private folder of the
    engine's own that is removed when the job ends (``engine/process/job_runner.py``): no result may live there."""

    def __init__(self, job_id: str, workdir: Path, emit, cancel_event: threading.Event | None = None,
                 scratch: bool = False):
        self.job_id = job_id
        self.workdir = Path(workdir)
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.scratch = scratch
        self._emit = emit
        self._cancel_event = cancel_event or threading.Event()
        self._thumbnails = 0

    @property
    def models(self):
        """The engine-wide model cache (``engine/model_cache.py``): models stay loaded between jobs. A load through
        it is a progress stage of this job (``loading model``, and ``download`` with bytes when the weights come
        from the hub)."""
        return _ReportingModelCache(self)

    def default_output(self, name: str, field: str) -> Path:
        """Where an output the client did not name goes: a fresh name (never an existing file) in the client's
        work folder. Without one (a private scratch folder, removed at the end) ``BadParams`` names ``field``."""
        from ..errors import BadParams
        from ..io.safe_write import fresh_path

        if self.scratch:
            raise BadParams(f"Give '{field}' as the absolute path of the file to write, or submit the job with a "
                            "'workdir' for its files: the engine's own work folder is private and removed when the "
                            "job ends.")
        return fresh_path(self.workdir / name)

    @property
    def cancelled(self) -> bool:
        return self._cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` if the client asked to cancel; call it between steps (at least once a second)."""
        if self._cancel_event.is_set():
            raise Cancelled()

    def progress(self, stage: str, step: int | None = None, total: int | None = None, thumbnail=None,
                 message: str | None = None) -> None:
        """Report progress. ``thumbnail``: a path to a small PNG, or an image (HxWx3 array in [0, 1] or uint8,
        or a PIL image) that is saved as one under the workdir."""
        from .. import messages

        if thumbnail is not None and not isinstance(thumbnail, (str, Path)):
            thumbnail = self._save_thumbnail(thumbnail)
        self._emit(messages.progress(self.job_id, str(stage), step, total,
                                     None if thumbnail is None else str(thumbnail), message))

    def _save_thumbnail(self, image, size: int = 128) -> str:
        import numpy as np
        from PIL import Image

        from ..io.safe_write import fresh_path, write_atomic

        if not isinstance(image, Image.Image):
            array = np.asarray(image)
            if array.dtype != np.uint8:
                array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            image = Image.fromarray(array)
        image = image.copy()
        image.thumbnail((size, size))
        self._thumbnails += 1
        path = fresh_path(self.workdir / f"thumbnail_{self._thumbnails:03d}.png")
        return str(write_atomic(path, image.save))


def existing_file(path, what: str = "file") -> Path:
    """The file at ``path`` (a parameter already checked by ``engine/params``), or the typed error of
    ``engine.io.input_path`` telling the user what is wrong with it (missing, a folder, a NUL byte)."""
    from ..io.paths import input_path

    return input_path(path, what)


class _ReportingModelCache:
    """``engine.model_cache`` as a job sees it: a model not loaded yet reports its loading to the job."""

    def __init__(self, ctx: JobContext):
        self._ctx = ctx

    def get_or_load(self, key, load):
        from .. import model_cache
        from ..models import progress

        if key in model_cache.keys():  # noqa: SIM118 - keys() is the cache's function, a list
            return model_cache.get_or_load(key, load)
        kind, name = (key[0], key[1]) if isinstance(key, tuple) and len(key) > 1 else ("", key)
        what = f"the {kind} model" if kind else "the model"
        self._ctx.progress("loading model", message=f"loading {what} {name or '(default)'}")

        def report(stage, step=None, total=None, message=None):
            self._ctx.progress(stage, step, total, message=message)

        with progress.reporting(report, self._ctx.check_cancelled):
            return model_cache.get_or_load(key, load)

    def __getattr__(self, name):
        from .. import model_cache

        return getattr(model_cache, name)
