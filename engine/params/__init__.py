"""Typed job parameters: one dataclass per job (``jobs.py``) built from shared parts (``parts.py``), each with
``from_json``/``to_json`` that do every check and raise ``BadParams`` naming the field (``perspective.vps[1]``).

Standard library only, cheap to import: the Blender extension builds these objects and sends ``to_json()``; the
engine's job runner parses the JSON once with :func:`parse` and hands each job's ``run`` its object. Paths are
checked as strings (absolute, no NUL); reading the files is ``engine/io``'s work. ``python -m engine.params.docs``
writes the parameter tables of ``docs/protocol.md`` from these classes.
"""

from .base import Params, param
from .jobs import (
                   PARAMS_BY_JOB,
                   DownloadModelsParams,
                   EditParams,
                   EstimateDepthParams,
                   InpaintParams,
                   InvertParams,
                   PingParams,
                   PreviewParams,
                   SceneParams,
                   SegmentParams,
                   parse,
)
from .parts import (
                   BackgroundCompletion,
                   DiffusionOptions,
                   Frames,
                   Intrinsics,
                   Lora,
                   ObjectMasks,
    OfficialEdit,
                   Perspective,
                   PerspectiveGuidance,
                   PhotoFiles,
)

__all__ = ["PARAMS_BY_JOB", "BackgroundCompletion", "DiffusionOptions", "DownloadModelsParams", "EditParams",
           "EstimateDepthParams", "Frames", "InpaintParams", "Intrinsics", "InvertParams", "Lora", "ObjectMasks",
           "OfficialEdit", "Params", "Perspective", "PerspectiveGuidance", "PhotoFiles", "PingParams", "PreviewParams",
           "SceneParams", "SegmentParams", "param", "parse"]
