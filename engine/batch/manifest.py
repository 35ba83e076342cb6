"""What a batch runs: ``BatchJob``s read from a JSON-lines manifest, or made from sample folders in the official
layout (``input.png``, ``mask.png``, ``depth.exr``, optional ``bg_depth.exr``, ``prompt.txt``, ``transforms.json``).

A manifest has one job per line (``job_params`` says what a line holds); blank lines and lines starting with ``#``
are skipped; ids must be unique (default ``line-<n>``). A folder is one sample, or a folder of samples; ``edit``
names one edit of each sample's ``transforms.json`` or ``all``; its jobs are ``<sample>-<edit>``, written to
``OUT/<edit>.png`` for one sample and ``OUT/<sample>/<edit>.png`` for several (as ``python -m engine geometry``).
Jobs keep the manifest's order, except that a photo's jobs are grouped (``group``: its photo), so that a photo's
inversion is computed once and reused by its other edits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadParams, InputNotFound
from ..io.safe_write import clash, sample_files
from .job_params import JobDefaults, edit_params, split_entry


@dataclass
class BatchJob:
    id: str
    params: dict  # the full params of the engine's ``edit`` job
    group: str  # the photo: a photo's jobs run on one engine, one after another

    def frames(self) -> list[tuple[object, str]]:
        """(transform, output) of each image the job writes."""
        if "transforms" in self.params:
            return list(zip(self.params.get("transforms") or [], self.params.get("outputs") or [], strict=False))
        return [(self.params.get("transform"), self.params.get("output"))]


def read_jobs(source, out_dir, defaults: JobDefaults | None = None, edit: str | None = None) -> list[BatchJob]:
    """The jobs of a manifest file or sample folder(s), grouped by photo."""
    source, out_dir, defaults = Path(source), Path(out_dir), defaults or JobDefaults()
    if source.is_dir():
        jobs = _sample_jobs(source, out_dir, defaults, edit or "all")
    elif source.is_file():
        if edit is not None:
            raise BadParams("--edit names edits of sample folders; a manifest names its own edits.")
        jobs = _manifest_jobs(source, out_dir, defaults)
    else:
        raise InputNotFound(f"The manifest '{source}' does not exist: give a JSON-lines file or a sample folder.")
    _check_distinct_outputs(jobs)
    return group_by_photo(jobs)


def _check_distinct_outputs(jobs: list[BatchJob]) -> None:
    """Two jobs writing one image would silently keep only the last: refused before any work."""
    writers: dict[str, str] = {}
    for job in jobs:
        for _, output in job.frames():
            if output in writers and writers[output] != job.id:
                raise BadParams(f"Jobs {writers[output]!r} and {job.id!r} both write '{output}'; give each its own "
                                "output.")
            writers[output] = job.id


def group_by_photo(jobs: list[BatchJob]) -> list[BatchJob]:
    order: dict[str, list[BatchJob]] = {}
    for job in jobs:
        order.setdefault(job.group, []).append(job)
    return [job for group in order.values() for job in group]


def _manifest_jobs(path: Path, out_dir: Path, defaults: JobDefaults) -> list[BatchJob]:
    jobs, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path.name} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise BadParams(f"{where} is not JSON ({error.msg}); each line must be one job object.") from None
        job_id, params = split_entry(entry, where)
        job_id = str(job_id) if job_id is not None else f"line-{number}"
        if job_id in seen or not _safe_id(job_id):
            raise BadParams(f"{where}: the id {job_id!r} is repeated or not a plain name (letters, digits, - _ .).")
        seen.add(job_id)
        params = edit_params(params, defaults, job_id, path.parent, out_dir, where)
        jobs.append(BatchJob(job_id, params, str(params.get("photo"))))
    if not jobs:
        raise BadParams(f"The manifest '{path}' holds no jobs.")
    return jobs


def _safe_id(text: str) -> bool:
    return bool(text) and all(c.isalnum() or c in "-_." for c in text) and not text.startswith(".")


def sample_folders(folder: Path) -> list[Path]:
    """The folder itself when it is a sample, else its sample subfolders (those with a transforms.json)."""
    if (folder / "transforms.json").is_file():
        return [folder]
    samples = sorted(path for path in folder.iterdir() if (path / "transforms.json").is_file())
    if not samples:
        raise InputNotFound(f"'{folder}' is neither a sample folder (input.png, mask.png, depth.exr, "
                            "transforms.json) nor a folder of them.")
    return samples


def _sample_jobs(folder: Path, out_dir: Path, defaults: JobDefaults, edit: str) -> list[BatchJob]:
    samples = sample_folders(folder)
    jobs = []
    for sample in samples:
        out = out_dir if len(samples) == 1 else out_dir / sample.name
        for name, params in sample_edits(sample, edit).items():
            job_id = f"{sample.name}-{name}"
            params = edit_params(params, defaults, job_id, sample, out, f"{sample / 'transforms.json'} {name}")
            params["output"] = str((out / f"{name}.png").resolve())
            problem = clash({"image": out / f"{name}.png", "report": out / f"{name}.json"}, sample_files(sample))
            if problem:
                raise BadParams(f"Edit {name!r} of {sample}: {problem}")
            jobs.append(BatchJob(job_id, params, str(params["photo"])))
    return jobs


def sample_edits(sample: Path, edit: str) -> dict[str, dict]:
    """``{edit name: edit job params}`` of a sample folder: the official camera (55 degrees across the image's
    outer pixel centres) and each edit as a 4x4 engine-frame transform about the object's centroid."""
    from .. import io
    from ..diffusion.inputs import transform_from_json
    from ..errors import EngineError
    from ..geometry import Camera, GeometryError

    try:
        transforms = json.loads((sample / "transforms.json").read_text())
        names = list(transforms) if edit == "all" else [edit]
        if any(name not in transforms for name in names):
            raise BadParams(f"No edit {edit!r} in {sample / 'transforms.json'}; it has: {', '.join(transforms)}.")
        shape = io.photo_shape(sample / "input.png")
        width, height = shape.width, shape.height
        mask = io.read_mask(sample / "mask.png", shape, "mask")
        depth = io.read_depth(sample / "depth.exr", shape, "depth map")
        camera = Camera.official(width, height)
        prompt_file, bg_depth = sample / "prompt.txt", sample / "bg_depth.exr"
        base = {"photo": "input.png", "mask": "mask.png", "depth": "depth.exr", "camera": camera.to_dict(),
                "prompt": prompt_file.read_text().strip() if prompt_file.is_file() else ""}
        if bg_depth.is_file():
            base["bg_depth"] = "bg_depth.exr"
        return {name: dict(base, transform=transform_from_json(transforms[name], "official", depth, mask,
                                                               camera).tolist()) for name in names}
    except BadParams:
        raise
    except (OSError, ValueError, KeyError, GeometryError, EngineError) as error:
        raise BadParams(f"The sample '{sample}' cannot be read: {error}") from None
