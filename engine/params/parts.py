"""The parts several jobs' parameters share: the photo's files, the camera, the frames of an edit, perspective,
a LoRA, edit settings overrides, the diffusion options and the background completion options."""

from __future__ import annotations

import dataclasses

from ..errors import BadParams
from .base import Params, param
from .checks import (
    AbsolutePath,
    Boolean,
    Check,
    Device,
    Integer,
    JsonValue,
    ListOf,
    Nested,
    Number,
    ObjectTransforms,
    Text,
    refuse,
)

DTYPES = ("fp32", "fp16", "bf16")
PERSPECTIVE_MODES = ("no_reference", "reference")  # engine/perspective/guidance.py MODES (a test keeps them equal)
MAX_FRAMES = 100_000
MAX_OBJECTS = 64  # objects cut from one photo: the ``mask`` object and up to 63 ``masks``


@dataclasses.dataclass(kw_only=True)
class PhotoFiles(Params):
    """The photo and the files that describe it."""

    photo: str = param(AbsolutePath(), doc="the photo (PNG, JPEG, TIFF, WebP...)")
    depth: str = param(AbsolutePath(), doc="its metric depth: EXR, NPY or 16-bit PNG in mm")
    mask: str = param(AbsolutePath(), doc="the object's mask: an image, white = object (alpha when it has one), "
                      "or an NPY")
    bg: str | None = param(AbsolutePath(), None, doc="the photo without the object")
    bg_depth: str | None = param(AbsolutePath(), None, doc="the depth of the photo without the object")

    def input_files(self) -> dict[str, str]:
        """{parameter name: path} of the photo's files that are given."""
        return {key: getattr(self, key) for key in ("photo", "depth", "mask", "bg", "bg_depth")
                if getattr(self, key, None)}


@dataclasses.dataclass(kw_only=True)
class ObjectMasks(PhotoFiles):
    """The photo's files with the masks of further objects: each its own mesh (``scene``) and its own transform in
    every frame (``preview``, ``edit``), all cut from the one background."""

    masks: tuple | None = param(ListOf(AbsolutePath(), 1, MAX_OBJECTS - 1), None,
                                doc="the masks of further objects, as ``mask``; each frame's transform is then a "
                                "list of one 4x4 per object, the ``mask`` object first")

    def input_files(self) -> dict[str, str]:
        """{parameter name: path} of the photo's files, ``masks[i]`` numbered."""
        files = super().input_files()
        files.update({f"masks[{index}]": path for index, path in enumerate(self.masks or ())})
        return files

    def object_count(self) -> int:
        return 1 + len(self.masks or ())


@dataclasses.dataclass(kw_only=True)
class Intrinsics(Params):
    """Pinhole intrinsics in pixels (engine frame), the ones the scene was built with."""

    width: int = param(Integer(1, 65536), doc="image width in pixels")
    height: int = param(Integer(1, 65536), doc="image height in pixels")
    fx: float = param(Number(0.0, 1e9, open_low=True), doc="focal length in pixels, x")
    fy: float = param(Number(0.0, 1e9, open_low=True), doc="focal length in pixels, y")
    cx: float = param(Number(-1e9, 1e9), doc="principal point x in pixels")
    cy: float = param(Number(-1e9, 1e9), doc="principal point y in pixels")


