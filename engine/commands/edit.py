"""``python -m engine edit``: one Diffusion Handles edit from the command line, writing the image and its report.

From a photogen-style sample folder and a named edit:
    python -m engine edit --sample ../shared/photogen/chair --edit edit_001 --out out.png [--report r.json]
From files (a 4x4 .npy/.json in --frame, or an official-format {translation, rotation_axis, rotation_angle}):
    python -m engine edit --photo p.png --mask m.png --depth d.exr --transform t.json --prompt "..." --out out.png
``--model`` takes a preset (sd2-depth, tiny), a hub id or a local folder; ``--set KEY=VALUE`` overrides any
``EditSettings`` field (e.g. ``--set guided_steps=20``). The report defaults to OUT with a .json suffix. Before
any work, the image and the report are checked against every input (every file of the sample folder, or the given
files) and each other: the command refuses rather than overwrite one.
``--vp``/``--vps`` (+ ``--perspective-weight``/``--perspective-mode``) and ``--lora``/``--lora-scale``: see
``_edit_options``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from . import _edit_options
from ._single_option import Once

log = logging.getLogger(__name__)

NAME = "edit"
HELP = "Edit a photo with Diffusion Handles (3D transform of an object) and write the image and a JSON report."


def add_arguments(parser) -> None:
    source = parser.add_argument_group("input (a sample folder, or photo/mask/depth/transform files)")
    source.add_argument("--sample", action=Once, metavar="DIR",
                        help="folder with input.png, mask.png, depth.exr, transforms.json")
    source.add_argument("--edit", action=Once, metavar="NAME",
                        help="edit name in the sample's transforms.json (e.g. edit_001), or 'all' (then --out is a "
                        "folder for <edit>.png and .json, as for the geometry command)")
    source.add_argument("--photo", action=Once, metavar="FILE")
    source.add_argument("--mask", action=Once, metavar="FILE", help="object mask, white on black (or a cut-out's "
                        "alpha), the photo's size")
    source.add_argument("--depth", action=Once, metavar="FILE", help="metric z-depth at the photo's size: .exr, .npy "
                        "or a 16-bit PNG in millimetres")
    source.add_argument("--bg-depth", action=Once, metavar="FILE",
                        help="optional depth of the background without the object")
    source.add_argument("--transform", action=Once, metavar="FILE",
                        help="4x4 (.npy or .json) or official-format edit (.json); with --edit, the named entry")
    source.add_argument("--frame", action=Once, default="engine", choices=["engine", "blender", "official"],
                        help="frame a 4x4 transform is given in (default engine = OpenCV camera frame)")
    source.add_argument("--camera", action=Once, default="official", choices=["official", "blender"],
                        help="convention of --fov, across the longer side: official = between the outermost pixel "
                             "centres (the default of every door, docs/geometry.md), blender = between the pixel edges")
    source.add_argument("--fov", action=Once, type=float, default=55.0, help="field of view in degrees (default 55)")
    source.add_argument("--prompt", action=Once, default=None,
                        help="caption of the whole photo (a sample's prompt.txt otherwise)")
    parser.add_argument("--out", action=Once, required=True, metavar="OUT.png", help="edited image to write")
    parser.add_argument("--report", action=Once, metavar="R.json", help="report to write (default: OUT with .json)")
    parser.add_argument("--cache-dir", action=Once, metavar="DIR", help="inversion cache folder (default ~/.cache/...)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the inversion cache")
    _edit_options.add_model_arguments(parser)
    _edit_options.add_arguments(parser)


def settings_from_args(args):
    """The ``EditSettings`` of ``--set``, ``--inversion``, ``--steps`` and ``--resolution``, checked as the edit
    job's ``settings`` parameter (``BadParams`` naming the setting)."""
    from ..diffusion.settings import EditSettings
    from ..params.parts import SettingsOverrides

    return EditSettings.from_dict(SettingsOverrides()(_edit_options.settings_values(args), "settings"))


def request_from_args(args):
    from ..diffusion.inputs import read_sample, request_from_files

    if args.sample:
        if not args.edit:
            raise ValueError("--sample needs --edit NAME (an entry of the sample's transforms.json).")
        request = read_sample(args.sample, args.edit)
        if args.prompt is not None:
            request.prompt = args.prompt
        return request
    missing = [flag for flag, value in (("--photo", args.photo), ("--mask", args.mask), ("--depth", args.depth),
                                        ("--transform", args.transform)) if not value]
    if missing:
        raise ValueError(f"Give --sample DIR --edit NAME, or all of --photo, --mask, --depth, --transform "
                         f"(missing: {', '.join(missing)}).")
    return request_from_files(args.photo, args.mask, args.depth, args.transform, prompt=args.prompt or "",
                              bg_depth=args.bg_depth, fov_deg=args.fov, camera=args.camera, frame=args.frame,
                              edit_name=args.edit)


