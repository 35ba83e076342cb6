"""Where a model's weights come from: its sources, tried in order, the first that has them wins.

1. a local folder (the model given as a path, or ``$DHANDLES_MODELS_DIR/<org>/<name>`` or ``.../<name>``);
2. a single-file checkpoint (the model given as a ``.safetensors`` file, or one of the preset's file names, such
   as ``512-depth-ema.safetensors``, in ``$DHANDLES_MODELS_DIR``); a ``.ckpt`` is refused (it can run code);
3. the local Hugging Face cache under any of the preset's hub ids (a user who downloaded the original id before
   it was withdrawn keeps working offline);
4. the hub, each id in order (the maintained mirror first, the original after), unless downloads are off.

A source that does not have the model moves on to the next; when none has it, ``ModelMissingError`` lists every
source tried and what to do. Standard library at import; huggingface_hub is imported only to ask the cache/hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import hub
from .errors import ModelMissingError
from .registry import preset_for, resolve

LOCAL_KINDS = ("folder", "single_file", "cache")
CKPT_HINT = ("A .ckpt file is a pickle, which can run code when loaded, so it is refused. Convert it to "
             ".safetensors once (for example with the 'Convert to Safetensors' tools of ComfyUI or Automatic1111, "
             "or diffusers' conversion scripts), then give that file.")


@dataclass(frozen=True)
class Located:
    """Where the weights were found: ``kind`` is ``folder``, ``single_file``, ``cache`` or ``hub``; ``where`` a
    path or a hub id; ``tried`` the sources that did not have them, in order."""

    name: str
    kind: str
    where: str
    tried: tuple[str, ...] = ()

    @property
    def local(self) -> bool:
        return self.kind in LOCAL_KINDS


def hub_ids(name_or_path: str | None, kind: str) -> tuple[str, ...]:
    """The hub ids ``name_or_path`` may be found under, in order (a preset's mirror first)."""
    preset = preset_for(name_or_path, kind)
    if preset is not None:
        return preset.ids
    return (resolve(name_or_path, kind)[1],)


def find(name_or_path: str | None, kind: str, what: str, probe_file: str, ask_hub: bool = True) -> Located:
    """The first source holding the model (see the module docstring). ``probe_file`` is a file every copy has
    (``unet/config.json``, ``config.json``); ``ask_hub=False`` stops before the hub (to report what is local)."""
    name, source = resolve(name_or_path, kind)
    preset = preset_for(name_or_path, kind)
    given = Path(source).expanduser()
    if looks_like_path(source):
        return _given_path(name, given, what, single_file_ok=kind == "diffusion")
    tried: list[str] = []
    for step in (_models_dir, _hf_cache):
        found = step(name, preset, source, probe_file, tried)
        if found is not None:
            return found
    if ask_hub:
        found = _hub(name, hub_ids(name_or_path, kind), tried)
        if found is not None:
            return found
    raise missing(name, what, tried, hub_ids(name_or_path, kind)[0])


def missing(name: str, what: str, tried: list[str], hub_id: str) -> ModelMissingError:
    from .errors import how_to_get

    listed = "; ".join(f"({i}) {line}" for i, line in enumerate(tried, 1))
    return ModelMissingError(name, what, f"no source has it. Tried: {listed}", tried=tried,
                             hint=how_to_get(name, what, hub_id))


def looks_like_path(source: str) -> bool:
    return (Path(source).expanduser().exists() or source.startswith((".", "/", "~"))
            or source.lower().endswith((".safetensors", ".ckpt"))
            or os.sep in source.strip("/").replace("/", "", 1))


def _given_path(name: str, path: Path, what: str, single_file_ok: bool) -> Located:
    if path.is_dir():
        return Located(name, "folder", str(path))
    if path.suffix.lower() == ".ckpt":
        raise ModelMissingError(str(path), what, "it is a .ckpt file", hint=CKPT_HINT)
    if path.is_file() and path.suffix.lower() == ".safetensors":
        if not single_file_ok:
            raise ModelMissingError(str(path), what, "single-file checkpoints are read for the diffusion model only",
                                    hint="Give the folder the model came in (with its config.json) instead.")
        return Located(name, "single_file", str(path))
    reason = "that file is not a .safetensors checkpoint" if path.is_file() else "that folder or file does not exist"
    raise ModelMissingError(str(path), what, reason,
                            hint="Check the path, or give a preset name or a Hugging Face hub id instead.")


def _models_dir(name, preset, source, probe_file, tried) -> Located | None:
    root = os.environ.get("DHANDLES_MODELS_DIR")
    if not root:
        return None
    ids = preset.ids if preset else (source,)
    for repo_id in ids:
        for candidate in (Path(root) / repo_id, Path(root) / repo_id.split("/")[-1]):
            if candidate.is_dir():
                return Located(name, "folder", str(candidate), tuple(tried))
    for file_name in (preset.single_files if preset else ()):
        if (Path(root) / file_name).is_file():
            return Located(name, "single_file", str(Path(root) / file_name), tuple(tried))
    names = [*ids, *(preset.single_files if preset else ())]
    tried.append(f"DHANDLES_MODELS_DIR ({root}): no folder or file named {', '.join(names)}")
    return None


def _hf_cache(name, preset, source, probe_file, tried) -> Located | None:
    ids = preset.ids if preset else (source,)
    for repo_id in ids:
        if cached(repo_id, probe_file):
            return Located(name, "cache", repo_id, tuple(tried))
    tried.append(f"the Hugging Face cache ({hf_cache_dir()}) under {', '.join(ids)}: not there")
    return None


def _hub(name, ids, tried) -> Located | None:
    refusal = hub.offline_reason()
    if refusal is None and not hub.hub_reachable():
        refusal = f"the network is unreachable (no connection to {hub.endpoint()})"
    if refusal is not None:
        tried.append(f"the hub ({', '.join(ids)}): not asked, {refusal}")
        return None
    for repo_id in ids:
        answer = hub_has(repo_id)
        if answer is True:
            return Located(name, "hub", repo_id, tuple(tried))
        tried.append(f"the hub ({hub.endpoint()}) '{repo_id}': {answer}")
    return None


def hub_has(repo_id: str):
    """True when the hub serves ``repo_id``, else why not (a sentence)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    try:
        HfApi(endpoint=hub.endpoint()).model_info(repo_id)
        return True
    except GatedRepoError:
        return "gated: accept its licence on the hub and log in with `hf auth login`"
    except RepositoryNotFoundError:
        return "not found (withdrawn, renamed or private)"
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        return "not found" if status in (401, 404) else f"the hub answered {status or error}"
    except OSError as error:
        return f"could not be reached ({error})"


def cached(repo_id: str, probe_file: str) -> bool:
    """Whether the local Hugging Face cache holds ``probe_file`` of ``repo_id``."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return False
    return isinstance(try_to_load_from_cache(repo_id, probe_file), str)


def hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return os.path.expanduser("~/.cache/huggingface/hub")


def size_on_disk(located: Located) -> int:
    """Bytes the weights take locally (0 for a hub source not downloaded yet)."""
    if located.kind in ("folder", "single_file"):
        path = Path(located.where)
        return path.stat().st_size if path.is_file() else sum(
            f.stat().st_size for f in path.rglob("*") if f.is_file())
    if located.kind == "cache":
        folder = Path(hf_cache_dir()) / ("models--" + located.where.replace("/", "--")) / "blobs"
        return sum(f.stat().st_size for f in folder.glob("*") if f.is_file()) if folder.is_dir() else 0
    return 0


def ensure_local(located: Located, what: str) -> Located:
    """``located`` itself when its weights are on disk; for a hub source, download them first (byte progress to
    the loading job, ``engine.models.progress``), so a load never sits silent through gigabytes."""
    if located.local:
        return located
    from . import progress
    from .download import download

    progress.report("download", 0, None, f"downloading {located.name} from {located.where}")
    download(located.name, (located.where,), what,
             lambda done, total, text: progress.report("download", done, total, text), progress.check_cancelled)
    return Located(located.name, "cache", located.where, located.tried)
