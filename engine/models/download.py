"""Download a model's files from the hub into the local Hugging Face cache, with byte progress and cancel.

The first of the model's hub ids (``engine.models.sources.hub_ids``: the mirror first) that the hub serves is
downloaded; a "not found" moves on to the next. Only what the loaders read is fetched: configs, tokenizer files
and ``.safetensors`` weights in full precision (no ``.bin``/``.ckpt`` pickles, no fp16 or EMA variants, no
single-file checkpoint beside a diffusers layout). Refused before any request when downloads are off
(``HF_HUB_OFFLINE``) or Blender's online access is off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..errors import EngineError
from . import hub
from .errors import ModelMissingError

log = logging.getLogger(__name__)

WANTED_SUFFIXES = (".json", ".txt", ".safetensors", ".model")
PROGRESS_INTERVAL_S = 0.2


@dataclass
class ByteCounter:
    """Bytes done of a download's total; ``report(done, total, file)`` is called at most every 0.2 s."""

    total: int
    report: object  # callable(done, total, file)
    check_cancelled: object  # callable() raising when cancelled
    done: int = 0
    file: str = ""
    _last: float = 0.0

    def add(self, count: int) -> None:
        self.check_cancelled()
        self.done += count
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S or self.done >= self.total:
            self._last = now
            self.report(self.done, self.total, self.file)

    def bar_class(self):
        """A class huggingface_hub instantiates as a file's progress bar: its updates go to this counter."""
        counter = self

        class Bar:
            def __init__(self, *args, initial: int = 0, **kwargs):
                if initial:
                    counter.add(initial)  # a resumed download's bytes already on disk

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def update(self, count: int = 1) -> None:
                counter.add(count)

            def close(self) -> None:
                pass

        return Bar


def wanted(files: list[str]) -> list[str]:
    """The files of a repository that the loaders read (see the module docstring)."""
    diffusers_layout = "model_index.json" in files
    keep = []
    for name in files:
        lowered = name.lower()
        if not lowered.endswith(WANTED_SUFFIXES) or ".fp16." in lowered or "ema" in lowered.split("/")[-1]:
            continue
        if diffusers_layout and "/" not in name and lowered.endswith(".safetensors"):
            continue  # the single-file checkpoint beside the diffusers folders: gigabytes nobody loads
        keep.append(name)
    return keep


def download(name: str, repo_ids: tuple[str, ...], what: str, progress, check_cancelled) -> dict:
    """Download model ``name``: the first of its ``repo_ids`` the hub serves; returns ``{"source", "revision",
    "bytes", "files", "tried"}``. ``progress(done, total, message)`` gets byte counts; ``check_cancelled()`` raises
    to stop."""
    from .sources import hub_has

    refusal = hub.offline_reason()
    if refusal is not None:
        raise ModelMissingError(name, what, f"nothing was downloaded: {refusal}",
                                hint="Turn downloads on, or copy the model into a folder and give that folder.")
    tried = []
    for repo_id in repo_ids:
        check_cancelled()
        answer = hub_has(repo_id)
        if answer is not True:
            tried.append(f"the hub ({hub.endpoint()}) '{repo_id}': {answer}")
            log.info("%s: %s; trying the next source", repo_id, answer)
            continue
        try:
            return {**_fetch(repo_id, progress, check_cancelled), "tried": tried}
        except EngineError:
            raise  # cancelled
        except Exception as error:
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise ModelMissingError(name, what, f"the download from '{repo_id}' stopped ({first})",
                                    hint="Check the connection and the free disk space, then download again: it "
                                    "carries on where it stopped.", detail=repr(error)) from error
    from .sources import missing

    raise missing(name, what, tried, repo_ids[0])


def _fetch(repo_id: str, progress, check_cancelled) -> dict:
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi(endpoint=hub.endpoint()).model_info(repo_id, files_metadata=True)
    sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
    files = wanted(sorted(sizes))
    counter = ByteCounter(sum(sizes[f] for f in files),
                          lambda done, total, name: progress(done, total, f"{repo_id}: {name}"), check_cancelled)
    for name in files:
        counter.file = name
        before = counter.done
        hf_hub_download(repo_id, name, tqdm_class=counter.bar_class())  # the default branch: cache refs/main
        counter.done = before + sizes[name]  # a file already in the cache reports no bytes
        counter.add(0)
    return {"source": repo_id, "revision": info.sha, "bytes": counter.total, "files": len(files)}
