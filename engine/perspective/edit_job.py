"""What an edit job does with its ``perspective`` parameter: the guidance term to plug into the sampler, and the
figures its report carries.

The parameter is optional; its contract, whoever sends it (``perspective/vanishing_points.perspective_job_params``
builds it from a Blender scene, ``python -m engine edit --vp/--vps`` from the command line):
``{"vps": [[x, y, w], ...], "width": W, "height": H, "labels": [...], "guidance": {...} (optional)}``, VPs in
pixels of a W x H image of the photo's view. Without it an edit has no perspective guidance and its report no
``perspective`` entry. With it, the report's ``perspective`` entry: the LSD inlier shares, median
error and segment count of the edited image, the reference ``loss`` against the original photo (pixel-aligned:
it measures how much the edit changed the perspective structure), and the guidance term's settings and cost.
"""

from __future__ import annotations

from .guidance import MODES, PerspectiveGuidance, edit_figures, from_params, scale_vps


def check_params(perspective) -> None:
    """Raise ValueError naming what is wrong with an edit job's ``perspective`` parameter: the checks of
    ``engine.params.Perspective``, the one home of the parameter's contract."""
    from ..errors import BadParams
    from ..params import Perspective

    if perspective is None:
        return
    try:
        Perspective.from_json(perspective, "perspective")
    except BadParams as error:
        raise ValueError(str(error)) from None


def guidance_terms(params: dict, photo=None) -> list:
    """The extra guidance terms (``[]`` or one ``PerspectiveGuidance``) for ``Editor.edit(extra_terms=...)``.
    ``photo`` (HxWx3) is the reference of the ``reference`` mode."""
    perspective = params.get("perspective")
    check_params(perspective)
    term = from_params(perspective, reference=photo)
    return [term] if term is not None else []


def report_figures(params: dict, edited_image, photo=None, terms=()) -> dict | None:
    """The report's ``perspective`` entry for the edited full-size image, or None without VPs. Call it once per
    edit (frame): it restarts the guidance term's cost counters."""
    perspective = params.get("perspective")
    if not perspective:
        return None
    term = next((t for t in terms if isinstance(t, PerspectiveGuidance)), None)
    figures = edit_figures(edited_image, perspective, reference=photo, term=term)
    if term is not None:
        term.reset_stats()  # the next frame's report counts its own cost
    return figures


def build_params(width: int, height: int, vps=(), vps_file=None, weight: float | None = None,
                 mode: str | None = None) -> dict | None:
    """The ``perspective`` parameter for a W x H photo from command-line options: ``vps`` (rows (x, y, w) in the
    photo's pixels) plus those of ``vps_file`` (a vps.json; rescaled from its ``width``/``height`` when it gives
    them), and guidance with ``weight`` (default 1.0) and ``mode`` (default no_reference) when either is given.
    None without any VP. Raises ValueError naming what is wrong."""
    from .vanishing import read_vps_file

    rows = [list(v) for v in vps]
    if vps_file is not None:
        data = read_vps_file(vps_file)
        size = (data["width"] or width, data["height"] or height)
        rows += scale_vps(data["vps"], size, (width, height)).tolist()
    if weight is None and mode is None:
        return {"vps": rows, "width": width, "height": height} if rows else None
    if not rows:
        raise ValueError("Perspective guidance needs vanishing points: give --vp X,Y (repeatable) or --vps FILE.")
    if mode is not None and mode not in MODES:
        raise ValueError(f"Unknown perspective guidance mode {mode!r}; use one of {', '.join(MODES)}.")
    return {"vps": rows, "width": width, "height": height,
            "guidance": {"weight": 1.0 if weight is None else float(weight), "mode": mode or MODES[0]}}
