"""One parameter class per job (``JOB`` is the job's name): what ``python -m engine job NAME --params`` and the
server accept, checked once by the job runner; each job's ``run`` receives its object."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ..errors import BadParams
from .base import Params, param
from .checks import (
    AbsolutePath,
    Boolean,
    Device,
    Integer,
    JsonValue,
    ListOf,
    Nested,
    Number,
    Text,
)
from .parts import (
    BackgroundCompletion,
    DiffusionOptions,
    Frames,
    Intrinsics,
    ObjectMasks,
    Perspective,
    PhotoFiles,
)


@dataclasses.dataclass(kw_only=True)
class SceneParams(BackgroundCompletion, ObjectMasks):
    """``scene``: the meshes Blender builds its scene from, out of a photo, its depth and an object mask."""

    JOB: ClassVar[str] = "scene"
    fov: float | None = param(Number(1.0, 170.0), None, doc="degrees across the larger side, outermost pixel "
                              "centres; null: from the photo's EXIF, else 55")
    output_dir: str | None = param(AbsolutePath(), None, doc="where the outputs go (default: the job's workdir)")
    max_grid: int = param(Integer(2, 16384), 1024, doc="most cells on the long side of the background mesh")
    object_grid: int = param(Integer(2, 16384), 512, doc="most cells across the object's bounding box")
    tear: float = param(Number(0.01, 1.0), 0.1, doc="relative depth jump between cells at which the meshes split "
                        "(the engine surface's discontinuity, see geometry/surface_mesh.py)")
    hole_dilate: int | None = param(Integer(0, 256), None, doc="pixels the background depth's hole extends "
                                    "beyond the mask (default: the official 15 at 512, scaled to the photo)")


@dataclasses.dataclass(kw_only=True)
class PreviewParams(BackgroundCompletion, Frames, ObjectMasks):
    """``preview``: the photo after a 3D edit, by reprojection alone (no diffusion model)."""

    JOB: ClassVar[str] = "preview"
    camera: Intrinsics = param(  # noqa: RUF009
        Nested(Intrinsics), doc="the scene's intrinsics, at the photo's size")
    allow_out_of_view: bool = param(Boolean(), False, doc="a frame whose object leaves the view shows the "
                                    "background (else an error)")
    save_arrays: bool = param(Boolean(), False, doc="also write each frame's correspondences and target mask")

    def check_together(self, where: str) -> None:
        super().check_together(where)
        self.check_objects(self.object_count())


@dataclasses.dataclass(kw_only=True)
class EditParams(DiffusionOptions, Frames, ObjectMasks):
    """``edit``: the Diffusion Handles edit, re-rendered by the depth-conditioned diffusion model."""

    JOB: ClassVar[str] = "edit"
    perspective: Perspective | None = param(  # noqa: RUF009
        Nested(Perspective), None,
        doc="vanishing points of the photo's view: the report's perspective figures and optional guidance")

    def check_together(self, where: str) -> None:
        super().check_together(where)
        self.check_objects(self.object_count())
        for index, (_, output) in enumerate(self.frame_list()):
            if not output.lower().endswith(".png"):
                name = "output" if self.transforms is None else f"outputs[{index}]"
                raise BadParams(f"'{name}' must be a .png file, not {output!r}.")


@dataclasses.dataclass(kw_only=True)
class InvertParams(DiffusionOptions, PhotoFiles):
    """``invert``: invert a photo into the cache before any edit, so that an edit costs only the guided pass."""

    JOB: ClassVar[str] = "invert"


@dataclasses.dataclass(kw_only=True)
class EstimateDepthParams(Params):
    """``estimate_depth``: metric depth for a photo that has none, from a monocular estimator."""

    JOB: ClassVar[str] = "estimate_depth"
    photo: str = param(AbsolutePath(), doc="the photo")
    output: str | None = param(AbsolutePath((".exr", ".npy")), None, doc="the depth file to write (default: "
                               "a fresh one in the job's workdir)")
    model: str | None = param(Text(non_empty=True), None, doc="depth preset, hub id or folder (default "
                              "depth-anything-metric-indoor)")
    device: str | None = param(Device(), None, doc="torch device (default: the best available)")


@dataclasses.dataclass(kw_only=True)
class SegmentParams(Params):
    """``segment``: a mask of the object a text prompt names."""

    JOB: ClassVar[str] = "segment"
    photo: str = param(AbsolutePath(), doc="the photo")
    prompt: str = param(Text(non_empty=True), doc="the object's name, e.g. \"the chair\"")
    output: str | None = param(AbsolutePath((".png",)), None, doc="the mask to write, white = object (default: "
                               "a fresh one in the job's workdir)")
    threshold: float = param(Number(0.0, 1.0, open_low=True, open_high=True), 0.4, doc="probability above "
                             "which a pixel is the object")
    model: str | None = param(Text(non_empty=True), None, doc="segmentation model (default clipseg)")
    device: str | None = param(Device(), None, doc="torch device (default: the best available)")


@dataclasses.dataclass(kw_only=True)
class InpaintParams(Params):
    """``inpaint``: complete a photo where a mask is, with a diffusion inpainting model."""

    JOB: ClassVar[str] = "inpaint"
    photo: str = param(AbsolutePath(), doc="the photo")
    mask: str = param(AbsolutePath(), doc="white where to complete: an image or an NPY, the photo's size")
    output: str = param(AbsolutePath((".png",)), doc="the PNG to write")
    prompt: str = param(Text(), "", doc="what the completed region shows")
    model: str | None = param(Text(non_empty=True), None, doc="inpainting preset (sd2-inpainting, "
                              "tiny-inpainting), hub id or folder")
    steps: int = param(Integer(1, 1000), 30, doc="denoising steps")
    seed: int = param(Integer(0, 2**63 - 1), 0, doc="random seed")
    resolution: int = param(Integer(64, 4096), 512, doc="working size of the longer side")
    dilate: int = param(Integer(0, 256), 0, doc="pixels the hole extends beyond the mask")
    device: str | None = param(Device(), None, doc="torch device (default: the best available)")
    dtype: str | None = param(Text(choices=("fp32", "fp16", "bf16")), None, doc="weights' precision")

    def completion_options(self) -> dict:
        return {"prompt": self.prompt, "steps": self.steps, "seed": self.seed, "resolution": self.resolution}


@dataclasses.dataclass(kw_only=True)
class PingParams(Params):
    """``ping``: check that the engine runs jobs; exercise progress and cancellation without a model."""

    JOB: ClassVar[str] = "ping"
    steps: int = param(Integer(0, 100_000), 0, doc="steps of ``sleep`` seconds, with progress and cancel")
    sleep: float = param(Number(0.0, 60.0), 0.0, doc="seconds per step")
    echo: object = param(JsonValue(finite=False), None, doc="returned unchanged (NaN and infinities as null)")
    device: bool = param(Boolean(), False, doc="also import torch and report the accelerator")


MODEL_KINDS = ("diffusion", "inpainting", "depth", "segmentation")


@dataclasses.dataclass(kw_only=True)
class ModelRequest(Params):
    """One model the settings need: its kind, and which (a preset, hub id or folder)."""

    kind: str = param(Text(choices=MODEL_KINDS), doc="what the model is for")
    model: str | None = param(Text(), None, doc="preset, hub id or folder; empty or null: the kind's default")


@dataclasses.dataclass(kw_only=True)
class DownloadModelsParams(Params):
    """``download_models``: make the models the settings need available locally, downloading what is missing."""

    JOB: ClassVar[str] = "download_models"
    models: tuple = param(ListOf(Nested(ModelRequest), 1, 16), doc="the models to check or fetch")
    check_only: bool = param(Boolean(), False, doc="report where each model is; download nothing")


PARAMS_BY_JOB: dict[str, type[Params]] = {cls.JOB: cls for cls in (
    SceneParams, PreviewParams, EditParams, InvertParams, EstimateDepthParams, SegmentParams, InpaintParams,
    PingParams, DownloadModelsParams)}


def parse(job: str, obj) -> Params:
    """The checked parameters of job ``job`` (``BadParams`` naming the field otherwise)."""
    cls = PARAMS_BY_JOB.get(job)
    if cls is None:
        raise BadParams(f"The job {job!r} has no parameter class in engine/params/jobs.py.")
    return cls.from_json(obj)