def check_input_paths(args) -> None:
    """Each given input file exists and its path is usable (``engine.io.input_path``), before anything else."""
    from ..io import input_path

    for value, what in ((args.photo, "photo"), (args.mask, "mask"), (args.depth, "depth map"),
                        (args.bg_depth, "background depth map"), (args.transform, "transform file")):
        if value:
            input_path(value, what)


def output_paths(args) -> tuple[Path, Path]:
    """(image, report) to write, after checking that neither overwrites an input (any file of --sample, --photo,
    --mask, --depth, --bg-depth, --transform) or the other; ValueError saying which clashes."""
    from ..io.safe_write import clash

    out = Path(args.out)
    report = Path(args.report) if args.report else out.with_suffix(".json")
    inputs = _input_files(args)
    problem = clash({"--out image": out, "--report" if args.report else "default report (--out with .json)": report},
                    inputs)
    if problem:
        raise ValueError(problem)
    return out, report


def _input_files(args) -> dict:
    """Every input file the arguments name: ``{label: path}``."""
    from ..io.safe_write import sample_files

    inputs = sample_files(args.sample) if args.sample else {}
    inputs.update({f"{flag} file": value for flag, value in (
        ("--photo", args.photo), ("--mask", args.mask), ("--depth", args.depth), ("--bg-depth", args.bg_depth),
        ("--transform", args.transform)) if value})
    return inputs


def run(args) -> int:
    if args.edit == "all":
        from ._edit_all import run_all

        return run_all(args)
    from ..errors import EngineError
    from ..geometry import GeometryError
    from ..models import ModelMissingError
    from ..params.checks import Device

    try:
        check_input_paths(args)
        if args.device is not None:
            Device()(args.device, "--device")
        out, report_path = output_paths(args)
        settings = settings_from_args(args)
        request = request_from_args(args)
        from ..diffusion.cache import InversionCache
        from ..diffusion.pipeline import Editor
        from ..diffusion.report import write_report
        from ..models import load_diffusion
        from ..perspective import edit_job, edit_lora

        perspective, lora = _edit_options.from_args(args, request.image.shape[1], request.image.shape[0])
        models = load_diffusion(args.model, device=args.device, dtype=args.dtype)
        edit_lora.apply(models, lora)
        editor = Editor(models, settings, InversionCache(args.cache_dir, enabled=not args.no_cache))
        params = {"perspective": perspective}
        terms = edit_job.guidance_terms(params, photo=request.image)
        result = editor.edit(request, progress=_progress, extra_terms=terms)
        figures = edit_job.report_figures(params, result.image, photo=request.image, terms=terms)
        if figures is not None:
            result.report["perspective"] = figures
        result.report["lora"] = edit_lora.report_entry(models)
        result.report["inputs"] = _inputs_section(args, request, settings, out)
    except (EngineError, ModelMissingError, GeometryError, ValueError, FileNotFoundError, KeyError) as error:
        log.error("error: %s", error)
        return 1
    except RuntimeError as error:  # out of memory after every fallback: the message says what to do
        log.error("error: %s", error)
        return 1
    from PIL import Image

    from ..io.safe_write import write_atomic

    protected = {label: value for label, value in _input_files(args).items() if value}
    try:
        write_atomic(out, Image.fromarray(result.image).save, protected)
        report_path = write_atomic(report_path, lambda path: write_report(result.report, path), protected)
    except (OSError, EngineError) as error:
        log.error("error: %s", error)
        return 1
    if result.report.get("memory_note"):
        log.warning("note: %s", result.report["memory_note"])
    stages = ", ".join(f"{k} {v['seconds']:.2f}s" for k, v in result.report["stages"].items())
    sys.stdout.write(f"wrote {out} and {report_path}: cache {result.report['cache']['inversion']}, "
                     f"{result.report['unet_evals']} UNet evals, {stages}\n")
    return 0


def _inputs_section(args, request, settings, out) -> dict:
    """The report's ``inputs`` (as the edit job writes it): the files this edit read, and what it was given."""
    from ..jobs._edit_inputs import inputs_section

    sample = Path(args.sample) if args.sample else None
    files = {"photo": sample / "input.png", "mask": sample / "mask.png", "depth": sample / "depth.exr",
             "bg_depth": sample / "bg_depth.exr" if request.bg_depth is not None else None} if sample else {
        "photo": args.photo, "mask": args.mask, "depth": args.depth, "bg_depth": args.bg_depth}
    given = {key: str(value) for key, value in files.items() if value}
    given.update(prompt=request.prompt, camera=request.camera.to_dict(), model=args.model or "sd2-depth",
                 settings=settings.to_dict())
    section = inputs_section(given, request.transform, out)
    if args.transform or sample:
        section["transform_source"] = {"file": str(Path(args.transform or sample / "transforms.json").resolve()),
                                       "edit": args.edit}
    return section


def _progress(stage: str, step: int, total: int, preview=None) -> None:  # no thumbnails on a terminal
    if step == total or step % 10 == 0:
        log.info("  %s %s/%s", stage, step, total)