@dataclasses.dataclass(kw_only=True)
class Frames(Params):
    """The edit's frames: ``transform`` and ``output`` for one, or ``transforms`` and ``outputs`` for several."""

    transform: tuple | None = param(ObjectTransforms(MAX_OBJECTS), None,
                                    doc="4x4 row-major engine-frame transform of the object (one per object)")
    output: str | None = param(AbsolutePath(), None, doc="the image to write for ``transform``")
    transforms: tuple | None = param(ListOf(ObjectTransforms(MAX_OBJECTS), 1, MAX_FRAMES), None,
                                     doc="one transform per frame (instead of ``transform``)")
    outputs: tuple | None = param(ListOf(AbsolutePath(), 1, MAX_FRAMES), None,
                                  doc="one image path per transform (instead of ``output``)")

    def check_together(self, where: str) -> None:
        single = self.transform is not None or self.output is not None
        several = self.transforms is not None or self.outputs is not None
        if single and several:
            raise BadParams("Give 'transform' and 'output' for one frame, or 'transforms' and 'outputs' for "
                            "several, not both.")
        if several and (self.transforms is None or self.outputs is None
                        or len(self.transforms) != len(self.outputs)):
            raise BadParams("'transforms' and 'outputs' must be lists of the same, non-zero length.")
        if not several and (self.transform is None or self.output is None):
            missing = "transform" if self.transform is None else "output"
            raise BadParams(f"'{missing}' is required: the edit's 4x4 transform and the image to write (or "
                            "'transforms' and 'outputs' for several frames).")

    def check_objects(self, count: int) -> None:
        """Each frame's transform as ``count`` objects need: a 4x4 (or a list of one) for one object, a list of
        ``count`` 4x4s for several."""
        for index, (transform, _) in enumerate(self.frame_list()):
            found = len(transform) if ObjectTransforms.is_several(transform) else 1
            if found != count and not (count == 1 and found == 1):
                name = "transform" if self.transforms is None else f"transforms[{index}]"
                raise BadParams(f"'{name}' must be a list of {count} 4x4 matrices, one per object (the 'mask' "
                                f"object first, then those of 'masks'), not {found}.")

    def frame_list(self) -> list[tuple[tuple, str]]:
        """[(transform, output path)] of every frame."""
        if self.transforms is not None:
            return list(zip(self.transforms, self.outputs, strict=True))
        return [(self.transform, self.output)]


@dataclasses.dataclass(kw_only=True)
class PerspectiveGuidance(Params):
    """Guidance of sampling towards the vanishing points (``engine/perspective/guidance.py``)."""

    weight: float = param(Number(0.0, 1e6), 1.0, doc="strength of the term; 0: no guidance")
    mode: str = param(Text(choices=PERSPECTIVE_MODES), PERSPECTIVE_MODES[0],
                      doc="loss: edges towards the VPs, or the paper's loss against the photo")
    t_range: tuple = param(ListOf(Number(0.0, 1000.0), 2, 2), (0.0, 1000.0),
                           doc="inclusive range of scheduler timesteps where it applies")
    every: int = param(Integer(1, 1000), 1, doc="applies every N-th sampling step")
    num_lines: int = param(Integer(1, 100_000), 250, doc="line segments the loss uses")


@dataclasses.dataclass(kw_only=True)
class Perspective(Params):
    """Vanishing points of the photo's view (``engine/perspective/edit_job.py``)."""

    vps: tuple = param(ListOf(ListOf(Number(), 2, 3), 1, 64), doc="[x, y] or [x, y, w] rows in pixels of a "
                       "width x height image (w = 0: a direction at infinity)")
    width: int = param(Integer(1, 65536), doc="width of the image the VPs are given in")
    height: int = param(Integer(1, 65536), doc="height of the image the VPs are given in")
    labels: tuple | None = param(ListOf(Text(), 0, 64), None, doc="a name per VP (x, y, z...)")
    source: str | None = param(Text(), None, doc="where the VPs came from (Blender's Perspective panel: WORLD, "
                               "GROUND...); recorded, not used")
    guidance: PerspectiveGuidance | None = param(  # noqa: RUF009
        Nested(PerspectiveGuidance), None, doc="guidance settings; without it only the report's figures")


@dataclasses.dataclass(kw_only=True)
class Lora(Params):
    """A perspective LoRA adapter (``engine/perspective/edit_lora.py``)."""

    path: str = param(AbsolutePath(), doc="the adapter folder 'python -m engine finetune-perspective' wrote")
    scale: float = param(Number(-10.0, 10.0), 1.0, doc="strength; 1.0: the adapter as trained")


class SettingsOverrides(Check):
    """An object of ``EditSettings`` overrides (``engine/diffusion/settings.py``): known names only, each value of
    its setting's type; ranges are the settings' own checks."""

    describe = "object (EditSettings overrides)"

    def __call__(self, value, where):
        if not isinstance(value, dict):
            raise refuse(where, "an object of edit settings, e.g. {\"inversion\": \"ddim\"}", value)
        defaults = self.defaults()
        unknown = [key for key in value if key not in defaults]
        if unknown:
            raise BadParams(f"Unknown edit setting {', '.join(repr(str(k)) for k in unknown)} in '{where}'; the "
                            f"known ones are {', '.join(defaults)}.")
        return {key: self.check_for(defaults[key])(item, f"{where}.{key}") for key, item in value.items()}

    def to_json(self, value):
        return {key: list(item) if isinstance(item, tuple) else item for key, item in value.items()}

    @staticmethod
    def defaults() -> dict:
        from ..diffusion.settings import (
            EditSettings,  # standard library only, as this module
        )

        return {field.name: field.default for field in dataclasses.fields(EditSettings)}

    @staticmethod
    def check_for(default) -> Check:
        if isinstance(default, bool):
            return Boolean()
        if isinstance(default, int):
            return Integer(-(2**63), 2**63 - 1)
        if isinstance(default, float):
            return Number()
        if isinstance(default, str):
            return Text()
        return JsonValue(depth=4)


@dataclasses.dataclass(kw_only=True)
class DiffusionOptions(Params):
    """What the diffusion jobs (``invert``, ``edit``) share (``engine/jobs/_diffusion_job.py``)."""

    prompt: str = param(Text(), "", doc="caption of the whole photo")
    model: str | None = param(Text(non_empty=True), None, doc="diffusion preset, hub id or folder (default "
                              "sd2-depth)")
    device: str | None = param(Device(), None, doc="torch device (default: the best available)")
    dtype: str | None = param(Text(choices=DTYPES), None, doc="weights' precision (default: the device's best)")
    settings: dict | None = param(  # noqa: RUF009
        SettingsOverrides(), None, doc="EditSettings overrides, e.g. {\"inversion\": \"ddim\"}")
    cache_dir: str | None = param(AbsolutePath(), None, doc="inversion cache folder (default $DHANDLES_CACHE_DIR "
                                  "or ~/.cache/diffusion-handles)")
    use_cache: bool = param(Boolean(), True, doc="use the inversion cache")
    thumbnail_every: int = param(Integer(0, 1_000_000), 10, doc="a thumbnail with every N-th step's progress; 0: "
                                 "none (each costs one VAE decode)")
    lora: Lora | None = param(  # noqa: RUF009
        Nested(Lora), None, doc="a perspective LoRA on the UNet; without it the base UNet")
    camera: Intrinsics | None = param(  # noqa: RUF009
        Nested(Intrinsics), None, doc="the scene's intrinsics (default: from ``fov``)")
    fov: float | None = param(Number(1.0, 170.0), None, doc="degrees across the larger side, outermost pixel "
                              "centres, when no ``camera`` (default 55)")


@dataclasses.dataclass(kw_only=True)
class BackgroundCompletion(Params):
    """Completing the revealed background with a diffusion inpainting model (``engine/jobs/_inpaint.py``)."""

    inpaint_model: str | None = param(Text(non_empty=True), None, doc="inpainting preset (sd2-inpainting...), "
                                      "hub id or folder; without it OpenCV's inpainting")
    inpaint_prompt: str = param(Text(), "", doc="what the completed background shows")
    inpaint_steps: int = param(Integer(1, 1000), 30, doc="denoising steps")
    inpaint_seed: int = param(Integer(0, 2**63 - 1), 0, doc="random seed")
    inpaint_resolution: int = param(Integer(64, 4096), 512, doc="working size of the longer side")
    device: str | None = param(Device(), None, doc="torch device (default: the best available)")
    dtype: str | None = param(Text(choices=DTYPES), None, doc="weights' precision (default: the device's best)")

    def completion_options(self) -> dict:
        """The ``complete`` keyword arguments of the inpainting model."""
        return {"prompt": self.inpaint_prompt, "steps": self.inpaint_steps, "seed": self.inpaint_seed,
                "resolution": self.inpaint_resolution}


@dataclasses.dataclass(kw_only=True)
class OfficialEdit(Params):
    """An edit in the official test set's format (``transforms.json`` entries, ``python -m engine edit --transform
    edit.json``): a rotation about the object's 3D centroid, then a translation. Any other key (``scale``...) is
    refused, never ignored."""

    translation: tuple = param(ListOf(Number(), 3, 3), doc="[x, y, z] in metres")
    rotation_axis: tuple = param(ListOf(Number(), 3, 3), (0.0, 1.0, 0.0), doc="[x, y, z] axis of the rotation")
    rotation_angle: float = param(Number(), 0.0, doc="degrees about the axis")
    frame: str = param(Text(choices=("official", "engine", "blender")), "official",
                       doc="the frame the numbers are given in")
